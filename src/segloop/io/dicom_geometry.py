"""Stack DICOM planes into a 3D grid: slice order, spacing, origin, direction.

DICOM places every 2D plane on its own: ``ImagePositionPatient`` is the
world (LPS) position of its first pixel, ``ImageOrientationPatient`` holds
the *row* cosine (direction of increasing column index, array ``x``) and the
*column* cosine (direction of increasing row index, array ``y``).  The slice
axis is their cross product, the normal.  In the :class:`~segloop.io.Image`
convention that gives ``direction[:, 2] = row``, ``direction[:, 1] = column``
and ``direction[:, 0] = normal``: planes are sorted by ``position · normal``
and the result is always a grid whose slice axis is ``row × column`` (as in
ITK), whatever the order of the files.

Examples
--------
>>> planes = [Plane(f"IM{k}", position=(0.0, 0.0, 2.5 * k),
...                 orientation=(1, 0, 0, 0, 1, 0), pixel_spacing=(0.5, 0.7))
...           for k in (2, 0, 1)]
>>> geo = stack_planes(planes, where="ct/")
>>> geo.order, geo.spacing
([1, 2, 0], (2.5, 0.5, 0.7))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segloop.errors import DatasetError
from segloop.io.image import default_direction

__all__ = ["Plane", "StackGeometry", "direction_from_orientation", "stack_planes"]

_ORIENT_ATOL = 1e-4  # cosines of planes in one stack must agree to this
_DUPLICATE_MM = 0.01  # planes closer than this along the normal share a position


@dataclass(frozen=True)
class Plane:
    """Where one 2D plane (a file or a frame) lies, as its header says.

    Parameters
    ----------
    source : str
        File name (and frame number) used in error messages.
    position : tuple of 3 float, optional
        ``ImagePositionPatient``.
    orientation : tuple of 6 float, optional
        ``ImageOrientationPatient`` (row cosine, then column cosine).
    pixel_spacing : tuple of 2 float, optional
        ``PixelSpacing``: spacing between rows, then between columns.
    thickness : float, optional
        ``SliceThickness``.
    between : float, optional
        ``SpacingBetweenSlices``.
    instance : int, optional
        ``InstanceNumber``, used to order planes that have no position.
    """

    source: str
    position: tuple[float, ...] | None = None
    orientation: tuple[float, ...] | None = None
    pixel_spacing: tuple[float, ...] | None = None
    thickness: float | None = None
    between: float | None = None
    instance: int | None = None


@dataclass(frozen=True)
class StackGeometry:
    """Result of :func:`stack_planes`: plane order and the grid they form."""

    order: list[int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    note: str = ""  # how the order was found when positions were missing


def direction_from_orientation(orientation, where: str = "") -> np.ndarray:
    """Direction matrix (Image convention) from ``ImageOrientationPatient``.

    Examples
    --------
    >>> direction_from_orientation((1, 0, 0, 0, 1, 0)).tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    cos = np.asarray(orientation, dtype=float).reshape(2, 3)
    norms = np.linalg.norm(cos, axis=1)
    if np.any(norms < 1e-6) or abs(float(cos[0] @ cos[1])) > 1e-3 * norms.prod():
        raise DatasetError(
            f"ImageOrientationPatient {list(orientation)} is not two orthogonal unit vectors",
            path=where or None,
        )
    row, col = cos[0] / norms[0], cos[1] / norms[1]
    return np.column_stack([np.cross(row, col), col, row])


def _spacing_2d(plane: Plane) -> tuple[float, float]:
    if plane.pixel_spacing is None:
        return (1.0, 1.0)
    return (float(plane.pixel_spacing[0]), float(plane.pixel_spacing[1]))


def _slice_gap_default(plane: Plane) -> float:
    for value in (plane.between, plane.thickness):
        if value is not None and value > 0:
            return float(value)
    return 1.0


def _without_positions(planes: list[Plane]) -> StackGeometry:
    """Order by InstanceNumber (then as given) when positions are missing."""
    first = planes[0]
    order = sorted(
        range(len(planes)), key=lambda i: (planes[i].instance is None, planes[i].instance or 0, i)
    )
    direction = (
        default_direction(3)
        if first.orientation is None
        else direction_from_orientation(first.orientation, first.source)
    )
    origin = (0.0, 0.0, 0.0) if first.position is None else tuple(map(float, first.position))
    note = (
        ""
        if len(planes) == 1
        else (
            "no ImagePositionPatient/ImageOrientationPatient: planes ordered by InstanceNumber "
            "(or file order), slice spacing from the header"
        )
    )
    return StackGeometry(
        order, (_slice_gap_default(first), *_spacing_2d(first)), origin, direction, note
    )


def _check_steps(steps: np.ndarray, names: list[str], pos: np.ndarray, where: str) -> float:
    """Slice spacing from sorted positions; errors for duplicates, gaps, irregular steps."""
    dup = np.flatnonzero(steps < _DUPLICATE_MM)
    if dup.size:
        i = int(dup[0])
        raise DatasetError(
            f"{dup.size} duplicate slice position(s), e.g. {names[i]} and {names[i + 1]} "
            f"both at {pos[i]:.3f} mm along the slice normal "
            "(several echoes, phases or acquisitions in one series?); "
            "segloop reads one 3D stack",
            path=where,
        )
    step = float(np.median(steps))
    tol = 0.01 * step + 0.01
    if np.all(np.abs(steps - step) <= tol):
        return float(steps.mean())
    ratio = steps / step
    gaps = np.flatnonzero((np.abs(ratio - np.rint(ratio)) * step <= tol) & (ratio > 1.5))
    if gaps.size and np.all(np.abs(steps - step * np.maximum(np.rint(ratio), 1)) <= tol):
        i = int(gaps[0])
        missing = int(sum(np.rint(ratio[gaps]) - 1))
        raise DatasetError(
            f"{missing} slice(s) missing: a gap of {steps[i]:.3f} mm between {names[i]} and "
            f"{names[i + 1]} (at {pos[i]:.3f} and {pos[i + 1]:.3f} mm) where slices are "
            f"{step:.3f} mm apart",
            path=where,
        )
    raise DatasetError(
        f"slice spacing is not uniform: steps range from {steps.min():.3f} to "
        f"{steps.max():.3f} mm (median {step:.3f} mm, e.g. {steps.max():.3f} mm after "
        f"{names[int(np.argmax(steps))]})",
        path=where,
    )


def stack_planes(planes: list[Plane], *, where: str) -> StackGeometry:
    """Sort planes along their normal and derive the 3D grid they form.

    Parameters
    ----------
    planes : list of Plane
        The planes of one series (or one multi-frame file), in any order.
    where : str
        Folder or file named in error messages.

    Returns
    -------
    StackGeometry
        ``order[k]`` is the index in ``planes`` of slice ``k``; spacing is
        ``(slice step, row spacing, column spacing)``; origin is the position
        of the first sorted plane.

    Raises
    ------
    DatasetError
        Planes with different orientations or pixel spacings, planes sharing
        a position, a missing slice, irregular slice steps, planes not
        stacked along their normal (gantry tilt), or some planes (not all)
        without ``ImagePositionPatient``/``ImageOrientationPatient``.

    Notes
    -----
    When *every* plane lacks position or orientation, the planes are ordered
    by ``InstanceNumber`` (then as given), the slice step comes from the
    header and :attr:`StackGeometry.note` says so.  When only some lack
    them, there is no trustworthy order or origin and an error is raised.
    """
    if not planes:
        raise DatasetError("no image planes to stack", path=where)
    lacking = [p.source for p in planes if p.position is None or p.orientation is None]
    if lacking and len(lacking) < len(planes):
        shown = ", ".join(lacking[:5]) + (
            f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        )
        raise DatasetError(
            f"{len(lacking)} of {len(planes)} planes lack ImagePositionPatient/"
            f"ImageOrientationPatient ({shown}); the slice order and origin cannot be "
            "trusted: remove those files or fix their headers",
            path=where,
        )
    if lacking:
        return _without_positions(planes)
    first = planes[0]
    orient = np.asarray([p.orientation for p in planes], dtype=float)
    bad = np.flatnonzero(np.abs(orient - orient[0]).max(axis=1) > _ORIENT_ATOL)
    if bad.size:
        other = planes[int(bad[0])]
        raise DatasetError(
            f"planes have different orientations: {first.source} "
            f"{list(first.orientation)} vs {other.source} "
            f"{list(other.orientation)}",
            path=where,
        )
    pix = np.asarray([_spacing_2d(p) for p in planes])
    bad = np.flatnonzero(np.abs(pix - pix[0]).max(axis=1) > 1e-4 * pix[0].max())
    if bad.size:
        other = planes[int(bad[0])]
        raise DatasetError(
            f"planes have different pixel spacings: {first.source} "
            f"{pix[0].tolist()} vs {other.source} {pix[int(bad[0])].tolist()}",
            path=where,
        )
    direction = direction_from_orientation(first.orientation, where)
    normal = direction[:, 0]
    xyz = np.asarray([p.position for p in planes], dtype=float)
    along = xyz @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    names = [planes[i].source for i in order]
    if len(planes) == 1:
        step = _slice_gap_default(first)
    else:
        step = _check_steps(np.diff(along[order]), names, along[order], where)
        offsets = xyz[order] - xyz[order[0]]
        inplane = offsets - np.outer(offsets @ normal, normal)
        shear = np.linalg.norm(inplane, axis=1)
        if np.any(shear > 0.01 * np.abs(offsets @ normal) + 0.05):
            k = int(np.argmax(shear))
            raise DatasetError(
                f"planes are not stacked along their normal: {names[k]} is shifted "
                f"{shear[k]:.2f} mm sideways (gantry tilt or a sheared series); "
                "resample it to an orthogonal grid first",
                path=where,
            )
    origin = tuple(float(v) for v in xyz[order[0]])
    return StackGeometry(order, (float(step), *map(float, pix[0])), origin, direction)
