"""How a tool is described to the command line, the benchmarks and the server.

Every tool of :mod:`segloop.tools` is first a plain function on arrays. To be
callable by name (``segloop segment TOOL ...``, ``segloop bench``, the
annotation server), a tool module also defines a :class:`ToolSpec` whose
``apply`` adapts JSON-like parameters to that function. The names are a
contract shared by the library, the CLI, the benchmarks and the server.

Examples
--------
>>> import numpy as np
>>> spec = ToolSpec("invert", "toy", lambda image, label, *, spacing, **p: label == 0,
...                 params={}, needs_label=True)
>>> spec.check_params({})
{}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segloop.errors import InvalidArgumentError

__all__ = ["TOOL_NAMES", "ToolSpec"]

#: Tool names, in the order the CLI lists them (DESIGN.md: a contract).
TOOL_NAMES = ("livewire", "geodesic", "graphcut", "boxclicks", "threshold", "regiongrow",
              "brush", "polygon", "islands", "smooth", "interpolate")


@dataclass(frozen=True)
class ToolSpec:
    """A tool as seen by the CLI, the benchmarks and the server.

    Parameters
    ----------
    name : str
        One of :data:`TOOL_NAMES` (or a variant such as ``"margin"``).
    summary : str
        One line for ``--help``.
    apply : callable
        ``apply(image, label, *, spacing, **params) -> numpy.ndarray``:
        ``image`` is the intensity array (``(y, x)`` / ``(z, y, x)``, plus a
        trailing channel axis when ``channel_axis=-1`` is passed in params),
        ``label`` the current label map or ``None``; returns the new label
        map (integer, same spatial shape).
    params : mapping of str to str
        Accepted parameter names and their help text (types and units).
    ndims : tuple of int
        Spatial dimensions the tool works on.
    needs_label : bool
        Whether the tool edits an existing label map (``--label``).
    required : tuple of str
        Parameters that must be given.
    """

    name: str
    summary: str
    apply: Callable[..., Any]
    params: Mapping[str, str] = field(default_factory=dict)
    ndims: tuple[int, ...] = (2, 3)
    needs_label: bool = False
    required: tuple[str, ...] = ()

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``params`` as a dict after checking names and required keys.

        Raises
        ------
        InvalidArgumentError
            An unknown or missing parameter, named with the accepted ones.
        """
        unknown = sorted(set(params) - set(self.params) - {"channel_axis"})
        if unknown:
            raise InvalidArgumentError(
                f"tool {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"it takes: {', '.join(self.params) or 'none'}")
        missing = [k for k in self.required if k not in params]
        if missing:
            raise InvalidArgumentError(
                f"tool {self.name!r} needs {', '.join(map(repr, missing))}")
        return dict(params)
