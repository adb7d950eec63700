"""A plain-dict summary of an :class:`Image` (what ``segloop info`` prints).

Examples
--------
>>> import numpy as np
>>> from segloop.io.image import Image
>>> info = describe(Image(np.array([[0, 2], [2, 0]], np.uint8), kind="label"))
>>> info["label_values"], info["shape"]
([0, 2], [2, 2])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segloop.io.image import Image

__all__ = ["describe"]

_MAX_LABEL_VALUES = 256


def describe(image: Image) -> dict[str, Any]:
    """Summarise shape, geometry and values of an image.

    Parameters
    ----------
    image : Image
        Any image.

    Returns
    -------
    dict
        JSON-ready: ``path``, ``format``, ``kind``, ``shape``, ``channels``,
        ``dtype``, ``spacing``, ``origin``, ``orientation``, ``oblique``,
        ``min``, ``max``, ``mean``, ``nonfinite``, and ``label_values`` with
        voxel counts for integer images with at most 256 distinct values.
    """
    arr = image.array
    finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr
    oblique = bool(np.any(np.abs(np.abs(image.direction) - np.round(np.abs(image.direction)))
                          > 1e-4))
    info: dict[str, Any] = {
        "path": image.metadata.get("path"),
        "format": image.metadata.get("format"),
        "kind": image.kind,
        "shape": list(image.shape),
        "channels": image.n_channels if image.channels else None,
        "dtype": str(arr.dtype),
        "spacing": [round(s, 6) for s in image.spacing],
        "origin": [round(o, 4) for o in image.origin],
        "orientation": image.orientation,
        "oblique": oblique,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": float(finite.mean()) if finite.size else None,
        "nonfinite": image.nonfinite_count(),
    }
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        values, counts = np.unique(arr, return_counts=True)
        if values.size <= _MAX_LABEL_VALUES:
            info["label_values"] = [int(v) for v in values]
            info["label_counts"] = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    extra = {k: v for k, v in image.metadata.items()
             if k not in ("path", "format") and isinstance(v, str | int | float | bool)}
    if extra:
        info["metadata"] = extra
    return info
