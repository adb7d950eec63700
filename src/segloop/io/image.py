"""The :class:`Image` object: an array with the geometry of a medical image.

Conventions (one place for them, see ``DESIGN.md``):

* ``array`` is indexed ``(z, y, x)`` for volumes and ``(y, x)`` for 2D images,
  with an optional trailing channel axis (RGB microscopy, 4D series).
* ``spacing`` is in millimetres, in the same order as the array's spatial axes.
* ``origin`` and ``direction`` place the grid in the world (patient) frame,
  which is LPS as in DICOM and ITK: ``origin`` is the world position
  ``(x, y, z)`` of the centre of voxel ``[0, 0, 0]``, and column ``j`` of
  ``direction`` is the world unit vector along array axis ``j``.  So
  ``world = origin + direction @ (spacing * index)`` for an index in array
  order.  A 2D image has a 2-vector origin and a 2×2 direction.
* ``kind`` is ``"image"`` (intensities, resampled linearly), ``"label"``
  (integer label map, 0 = background, resampled nearest-neighbour) or
  ``"soft"`` (float label in [0, 1], resampled linearly).

Examples
--------
>>> import numpy as np
>>> img = Image(np.zeros((4, 5, 6), np.float32), spacing=(3.0, 1.0, 0.5))
>>> img.shape, img.spatial_ndim, img.orientation
((4, 5, 6), 3, 'LPS')
>>> img.index_to_world((1, 0, 2)).tolist()
[1.0, 0.0, 3.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segloop.errors import InvalidArgumentError, InvalidImageError

__all__ = ["KINDS", "Image", "default_direction"]

KINDS = ("image", "label", "soft")


def default_direction(ndim: int) -> np.ndarray:
    """Direction matrix of an unrotated grid whose array axes are ``(z, y, x)``.

    Parameters
    ----------
    ndim : int
        Number of spatial axes (2 or 3).

    Returns
    -------
    numpy.ndarray
        ``(ndim, ndim)`` matrix: array axis 0 runs along world z (or y in 2D).

    Examples
    --------
    >>> default_direction(2).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    return np.eye(ndim)[:, ::-1].copy()


def _as_tuple(values: Any, n: int, name: str) -> tuple[float, ...]:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n:
        raise InvalidArgumentError(f"{name} must have {n} values, got {arr.size}: {arr.tolist()}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name} must be finite, got {arr.tolist()}")
    return tuple(float(v) for v in arr)


def _integer_labels(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as the smallest integer dtype holding its label values."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidImageError(f"label map has unsupported dtype {array.dtype}")
    finite = np.isfinite(array)
    if not finite.all():
        raise InvalidImageError(f"label map has {int((~finite).sum())} NaN/Inf voxels")
    rounded = np.rint(array)
    if not np.array_equal(rounded, array):
        bad = array[rounded != array]
        raise InvalidImageError(
            f"label map has non-integer values (e.g. {float(bad[0]):.8g}); read it as a soft "
            "label (--kind soft) or an intensity image (--kind image)"
        )
    lo, hi = (float(rounded.min()), float(rounded.max())) if rounded.size else (0.0, 0.0)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return rounded.astype(dtype)
    raise InvalidImageError(f"label values out of integer range [{lo:g}, {hi:g}]")


@dataclass(eq=False)
class Image:
    """An array with spacing, origin, direction, kind and metadata.

    Parameters
    ----------
    array : numpy.ndarray
        Pixel data, ``(z, y, x)`` or ``(y, x)``, plus a trailing channel axis
        when ``channels`` is true.
    spacing : sequence of float, optional
        Voxel size in mm, array order. Defaults to 1 along every axis.
    origin : sequence of float, optional
        World (LPS) position of voxel ``[0, 0, 0]``, world order ``(x, y, z)``.
    direction : array_like, optional
        ``(d, d)`` matrix, column ``j`` = world unit vector of array axis ``j``.
    kind : {"image", "label", "soft"}
        What the values mean; decides the resampling and the dtype checks.
    channels : bool
        Whether the last axis is a channel axis (not a spatial one).
    metadata : dict
        Anything worth keeping: source file, format, DICOM tags, sidecar JSON.

    Raises
    ------
    InvalidArgumentError
        For a bad kind, spacing, origin or direction.
    InvalidImageError
        For a label map with non-integer values, a soft label outside [0, 1],
        or an array with the wrong number of dimensions.
    """

    array: np.ndarray
    spacing: tuple[float, ...] | None = None
    origin: tuple[float, ...] | None = None
    direction: np.ndarray | None = None
    kind: str = "image"
    channels: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgumentError(f"kind must be one of {KINDS}, got {self.kind!r}")
        array = np.asarray(self.array)
        nd = array.ndim - (1 if self.channels else 0)
        if nd not in (2, 3):
            extra = " plus a channel axis" if self.channels else ""
            raise InvalidImageError(
                f"expected a 2D or 3D array{extra}, got shape {array.shape}"
            )
        if self.kind == "label":
            if self.channels:
                raise InvalidImageError("a label map cannot have a channel axis")
            array = _integer_labels(array)
        elif self.kind == "soft":
            array = array.astype(np.float32, copy=False)
            if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1):
                raise InvalidImageError("soft label values must lie in [0, 1]")
        self.array = array
        self.spacing = _as_tuple((1.0,) * nd if self.spacing is None else self.spacing,
                                 nd, "spacing")
        if any(s <= 0 for s in self.spacing):
            raise InvalidArgumentError(f"spacing must be positive, got {self.spacing}")
        self.origin = _as_tuple((0.0,) * nd if self.origin is None else self.origin, nd, "origin")
        direction = default_direction(nd) if self.direction is None else self.direction
        direction = np.asarray(direction, dtype=float).reshape(nd, nd) if np.size(
            direction) == nd * nd else None
        if direction is None or not np.all(np.isfinite(direction)):
            raise InvalidArgumentError(f"direction must be a finite {nd}x{nd} matrix")
        if abs(np.linalg.det(direction)) < 1e-6:
            raise InvalidArgumentError("direction matrix is singular")
        self.direction = direction

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape (without the channel axis)."""
        return self.array.shape[: self.spatial_ndim]

    @property
    def spatial_ndim(self) -> int:
        """Number of spatial axes: 2 or 3."""
        return self.array.ndim - (1 if self.channels else 0)

    @property
    def n_channels(self) -> int:
        """Number of channels (1 without a channel axis)."""
        return self.array.shape[-1] if self.channels else 1

    # --------------------------------------------------------------- geometry
    @property
    def affine(self) -> np.ndarray:
        """Homogeneous matrix mapping array indices to world LPS coordinates."""
        nd = self.spatial_ndim
        aff = np.eye(nd + 1)
        aff[:nd, :nd] = self.direction * np.asarray(self.spacing)[None, :]
        aff[:nd, nd] = self.origin
        return aff

    def index_to_world(self, index: Any) -> np.ndarray:
        """World (LPS) coordinates of a (possibly fractional) array index."""
        idx = np.asarray(index, dtype=float)
        return np.asarray(self.origin) + self.direction @ (np.asarray(self.spacing) * idx)

    def world_to_index(self, point: Any) -> np.ndarray:
        """Fractional array index of a world (LPS) point."""
        rel = np.asarray(point, dtype=float) - np.asarray(self.origin)
        return np.linalg.solve(self.direction, rel) / np.asarray(self.spacing)

    @property
    def orientation(self) -> str:
        """Axis codes in the NIfTI convention, e.g. ``"RAS"`` or ``"LPS"``.

        Letter ``k`` tells where the ``k``-th *file* axis (x, then y, then z,
        i.e. the array axes in reverse) points in the world.  For 2D images
        the code has two letters.
        """
        from segloop.io.geometry import orientation_code

        return orientation_code(self.direction)

    # ------------------------------------------------------------- utilities
    def with_array(self, array: np.ndarray, *, kind: str | None = None,
                   channels: bool | None = None) -> Image:
        """A new image on the same grid with other pixel data.

        Examples
        --------
        >>> import numpy as np
        >>> img = Image(np.ones((3, 3)), spacing=(2.0, 0.5))
        >>> lab = img.with_array(np.ones((3, 3), np.uint8), kind="label")
        >>> lab.kind, lab.spacing
        ('label', (2.0, 0.5))
        """
        return Image(array, spacing=self.spacing, origin=self.origin,
                     direction=self.direction.copy(),
                     kind=self.kind if kind is None else kind,
                     channels=self.channels if channels is None else channels,
                     metadata=dict(self.metadata))

    def copy(self) -> Image:
        """A deep copy (array included)."""
        return self.with_array(self.array.copy())

    def nonfinite_count(self) -> int:
        """Number of NaN or infinite values in the array."""
        if not np.issubdtype(self.array.dtype, np.floating):
            return 0
        return int(self.array.size - np.count_nonzero(np.isfinite(self.array)))

    def label_values(self) -> list[int]:
        """Sorted distinct values of a label map (raises for other kinds)."""
        if self.kind != "label":
            raise InvalidArgumentError(f"label_values() needs a label map, not a {self.kind}")
        return [int(v) for v in np.unique(self.array)]

    def __repr__(self) -> str:
        sp = "x".join(f"{s:g}" for s in self.spacing)
        ch = f", {self.n_channels} channels" if self.channels else ""
        return (f"Image({self.kind}, shape={self.shape}{ch}, dtype={self.array.dtype}, "
                f"spacing={sp} mm, orientation={self.orientation})")
