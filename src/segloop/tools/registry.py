"""Find a tool's :class:`~segloop.tools.spec.ToolSpec` by name.

Tool modules are imported only when their tool is asked for, so that
``import segloop.tools`` stays light.

Examples
--------
>>> sorted(TOOL_MODULES)[:3]
['boxclicks', 'brush', 'geodesic']
"""

from __future__ import annotations

import importlib

from segloop.errors import InvalidArgumentError
from segloop.tools.spec import TOOL_NAMES, ToolSpec

__all__ = ["TOOL_MODULES", "get_tool", "tool_names"]

#: Tool name -> module of segloop.tools defining ``SPEC`` (or ``SPECS[name]``).
TOOL_MODULES = {
    "livewire": "livewire",
    "geodesic": "geodesic",
    "graphcut": "graphcut",
    "boxclicks": "boxclicks",
    "threshold": "threshold",
    "regiongrow": "regiongrow",
    "brush": "brush",
    "polygon": "polygon",
    "islands": "islands",
    "smooth": "smooth",
    "interpolate": "interpolate",
}


def tool_names() -> tuple[str, ...]:
    """The public tool names, in CLI order."""
    return TOOL_NAMES


def get_tool(name: str) -> ToolSpec:
    """The spec of tool ``name``.

    Raises
    ------
    InvalidArgumentError
        For an unknown name (the message lists the known ones).
    """
    if name not in TOOL_MODULES:
        raise InvalidArgumentError(f"unknown tool {name!r}; one of {', '.join(TOOL_NAMES)}")
    module = importlib.import_module(f"segloop.tools.{TOOL_MODULES[name]}")
    specs = getattr(module, "SPECS", None)
    return specs[name] if specs else module.SPEC
