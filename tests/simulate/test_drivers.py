import numpy as np
import pytest

from segloop.data import phantom_2d, phantom_3d
from segloop.errors import InvalidArgumentError
from segloop.simulate import (
    DRIVERS,
    Interaction,
    Scribble,
    SimulatedDriver,
    get_driver,
    noc,
    polygon_vertices,
)


class Perfect(SimulatedDriver):
    """A tool that returns the truth after the first interaction."""

    name = "perfect"

    def propose(self, state, mask, k):
        return Interaction("click+", k)

    def apply(self, state, interaction, k):
        return state.truth


class Flaky(SimulatedDriver):
    """Raises on interactions 1 and 3; returns growing parts of the truth otherwise."""

    name = "flaky"

    def propose(self, state, mask, k):
        return Interaction("click+", k)

    def apply(self, state, interaction, k):
        if k in (0, 2):
            raise InvalidArgumentError(f"bad click {k}")
        out = state.truth.copy()
        top = int(np.flatnonzero(out.any(axis=1))[0])
        out[: top + 6 - 2 * k] = False  # interaction 2 misses 4 rows of the object, 4 none
        return out


class Broken(SimulatedDriver):
    name = "broken"

    def start(self, state):
        raise InvalidArgumentError("image is constant")


@pytest.fixture(scope="module")
def blob():
    ph = phantom_2d((96, 96), seed=2, n_blobs=1, thin_structures=False)
    return ph.image, ph.label == 1


def test_perfect_tool_needs_one_interaction(blob):
    image, truth = blob
    trace = Perfect()(image, truth, max_interactions=20, stop_at=0.9)
    assert trace.dice == [1.0] and noc(trace.dice, 0.9, 20) == 1
    assert trace.tool == "perfect" and trace.note is None


def test_tool_errors_are_recorded_and_the_previous_mask_kept(blob):
    image, truth = blob
    trace = Flaky()(image, truth, max_interactions=4)
    assert trace.dice[0] == 0.0 and trace.dice[2] == trace.dice[1] > 0.5
    assert trace.dice[3] == 1.0
    assert trace.note == ("interaction 1: InvalidArgumentError: bad click 0; "
                          "interaction 3: InvalidArgumentError: bad click 2")
    trace = Broken()(image, truth)
    assert trace.dice == [0.0] and trace.note == "start: InvalidArgumentError: image is constant"


def test_registry():
    assert sorted(DRIVERS) == ["boxclicks", "geodesic", "graphcut", "livewire", "polygon"]
    assert all(DRIVERS[name].name == name for name in DRIVERS)
    with pytest.raises(InvalidArgumentError, match="unknown driver 'x'; one of boxclicks, "
                                                  "graphcut, livewire, geodesic, polygon"):
        get_driver("x")
    with pytest.raises(InvalidArgumentError, match="unknown option.*jitter.*box_jitter"):
        get_driver("boxclicks", jitter=2)
    with pytest.raises(InvalidArgumentError, match="click_jitter"):
        get_driver("boxclicks", click_jitter=-1)
    assert get_driver("graphcut", refit=False).refit is False and DRIVERS["graphcut"].refit


def canonical(trace):
    def data(d):
        if isinstance(d, Scribble):
            return (d.foreground, [s.tolist() for s in d.strokes])
        return d
    return trace.dice, [(i.kind, data(i.data)) for i in trace.interactions], trace.note


@pytest.mark.parametrize("name, options", [
    ("boxclicks", {"box_jitter": 3, "click_jitter": 2}), ("graphcut", {}), ("livewire", {}),
    ("geodesic", {}), ("polygon", {})])
def test_same_seed_same_trace(blob, name, options):
    image, truth = blob
    driver = get_driver(name, **options)
    runs = [driver(image, truth, max_interactions=6, rng=np.random.default_rng(5))
            for _ in range(2)]
    assert canonical(runs[0]) == canonical(runs[1])
    assert len(runs[0].dice) >= 3 and runs[0].dice[-1] >= 0.85, runs[0].dice
    assert all(0.0 <= d <= 1.0 for d in runs[0].dice)


def test_jitter_changes_with_the_seed(blob):
    image, truth = blob
    driver = get_driver("boxclicks", box_jitter=4)
    boxes = {driver(image, truth, max_interactions=1, rng=np.random.default_rng(s))
             .interactions[0].data for s in range(6)}
    assert len(boxes) > 1


def test_polygon_driver_noc_is_the_vertex_count(blob):
    image, truth = blob
    trace = get_driver("polygon")(image, truth, max_interactions=20, stop_at=0.9)
    assert noc(trace.dice, 0.9, 20) == len(trace.dice) == polygon_vertices(truth, 0.9)
    assert trace.dice[:2] == [0.0, 0.0] and [i.kind for i in trace.interactions][0] == "vertex"


def test_anchor_drivers_start_with_four_anchors(blob):
    image, truth = blob
    trace = get_driver("livewire")(image, truth, max_interactions=6, stop_at=1.0)
    kinds = [i.kind for i in trace.interactions]
    assert kinds == ["anchor"] * len(kinds) and trace.dice[:2] == [0.0, 0.0]
    assert [i.data.index for i in trace.interactions[:4]] == [0, 1, 2, 3]


def test_cut_drivers_in_3d():
    ph = phantom_3d((24, 40, 40), seed=1, n_blobs=1)
    truth = ph.label == 1
    for name in ("boxclicks", "graphcut"):
        trace = get_driver(name)(ph.image, truth, max_interactions=4, stop_at=0.9)
        assert trace.dice[-1] >= 0.85 and trace.note is None, (name, trace.dice)
    with pytest.raises(InvalidArgumentError, match="truth must be 2D"):
        get_driver("livewire")(ph.image, truth)


def test_colour_image_and_bad_shapes(blob):
    image, truth = blob
    rgb = np.stack([image, image, 1.0 - image], axis=-1)
    trace = get_driver("boxclicks")(rgb, truth, max_interactions=3, stop_at=0.9)
    assert trace.dice[-1] >= 0.9
    with pytest.raises(InvalidArgumentError, match="image has shape"):
        get_driver("boxclicks")(image[:50], truth)
    with pytest.raises(InvalidArgumentError, match="truth is empty"):
        get_driver("graphcut")(image, np.zeros_like(truth))
    with pytest.raises(InvalidArgumentError, match="stop_at"):
        get_driver("polygon")(image, truth, stop_at=0)
    with pytest.raises(InvalidArgumentError, match="max_interactions"):
        get_driver("polygon")(image, truth, max_interactions=0)
