import edt
import numpy as np
import pytest

from segloop.data import ball, disk
from segloop.errors import InvalidArgumentError
from segloop.simulate import Scribble, first_scribbles, next_scribble, scribbles, skeleton_path
from segloop.tools.cut_checks import seed_mask


def connected(path):
    return bool((np.abs(np.diff(path, axis=0)).max(axis=1) == 1).all())


def test_skeleton_path_of_a_bar_runs_along_its_middle():
    region = np.zeros((7, 30), bool)
    region[2:5, 3:27] = True
    path = skeleton_path(region)
    assert connected(path) and len(set(map(tuple, path.tolist()))) == len(path)
    assert set(path[:, 0].tolist()) <= {2, 3, 4} and (path[:, 0] == 3).sum() >= 20
    assert len(path) >= 22 and region[tuple(path.T)].all()


def test_skeleton_path_of_a_single_pixel():
    region = np.zeros((5, 5), bool)
    region[2, 3] = True
    assert skeleton_path(region).tolist() == [[2, 3]]


def test_first_scribbles_inside_and_ring_outside():
    truth = disk((64, 64), (30, 34), 15)
    fg, bg = first_scribbles(truth, margin=5)
    assert fg.foreground and not bg.foreground
    assert len(fg.strokes) == 1 and truth[tuple(fg.strokes[0].T)].all()
    ring = np.vstack(bg.strokes)
    dist = edt.edt(~truth)[tuple(ring.T)]
    assert dist.min() > 4 and dist.max() <= 5 and len(bg.strokes) == 1
    assert connected(bg.strokes[0]) and bg.size == len(ring) > 100
    mask = seed_mask(truth.shape, bg.as_strokes())
    assert mask.sum() == len({tuple(p) for p in ring.tolist()})


def test_ring_cut_where_the_object_touches_the_border():
    truth = np.zeros((40, 40), bool)
    truth[0:15, 10:30] = True
    _, bg = first_scribbles(truth, margin=3)
    ring = np.vstack(bg.strokes)
    assert not truth[tuple(ring.T)].any()
    assert all(connected(s) for s in bg.strokes if len(s) > 1)
    assert ring[:, 0].max() == 17 and ring[:, 1].min() == 7 and ring[:, 1].max() == 32


def test_first_scribbles_3d():
    truth = ball((20, 30, 30), (10, 15, 14), 6)
    fg, bg = first_scribbles(truth, margin=2)
    assert truth[tuple(fg.strokes[0].T)].all()
    ring = np.vstack(bg.strokes)
    assert set(ring[:, 0].tolist()) == {10} and not truth[tuple(ring.T)].any()


def test_next_scribble_kind_and_place():
    truth = np.zeros((20, 30), bool)
    truth[5:15, 5:25] = True
    pred = truth.copy()
    pred[5:15, 18:25] = False  # the right end missed
    s = next_scribble(pred, truth)
    assert s.foreground and len(s.strokes) == 1
    assert truth[tuple(s.strokes[0].T)].all() and not pred[tuple(s.strokes[0].T)].any()
    pred = truth.copy()
    pred[0:4, 0:30] = True  # a false band above
    s = next_scribble(pred, truth)
    assert isinstance(s, Scribble) and not s.foreground
    assert set(s.strokes[0][:, 0].tolist()) <= {1, 2} and len(s.strokes[0]) >= 26
    assert next_scribble(truth, truth) is None


def test_benchmark_seed_helper():
    truth = np.zeros((8, 30, 30), bool)
    truth[2:6, 10:20, 12:18] = True
    fg, bg = scribbles(truth, margin=1)
    assert all(truth[tuple(p)] for p in fg[0]) and len(bg) == 12


def test_bad_input():
    with pytest.raises(InvalidArgumentError, match="margin"):
        first_scribbles(np.ones((5, 5)), margin=0)
    with pytest.raises(InvalidArgumentError, match="region is empty"):
        skeleton_path(np.zeros((5, 5)))
    with pytest.raises(InvalidArgumentError, match="pred has shape"):
        next_scribble(np.zeros((5, 5)), np.zeros((5, 6)))
