"""Interactive segmentation tools that need no training data.

Pure functions on NumPy arrays (``(y, x)`` / ``(z, y, x)``, ``spacing=`` in
array order), plus small session objects where state must persist between a
user's clicks:

========================  ===================================================
``livewire``              :class:`LivewireSession`, :func:`livewire_contour`,
                          :func:`livewire_mask` (intelligent scissors, 2D)
``geodesic``              :class:`GeodesicSession`, :func:`geodesic_contour`,
                          :func:`geodesic_mask`, :func:`geodesic_path_3d`
``graphcut``              :func:`graph_cut`, :class:`GraphCutSession` (2D/3D)
``boxclicks``             :func:`box_clicks`, :class:`BoxClicksSession` (2D/3D)
``threshold``             :func:`suggest_thresholds` (and ``threshold.threshold``)
``regiongrow``            :func:`region_grow`
``brush``                 :func:`stroke_mask` (and ``brush.brush``)
``polygon``               :func:`polygon_mask` (and ``polygon.polygon``)
``islands``               :func:`keep_largest`, :func:`remove_small`,
                          :func:`keep_at_point`, :func:`fill_holes`
``smooth``                :func:`median`, :func:`opening`, :func:`closing`,
                          :func:`gaussian`, :func:`grow`, :func:`shrink`
``interpolate``           :func:`interpolate_slices`
========================  ===================================================

Each tool is also reachable by name through :func:`get_tool` for the CLI
(``segloop segment``), the benchmarks and the server. Modules are imported on
first use, so ``import segloop.tools`` stays fast. Functions named like their
module (``brush``, ``polygon``, ``threshold``) are not re-exported: the name
``segloop.tools.brush`` is the module.

Examples
--------
>>> import numpy as np
>>> from segloop.tools import keep_largest
>>> keep_largest(np.array([[1, 0, 1, 1]])).tolist()
[[0, 0, 1, 1]]
"""

import importlib

from segloop.tools.registry import get_tool, tool_names
from segloop.tools.spec import TOOL_NAMES, ToolSpec

_LAZY = {
    "LivewireSession": "livewire", "livewire_contour": "livewire", "livewire_mask": "livewire",
    "GeodesicSession": "geodesic", "geodesic_contour": "geodesic", "geodesic_mask": "geodesic",
    "geodesic_path_3d": "geodesic",
    "graph_cut": "graphcut", "GraphCutSession": "graphcut",
    "box_clicks": "boxclicks", "BoxClicksSession": "boxclicks",
    "suggest_thresholds": "threshold",
    "region_grow": "regiongrow",
    "stroke_mask": "brush",
    "polygon_mask": "polygon",
    "keep_largest": "islands", "remove_small": "islands", "keep_at_point": "islands",
    "fill_holes": "islands",
    "median": "morphology", "opening": "morphology", "closing": "morphology",
    "gaussian": "morphology", "grow": "morphology", "shrink": "morphology",
    "interpolate_slices": "interpolate",
}

__all__ = ["TOOL_NAMES", "ToolSpec", "get_tool", "tool_names", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"segloop.tools.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'segloop.tools' has no attribute {name!r}")
