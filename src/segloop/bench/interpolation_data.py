"""The label volumes the interpolation benchmark scores: one object per case.

:func:`iter_volumes` reads the labels (never the images) of a dataset folder
through :func:`segloop.io.open_dataset` and yields one :class:`Volume` per
object to interpolate:

* every 3D case with a label: the object is the label ``> 0`` (for
  ``brats2013``: the whole tumour, labels 1–4; ``left_atrium_h5``: the
  atrium; ``spinalcord_sct``: the manual cord segmentation, ``seg-manual``);
* a label holding 2 to :data:`MAX_LABELS` distinct values is also scored as
  one multi-label case in the group ``<dataset>-labels`` (BRATS: necrosis,
  oedema, non-enhancing and enhancing tumour interpolated together).

Cases without the main label (in ``spinalcord_sct`` only ``t1w`` and ``t2``
have ``seg-manual``), 2D cases and empty labels are skipped and counted. The
grey matter of ``spinalcord_sct/t2s`` is left out: its 9 slices, 7.5 mm
apart, change shape too much for any method (Dice 0.2–0.7 measured).
``plane`` says what the slices across ``axis`` are in the patient frame
(the world axis closest to the array axis: x → sagittal, y → coronal,
z → axial). With ``axis=0``: BRATS and the left atrium (HDF5, axes ``xyz``,
0.625 mm) are sliced axially; in ``spinalcord_sct`` the ``t1w`` case is
sliced axially (77 slices hold the cord) but ``t2`` sagittally (its array is
stored right-to-left first; 13 slices hold the cord).

Examples
--------
>>> import numpy as np
>>> plane_of(np.eye(3), 2)
'axial'
>>> to_object(np.array([0, 3, 4], np.uint8)).tolist()
[0, 1, 1]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segloop.errors import SegloopError
from segloop.io import open_dataset

__all__ = ["MAX_LABELS", "Volume", "iter_volumes", "plane_of", "to_object"]

#: A label with more distinct values than this is not scored as a multi-label case.
MAX_LABELS = 8

_PLANES = ("sagittal", "coronal", "axial")  # world x, y, z (LPS)


@dataclass(frozen=True)
class Volume:
    """One object to interpolate: its truth and where it comes from.

    ``truth`` is ``uint8``: 0/1 for one object, or the original label values
    for a multi-label case (``multi`` true).
    """

    dataset: str
    case: str
    label: str
    truth: np.ndarray
    spacing: tuple[float, ...]
    plane: str
    multi: bool = False


def plane_of(direction, axis: int) -> str:
    """Name of the slices across array ``axis`` given an image's ``direction`` (columns)."""
    column = np.abs(np.asarray(direction, dtype=float)[:, axis])
    return _PLANES[int(np.argmax(column))] if column.size == 3 else "unknown"


def to_object(label) -> np.ndarray:
    """The object of a label map: ``uint8`` 1 where the label is positive, else 0."""
    return (np.asarray(label) > 0).astype(np.uint8)


def _volumes_of(name: str, case, axis: int, skipped: Counter) -> list[Volume]:
    image = case.read_label()
    arr = np.asarray(image.array)
    if arr.ndim != 3:
        skipped["not 3D"] += 1
        return []
    if arr.dtype.kind == "f":  # soft labels: the object is where they reach one half
        arr = (arr >= 0.5).astype(np.uint8)
    if not arr.any():
        skipped["empty label"] += 1
        return []
    plane = plane_of(image.direction, axis)
    spacing = tuple(float(s) for s in image.spacing)
    out = [Volume(name, case.id, case.label, to_object(arr), spacing, plane)]
    values = np.unique(arr)
    if 2 <= np.count_nonzero(values) <= MAX_LABELS:  # labels renumbered 1..n if need be
        multi = arr if values.max() < 256 else np.searchsorted(values, arr)
        out.append(Volume(f"{name}-labels", case.id, case.label, multi.astype(np.uint8),
                          spacing, plane, multi=True))
    return out


def iter_volumes(path, *, axis: int = 0, limit: int | None = None,
                 skipped: Counter | None = None) -> Iterator[Volume]:
    """Yield the objects of the dataset folder ``path``, reading one case at a time.

    Parameters
    ----------
    path : str or Path
        A dataset folder of any layout :func:`segloop.io.open_dataset` knows.
    axis : int
        The slicing axis (only used to name the ``plane``).
    limit : int, optional
        At most this many cases (each may give several objects).
    skipped : collections.Counter, optional
        Filled with the reasons cases were skipped and how often.

    Yields
    ------
    Volume
        Group (dataset name, possibly suffixed), case, label and truth.
    """
    skipped = Counter() if skipped is None else skipped
    dataset = open_dataset(path)
    name = Path(path).resolve().name
    done = 0
    for case in dataset.cases:
        if limit is not None and done >= limit:
            break
        if not case.has_label():
            skipped["no label"] += 1
            continue
        try:
            found = _volumes_of(name, case, axis, skipped)
        except SegloopError as exc:  # an unreadable label is counted, not fatal
            skipped[f"unreadable label ({type(exc).__name__})"] += 1
            continue
        done += bool(found)
        yield from found
