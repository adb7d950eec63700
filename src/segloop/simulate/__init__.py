"""The simulated annotator: a reproducible stand-in for an expert, and drivers of the tools.

It plays the user of the clicks and interpolation benchmarks (DESIGN.md,
"The simulated annotator"), seeded and deterministic:

========================  ==================================================================
``clicks``                :func:`next_click` (deepest point of the largest error region),
                          :func:`largest_error`
``boxes``                 :func:`truth_box` (tight bounding box, optionally jittered)
``anchors``               :func:`true_contour`, :func:`initial_anchors`, :func:`next_anchor`
``scribbles``             :func:`first_scribbles`, :func:`next_scribble`,
                          :func:`skeleton_path`, :func:`scribbles` (fixed benchmark seeds)
``polygon_baseline``      :func:`polygon_vertices`, :func:`polygon_curve`,
                          :func:`polygon_sequence`
``slices``                :func:`given_slices`, :func:`given_label`, :func:`work_saved`
``drivers``               :data:`DRIVERS`, :func:`get_driver`: ``boxclicks``, ``graphcut``,
                          ``livewire``, ``geodesic``, ``polygon``
``protocol``              :class:`Trace`, :class:`Interaction`, :func:`noc`, :func:`dice_at`
========================  ==================================================================

Examples
--------
>>> import numpy as np
>>> truth = np.zeros((6, 6), bool); truth[1:5, 1:5] = True
>>> next_click(np.zeros_like(truth), truth)
Click(point=(2, 2), positive=True)
>>> polygon_vertices(truth, 0.9)
4
"""

from segloop.simulate.anchors import AnchorStep, initial_anchors, next_anchor, true_contour
from segloop.simulate.boxes import truth_box
from segloop.simulate.clicks import Click, ErrorRegion, largest_error, next_click
from segloop.simulate.drivers import (
    DRIVERS,
    BoxClicksDriver,
    GeodesicDriver,
    GraphCutDriver,
    LivewireDriver,
    PolygonDriver,
    get_driver,
)
from segloop.simulate.polygon_baseline import polygon_curve, polygon_sequence, polygon_vertices
from segloop.simulate.protocol import Driver, Interaction, Trace, dice_at, noc
from segloop.simulate.raters import RATER_OPTIONS, simulate_rater, simulated_raters
from segloop.simulate.scribbles import (
    Scribble,
    first_scribbles,
    next_scribble,
    scribbles,
    skeleton_path,
)
from segloop.simulate.session_loop import SessionState, SimulatedDriver
from segloop.simulate.slices import given_label, given_slices, object_slices, work_saved

__all__ = [
    "DRIVERS",
    "RATER_OPTIONS",
    "AnchorStep",
    "BoxClicksDriver",
    "Click",
    "Driver",
    "ErrorRegion",
    "GeodesicDriver",
    "GraphCutDriver",
    "Interaction",
    "LivewireDriver",
    "PolygonDriver",
    "Scribble",
    "SessionState",
    "SimulatedDriver",
    "Trace",
    "dice_at",
    "first_scribbles",
    "get_driver",
    "given_label",
    "given_slices",
    "initial_anchors",
    "largest_error",
    "next_anchor",
    "next_click",
    "next_scribble",
    "noc",
    "object_slices",
    "polygon_curve",
    "polygon_sequence",
    "polygon_vertices",
    "scribbles",
    "simulate_rater",
    "simulated_raters",
    "skeleton_path",
    "true_contour",
    "truth_box",
    "work_saved",
]
