"""The ``smooth`` tool: smoothing and margins of a label map, by name.

One entry, :func:`smooth`, for the operations of
:mod:`segloop.tools.morphology`, as the command line, the benchmarks and the
server call them: ``median``, ``open``, ``close``, ``gaussian`` (smoothing)
and ``grow``, ``shrink`` (margins). Sizes are in millimetres (physical units
of ``spacing``): the ball radius, the half-size of the median box, the
Gaussian's sigma, or the margin. A size larger than the image is handled
without allocating more than the image (see :mod:`segloop.tools.morphology`).

Examples
--------
>>> import numpy as np
>>> lab = np.zeros((7, 7), np.uint8); lab[2:5, 2:5] = 1; lab[0, 6] = 1
>>> int(smooth(lab, operation="open", size_mm=1).sum())
5
>>> int(smooth(lab, operation="grow", size_mm=1, spacing=(1.0, 1.0)).sum())
24
"""

from __future__ import annotations

from segloop.errors import InvalidArgumentError
from segloop.tools import morphology
from segloop.tools.spec import ToolSpec

__all__ = ["OPERATIONS", "SPEC", "smooth"]

#: Operation name -> (function of :mod:`segloop.tools.morphology`, its size keyword).
OPERATIONS = {
    "median": (morphology.median, "radius_mm"),
    "open": (morphology.opening, "radius_mm"),
    "close": (morphology.closing, "radius_mm"),
    "gaussian": (morphology.gaussian, "sigma_mm"),
    "grow": (morphology.grow, "distance_mm"),
    "shrink": (morphology.shrink, "distance_mm"),
}


def smooth(label, *, operation: str, size_mm: float, spacing=None, value=None):
    """Smooth a label map, or grow / shrink it by a margin.

    Parameters
    ----------
    label : array_like
        2D or 3D label map.
    operation : {'median', 'open', 'close', 'gaussian', 'grow', 'shrink'}
        What to do (see :mod:`segloop.tools.morphology`).
    size_mm : float
        Radius (median, open, close), sigma (gaussian) or margin (grow,
        shrink), in physical units.
    spacing : sequence of float, optional
        Voxel size in array order (default 1).
    value : int, optional
        Only edit this label (default: every label).

    Returns
    -------
    ndarray
        The edited label map (a new array).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        An unknown operation, a negative size, a bad label map or spacing.

    Examples
    --------
    >>> import numpy as np
    >>> smooth(np.array([[1, 1, 0, 1, 1]]), operation="close", size_mm=1)
    array([[1, 1, 1, 1, 1]])
    """
    if operation not in OPERATIONS:
        raise InvalidArgumentError(f"operation must be one of {', '.join(OPERATIONS)}, "
                                   f"got operation={operation!r}")
    fn, keyword = OPERATIONS[operation]
    try:
        return fn(label, spacing=spacing, value=value, **{keyword: size_mm})
    except InvalidArgumentError as exc:  # name the tool's argument, not the function's
        raise InvalidArgumentError(str(exc).replace(keyword, "size_mm")) from None


def _apply(image, label, *, spacing=None, operation, size_mm, value=None, channel_axis=None):
    """The tool: edits ``label`` only, so ``image`` and ``channel_axis`` (colour) are ignored."""
    if label is None:
        raise InvalidArgumentError("smooth edits a label map: give label")
    return smooth(label, operation=operation, size_mm=size_mm, spacing=spacing, value=value)


SPEC = ToolSpec(
    "smooth",
    "smooth a label (median, open, close, gaussian) or grow/shrink it by a margin in mm",
    _apply,
    params={
        "operation": "median | open | close | gaussian | grow | shrink",
        "size_mm": "radius (median/open/close), sigma (gaussian) or margin (grow/shrink), mm",
        "value": "only edit this label value (default: every label)",
    },
    needs_label=True,
    required=("operation", "size_mm"),
)
