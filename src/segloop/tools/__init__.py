"""Interactive segmentation tools that need no training data.

Pure functions on NumPy arrays (``(y, x)`` / ``(z, y, x)``, ``spacing=`` in
array order), plus small session objects where state must persist between a
user's clicks. Each tool is also reachable by name through
:func:`get_tool` for the CLI (``segloop segment``), benchmarks and server.
"""

from segloop.tools.registry import get_tool, tool_names
from segloop.tools.spec import TOOL_NAMES, ToolSpec

__all__ = ["TOOL_NAMES", "ToolSpec", "get_tool", "tool_names"]
