"""Drivers: segloop's tools played by the simulated user, one :class:`Trace` per session.

Each driver follows :class:`segloop.simulate.protocol.Driver` (call it with
the image, the true mask and the options of
:meth:`SimulatedDriver.__call__ <segloop.simulate.session_loop.SimulatedDriver.__call__>`):

==============  ===========================================================================
``boxclicks``   interaction 1: the box (:func:`truth_box`, ``box_jitter``); then clicks
                (:func:`next_click`, ``click_jitter``) on a :class:`BoxClicksSession`
``graphcut``    interaction 1: the foreground scribble, 2: the background ring
                (:func:`first_scribbles`); then a correction stroke each
                (:func:`next_scribble`) on a :class:`GraphCutSession` (2D/3D)
``livewire``    interactions 1-4: the initial anchors (:func:`initial_anchors`; Dice 0 until
                three make a closed contour); then one anchor each (:func:`next_anchor`),
                inserted in contour order, on a :class:`LivewireSession` (2D)
``geodesic``    the same anchors on a :class:`GeodesicSession` (edge metric, 2D)
``polygon``     the baseline: interaction ``n`` adds the ``n``-th Douglas–Peucker vertex;
                Dice after ``n`` is that of the ``n``-vertex polygon, so the NoC of the
                polygon is its vertex count (:func:`polygon_vertices`, 2D)
==============  ===========================================================================

Tool options (``lam``, ``sigma``, ...) go in ``options``, passed to the
tool's session. :func:`get_driver` makes a driver with other options.

Examples
--------
>>> from segloop.data import phantom_2d
>>> ph = phantom_2d((96, 96), seed=2, n_blobs=1, thin_structures=False)
>>> trace = get_driver("boxclicks")(ph.image, ph.label == 1, max_interactions=5, stop_at=0.9)
>>> trace.interactions[0].kind, trace.dice[-1] >= 0.9
('box', True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.simulate._checks import as_count
from segloop.simulate.anchors import AnchorStep, initial_anchors, next_anchor, true_contour
from segloop.simulate.boxes import truth_box
from segloop.simulate.clicks import next_click
from segloop.simulate.polygon_baseline import _dp_order
from segloop.simulate.protocol import Interaction
from segloop.simulate.scribbles import first_scribbles, next_scribble
from segloop.simulate.session_loop import SessionState, SimulatedDriver
from segloop.tools.boxclicks import BoxClicksSession
from segloop.tools.geodesic import GeodesicSession
from segloop.tools.graphcut import GraphCutSession
from segloop.tools.livewire import LivewireSession
from segloop.tools.polygon import polygon_mask

__all__ = ["DRIVERS", "BoxClicksDriver", "GeodesicDriver", "GraphCutDriver", "LivewireDriver",
           "PolygonDriver", "get_driver"]


def _session(cls, state: SessionState, options: dict[str, Any]):
    return cls(state.image, spacing=tuple(state.spacing), channel_axis=state.channel_axis,
               **options)


@dataclass
class BoxClicksDriver(SimulatedDriver):
    """Box, then clicks; ``box_jitter`` / ``click_jitter`` in voxels (drawn from ``rng``)."""

    name: ClassVar[str] = "boxclicks"
    box_jitter: int = 0
    click_jitter: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        as_count(self.box_jitter, "box_jitter")
        as_count(self.click_jitter, "click_jitter")

    def start(self, state):
        """A :class:`BoxClicksSession` on the image."""
        state.tool = _session(BoxClicksSession, state, self.options)

    def propose(self, state, mask, k):
        """The box first, then the next click (None when the mask is perfect)."""
        if k == 0:
            return Interaction("box", truth_box(state.truth, jitter=self.box_jitter,
                                                rng=state.rng))
        click = next_click(mask, state.truth, spacing=state.spacing, jitter=self.click_jitter,
                           rng=state.rng)
        return None if click is None else Interaction(
            "click+" if click.positive else "click-", click)

    def apply(self, state, interaction, k):
        """Set the box or add the click."""
        if interaction.kind == "box":
            return state.tool.set_box(interaction.data)
        return state.tool.add_click(*interaction.data)


#: Correction scribbles refit the intensity models by default (measured: see GraphCutDriver).
GRAPHCUT_REFIT = True


@dataclass
class GraphCutDriver(SimulatedDriver):
    """Foreground stroke, background ring, then correction strokes.

    ``margin``: how far outside the object the ring runs (voxels).
    ``refit``: corrections refit the intensity models on all seeds
    (:meth:`GraphCutSession.add_scribble`). Default True: on the 8 lungs of
    the four chest X-rays it reaches Dice 0.9 in 2.9 scribbles on average
    (every lung in 2 or 3) against 3.5 without refitting (2 to 6); on CT
    liver, spleen and aorta slices both take 2, 2 and 3. Refitting costs
    more per correction (every t-link changes) but is still well under a
    second on a 512 x 512 image.
    """

    name: ClassVar[str] = "graphcut"
    margin: int = 5
    refit: bool = GRAPHCUT_REFIT
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        as_count(self.margin, "margin", least=1)
        if not isinstance(self.refit, bool):
            raise InvalidArgumentError(f"refit must be true or false, got refit={self.refit!r}")

    def start(self, state):
        """A :class:`GraphCutSession` on the image."""
        state.tool = _session(GraphCutSession, state, self.options)

    def propose(self, state, mask, k):
        """The two first scribbles, then a correction stroke."""
        if k < 2:
            if k == 0:
                state.memo["first"] = first_scribbles(state.truth, margin=self.margin,
                                                      spacing=state.spacing)
            scribble = state.memo["first"][k]
        else:
            scribble = next_scribble(mask, state.truth)
        if scribble is None:
            return None
        return Interaction("scribble+" if scribble.foreground else "scribble-", scribble)

    def apply(self, state, interaction, k):
        """Add the scribble (refitting the models on corrections if ``refit``)."""
        scribble = interaction.data
        return state.tool.add_scribble(scribble.as_strokes(), foreground=scribble.foreground,
                                       refit=self.refit and k >= 2)


@dataclass
class LivewireDriver(SimulatedDriver):
    """``n_initial`` anchors on the true contour, then one where the contour strays most."""

    name: ClassVar[str] = "livewire"
    ndims: ClassVar[tuple[int, ...]] = (2,)
    session_class: ClassVar[type] = LivewireSession
    n_initial: int = 4
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        as_count(self.n_initial, "n_initial", least=1)

    def start(self, state):
        """The anchor session on the image."""
        state.tool = _session(self.session_class, state, self.options)

    def propose(self, state, mask, k):
        """The initial anchors, then the anchor where the contour strays most."""
        if k == 0:
            state.memo["initial"] = initial_anchors(state.truth, self.n_initial,
                                                    spacing=state.spacing)
            state.memo["anchors"] = []
        initial, anchors = state.memo["initial"], state.memo["anchors"]
        if k < len(initial):
            return Interaction("anchor", AnchorStep(initial[k], k, float("inf")))
        tool = state.tool
        current = tool.contour() if tool.closed else np.empty((0, 2))
        step = next_anchor(current, state.truth, anchors, spacing=state.spacing)
        return None if step is None else Interaction("anchor", step)

    def apply(self, state, interaction, k):
        """Insert the anchor; retrace and fill the contour (None below 3 anchors)."""
        anchors = state.memo["anchors"]
        anchors.insert(interaction.data.index, interaction.data.point)
        _replay(state.tool, anchors)
        return state.tool.mask() if len(anchors) >= 3 else None


def _replay(tool, anchors: list[tuple[int, int]]) -> None:
    """Bring the session's anchors to ``anchors``, keeping the common first ones."""
    common = 0
    while (common < min(len(tool.anchors), len(anchors))
           and tool.anchors[common] == anchors[common]):
        common += 1
    if tool.closed:
        tool.remove_last_anchor()
    while len(tool.anchors) > common:
        tool.remove_last_anchor()
    for a in anchors[common:]:
        tool.add_anchor(a)


@dataclass
class GeodesicDriver(LivewireDriver):
    """The livewire protocol on geodesic minimal paths."""

    name: ClassVar[str] = "geodesic"
    session_class: ClassVar[type] = GeodesicSession


@dataclass
class PolygonDriver(SimulatedDriver):
    """The polygon baseline as a driver: the ``n``-vertex Douglas–Peucker polygon."""

    name: ClassVar[str] = "polygon"
    ndims: ClassVar[tuple[int, ...]] = (2,)

    def propose(self, state, mask, k):
        """The next Douglas–Peucker vertex."""
        if k == 0:
            contour = true_contour(state.truth)
            state.memo["contour"] = contour
            state.memo["order"] = _dp_order(contour, state.spacing, state.max_interactions)
        contour, order = state.memo["contour"], state.memo["order"]
        if k >= len(order):
            return None
        return Interaction("vertex", tuple(int(v) for v in contour[order[k]]))

    def apply(self, state, interaction, k):
        """The polygon of the vertices so far (None below 3)."""
        if k < 2:
            return None
        contour, order = state.memo["contour"], state.memo["order"]
        return polygon_mask(state.truth.shape, contour[np.sort(order[:k + 1])])


#: Every driver by tool name, with default options.
DRIVERS: dict[str, SimulatedDriver] = {
    d.name: d for d in (BoxClicksDriver(), GraphCutDriver(), LivewireDriver(),
                        GeodesicDriver(), PolygonDriver())}


def get_driver(name: str, **options) -> SimulatedDriver:
    """The driver of tool ``name``, with ``options`` (fields of its class) changed.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        An unknown name (the message lists the known ones) or option.

    Examples
    --------
    >>> get_driver("boxclicks", click_jitter=2).click_jitter
    2
    >>> get_driver("scissors")
    Traceback (most recent call last):
    ...
    segloop.errors.InvalidArgumentError: unknown driver 'scissors'; one of boxclicks, ...
    """
    if name not in DRIVERS:
        raise InvalidArgumentError(f"unknown driver {name!r}; one of {', '.join(DRIVERS)}")
    driver = DRIVERS[name]
    if not options:
        return driver
    known = [f.name for f in dataclasses.fields(driver)]
    bad = sorted(set(options) - set(known))
    if bad:
        raise InvalidArgumentError(f"unknown option(s) {', '.join(bad)} for driver {name!r}; "
                                   f"its options: {', '.join(known) or 'none'}")
    return dataclasses.replace(driver, **options)
