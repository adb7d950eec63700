"""The objects of the clicks benchmark: one image and one object mask per case.

:func:`click_cases` maps a dataset folder (any layout :func:`segloop.io.open_dataset`
knows) to a deterministic list of :class:`ClickCase`: the image (float32,
``(y, x)`` or ``(z, y, x)``; colour images keep their channels last,
``colour=True``), the boolean mask of **one** object and the voxel size. An
object is a connected component (4-/6-connected) of one structure, of at
least ``MIN_SIZE[layout]`` pixels:

========================  =================================================================
layout                    objects
========================  =================================================================
``ct_slices_sammed2d``    each structure's components (the ``structures`` union left out)
``cxr_lungs``             each lung (components of the mask)
``lgg_flair``             per slice with >= ``LGG_MIN_AREA`` px of FLAIR abnormality, its
                          largest component; the image is the FLAIR channel (grey)
``nuclei_dsb2018``        each nucleus (its instance mask's largest component), colour kept
``nuclei_dsb2018_96``     components of the merged nuclei mask
``polyps_kvasir``         the polyp(s): components of the mask, colour kept
``em_isbi2012``           cells: components of the 255 interior not touching the border
``brats2013``             whole tumour (labels > 0): 2D, the axial slice with the largest
                          area (its largest component); 3D, the largest component, in its
                          region of interest (``ROI_MARGIN``)
``left_atrium_h5``        the atrium, as for BRATS (2D slice with the largest area, and 3D)
``spinalcord_sct``        the cord on every axial slice of the T2 volume
any other layout          the main label, per value: components (2D images); on volumes
                          as for BRATS
========================  =================================================================

"Axial" is the array axis whose direction is closest to the patient's
head-foot axis. Cases without a mask, with an empty mask or with a mask of
another shape than the image, and objects below the size or touching the
border (EM) are skipped and counted by reason. ``limit`` keeps at most that
many objects per dataset and dimension, spread evenly over the stably sorted
list (cases in the layout's natural order, objects in label order).

Examples
--------
>>> spread(10, 3)
[1, 5, 8]
>>> spread(2, 5)
[0, 1]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from segloop.errors import DatasetError, InvalidArgumentError
from segloop.io import Case, Image, open_dataset

__all__ = ["LGG_MIN_AREA", "MIN_SIZE", "ROI_MARGIN", "ROI_MIN", "ClickCase", "ClickData",
           "check_dims", "click_cases", "spread"]

#: Smallest object kept, in pixels (voxels for 3D objects), per layout.
MIN_SIZE = {"ct_slices_sammed2d": 100, "cxr_lungs": 1000, "lgg_flair": 100,
            "nuclei_dsb2018": 30, "nuclei_dsb2018_96": 20, "polyps_kvasir": 1000,
            "em_isbi2012": 200, "brats2013": 100, "left_atrium_h5": 100, "spinalcord_sct": 20}
_DEFAULT_MIN = 50
#: An LGG slice counts when its FLAIR abnormality covers at least this many pixels.
LGG_MIN_AREA = 300
#: 3D objects come in their region of interest: the bounding box grown by this fraction of its
#: size on each side (at least ``ROI_MIN`` voxels), as a user crops a volume to work on it.
ROI_MARGIN, ROI_MIN = 0.5, 8
_LGG_FLAIR = 1  # channels of the LGG TIFFs: pre-contrast T1, FLAIR, post-contrast T1


@dataclass(frozen=True)
class ClickCase:
    """One object to segment: the image, its mask and where they come from."""

    dataset: str
    case_id: str
    object_id: str
    image: np.ndarray
    truth: np.ndarray
    spacing: tuple[float, ...]
    colour: bool = False

    @property
    def ndim(self) -> int:
        """Spatial dimensions (2 or 3)."""
        return self.truth.ndim

    @property
    def key(self) -> str:
        """``case_id/object_id``."""
        return f"{self.case_id}/{self.object_id}"


@dataclass
class ClickData:
    """The objects of one dataset folder, and what was skipped (reason -> count)."""

    dataset: str
    layout: str
    cases: list[ClickCase]
    skipped: dict[str, int] = field(default_factory=dict)
    found: dict[int, int] = field(default_factory=dict)  # objects per dims before ``limit``


def spread(n: int, limit: int | None) -> list[int]:
    """``limit`` indices out of ``range(n)``, evenly spread (all of them when it is larger)."""
    if limit is None or limit >= n:
        return list(range(n))
    return [int((i + 0.5) * n / limit) for i in range(limit)]


def check_dims(dims) -> tuple[int, ...]:
    """``dims`` as a sorted tuple of 2 and/or 3."""
    try:
        out = tuple(sorted({int(d) for d in dims}))
    except (TypeError, ValueError):
        out = ()
    if not out or not set(out) <= {2, 3} or any(isinstance(d, bool) for d in dims):
        raise InvalidArgumentError(f"dims must be 2 and/or 3, got dims={dims!r}")
    return out


# ------------------------------------------------------------------------ helpers


def _pixels(img: Image, channel: int | None = None) -> tuple[np.ndarray, bool]:
    """Float32 intensities; colour channels kept last unless they are all equal (grey)."""
    arr = np.asarray(img.array)
    if not img.channels:
        return arr.astype(np.float32), False
    if channel is not None:
        return arr[..., channel].astype(np.float32), False
    arr = arr[..., :3]
    if all(np.array_equal(arr[..., 0], arr[..., c]) for c in range(1, arr.shape[-1])):
        return arr[..., 0].astype(np.float32), False
    return arr.astype(np.float32), True


def _components(mask: np.ndarray, min_size: int, skipped: Counter, *,
                border: bool = True) -> list[np.ndarray]:
    """Connected components of ``mask`` (label order) with at least ``min_size`` pixels."""
    labels, n = ndi.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    off = set()
    if not border:
        off = set(np.unique(np.concatenate([np.moveaxis(labels, a, 0)[[0, -1]].ravel()
                                            for a in range(labels.ndim)])).tolist())
    out = []
    for k in range(1, n + 1):
        if k in off:
            skipped["object touches the image border"] += 1
        elif sizes[k] < min_size:
            skipped[f"object below {min_size} px"] += 1
        else:
            out.append(labels == k)
    return out


def _largest(mask: np.ndarray, min_size: int, skipped: Counter) -> np.ndarray | None:
    labels, n = ndi.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    if n == 0 or sizes.max() < min_size:
        skipped[f"object below {min_size} px"] += 1
        return None
    return labels == 1 + int(np.argmax(sizes))


def _axial(img: Image) -> int:
    """The array axis closest to the head-foot (world z) axis."""
    direction = np.asarray(img.direction, dtype=float)
    return int(np.argmax(np.abs(direction[-1]))) if direction.shape == (3, 3) else 0


def _roi(obj: np.ndarray) -> tuple[slice, ...]:
    """The object's bounding box grown by ``ROI_MARGIN`` of its size (>= ``ROI_MIN``) per side."""
    idx = np.argwhere(obj)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    grow = np.maximum(np.ceil(ROI_MARGIN * (hi - lo)), ROI_MIN).astype(int)
    return tuple(slice(max(a - g, 0), min(b + g, n))
                 for a, b, g, n in zip(lo, hi, grow, obj.shape, strict=True))


def _slice(arr: np.ndarray, axis: int, i: int) -> np.ndarray:
    return np.ascontiguousarray(np.take(arr, i, axis=axis))


def _drop(spacing, axis: int) -> tuple[float, ...]:
    return tuple(float(s) for j, s in enumerate(spacing) if j != axis)


# ------------------------------------------------------------------------ objects per layout

_Object = tuple[str, np.ndarray, np.ndarray, tuple[float, ...], bool]  # id, image, truth, sp, col


def _volume(img, mask, name, min_size, dims, skipped) -> Iterator[_Object]:
    """The largest-area axial slice (2D) and the largest component (3D) of ``mask``."""
    pixels, colour = _pixels(img)
    if 2 in dims:
        axis = _axial(img)
        i = int(np.argmax(mask.sum(axis=tuple(a for a in range(3) if a != axis))))
        obj = _largest(_slice(mask, axis, i), min_size, skipped)
        if obj is not None:
            yield (f"{name}-slice{i}", _slice(pixels, axis, i), obj, _drop(img.spacing, axis),
                   colour)
    if 3 in dims:
        obj = _largest(mask, min_size, skipped)
        if obj is not None:
            roi = _roi(obj)
            yield (f"{name}-3d", np.ascontiguousarray(pixels[roi]),
                   np.ascontiguousarray(obj[roi]), tuple(map(float, img.spacing)), colour)


def _objects(layout: str, case: Case, img: Image, labels: dict[str, np.ndarray], dims,
             skipped: Counter) -> Iterator[_Object]:
    """Every object of one case (see the module's table)."""
    min_size = MIN_SIZE.get(layout, _DEFAULT_MIN)
    spacing = tuple(float(s) for s in img.spacing)
    if layout in ("brats2013", "left_atrium_h5"):
        (mask,) = labels.values()
        yield from _volume(img, mask > 0, "whole" if layout == "brats2013" else "atrium",
                           min_size, dims, skipped)
        return
    if len(img.shape) == 3 and layout == "spinalcord_sct":
        (mask,) = labels.values()
        pixels, _ = _pixels(img)
        axis = _axial(img)
        for i in range(mask.shape[axis]):
            cut = _slice(mask, axis, i) > 0
            if cut.any() and 2 in dims:
                obj = _largest(cut, min_size, skipped)
                if obj is not None:
                    yield (f"cord-slice{i}", _slice(pixels, axis, i), obj, _drop(spacing, axis),
                           False)
        return
    if len(img.shape) == 3:  # any other volume: per label value
        for name, mask in labels.items():
            for v in np.unique(mask[mask > 0]).tolist():
                yield from _volume(img, mask == v, f"{name}{v}", min_size, dims, skipped)
        return
    if 2 not in dims:
        return
    if layout == "lgg_flair":
        pixels, colour = _pixels(img, _LGG_FLAIR if img.channels else None)
        (mask,) = labels.values()
        if int((mask > 0).sum()) < LGG_MIN_AREA:
            skipped[f"tumour below {LGG_MIN_AREA} px on the slice"] += 1
            return
        obj = _largest(mask > 0, min_size, skipped)
        if obj is not None:
            yield "tumour", pixels, obj, spacing, colour
        return
    pixels, colour = _pixels(img)
    for name, mask in labels.items():
        values = [1] if layout in ("cxr_lungs", "em_isbi2012", "polyps_kvasir",
                                   "nuclei_dsb2018_96") else np.unique(mask[mask > 0]).tolist()
        for v in values:
            part = mask == v if layout != "polyps_kvasir" else mask > 0
            if layout == "nuclei_dsb2018":
                obj = _largest(part, min_size, skipped)
                found = [] if obj is None else [obj]
            else:
                found = _components(part, min_size, skipped, border=layout != "em_isbi2012")
            tag = f"{name}-{v}" if layout == "nuclei_dsb2018" or len(values) > 1 else name
            for k, obj in enumerate(found, 1):
                yield (tag if len(found) == 1 else f"{tag}#{k}"), pixels, obj, spacing, colour


def _label_names(layout: str, case: Case) -> list[str]:
    if layout == "ct_slices_sammed2d":
        return [n for n in sorted(case.labels) if n != case.label]
    return [case.label] if case.has_label() else []


def _case_objects(layout, case, dims, skipped) -> list[_Object]:
    """Read one case; its objects (skips counted)."""
    if layout == "spinalcord_sct" and case.contrast != "t2":
        skipped["not the T2 volume (spinalcord_sct: cord on T2 axial slices)"] += 1
        return []
    names = _label_names(layout, case)
    if not names:
        skipped["no mask"] += 1
        return []
    img = case.read_image()
    labels = {}
    for name in names:
        mask = np.asarray(case.read_label(name).array)
        if mask.shape != img.shape:
            skipped["mask shape differs from the image"] += 1
        elif not mask.any():
            skipped["empty mask"] += 1
        else:
            labels[name] = mask
    return list(_objects(layout, case, img, labels, dims, skipped)) if labels else []


def click_cases(path, *, dims=(2,), limit: int | None = None,
                format: str | None = None) -> ClickData:
    """The objects of a dataset folder for the clicks benchmark.

    Parameters
    ----------
    path : str or pathlib.Path
        A dataset folder.
    dims : sequence of int
        2 (images and slices) and/or 3 (volumes).
    limit : int, optional
        At most this many objects per dimension, evenly spread (:func:`spread`).
    format : str, optional
        The dataset layout (default: detected).

    Returns
    -------
    ClickData

    Raises
    ------
    segloop.errors.DatasetError
        The folder has no mask at all.
    segloop.errors.InvalidArgumentError
        Bad ``dims`` or ``limit``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from segloop.io import write_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> lab = np.zeros((40, 40), np.uint8); lab[5:15, 5:15] = 1; lab[20:35, 20:30] = 2
    >>> write_image(Image(lab * 100), root / "images" / "a.png")
    >>> write_image(Image(lab, kind="label"), root / "labels" / "a.png")
    >>> [(c.object_id, int(c.truth.sum())) for c in click_cases(root).cases]
    [('label-1', 100), ('label-2', 150)]
    """
    dims = check_dims(dims)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be a positive integer or None, got {limit!r}")
    root = Path(path)
    ds = open_dataset(root, format=format)
    if not any(_label_names(ds.layout, c) for c in ds.cases):
        raise DatasetError(f"no masks found ({ds.layout} layout, {len(ds.cases)} cases): "
                           "the clicks benchmark needs a manual mask per object", path=root)
    skipped: Counter = Counter()
    found = [(i, obj[0], obj[2].ndim) for i, case in enumerate(ds.cases)
             for obj in _case_objects(ds.layout, case, dims, skipped)]
    keep = set()
    for d in dims:
        of_d = [(i, name) for i, name, nd in found if nd == d]
        keep |= {of_d[j] for j in spread(len(of_d), limit)}
    cases = []
    for i in sorted({i for i, _ in keep}):
        for name, pixels, truth, sp, colour in _case_objects(ds.layout, ds.cases[i], dims,
                                                              Counter()):
            if (i, name) in keep:
                cases.append(ClickCase(root.name, ds.cases[i].id, name, pixels, truth, sp, colour))
    counts = Counter(nd for _, _, nd in found)
    return ClickData(root.name, ds.layout, cases, dict(sorted(skipped.items())),
                     {d: counts.get(d, 0) for d in dims})
