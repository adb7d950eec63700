"""Fuse rater label files: the API of ``segloop fuse``.

:func:`fuse_files` takes the raters of one image (label files, or a folder
holding only them) and writes one fused file; or a dataset folder whose cases
list raters (``labels/<rater>/``, BIDS ``derivatives/labels-<rater>/`` or
``_rater-<id>``, QUBIQ, DRIVE) and writes one fused file per case into a
folder.  Majority vote, weighted vote and STAPLE write a label map; ``soft``
writes the soft consensus (float in [0, 1], the mean of the raters, or
STAPLE's posterior with ``soft="staple"``), the float label SoftSeg training
learns from.  The output keeps the first rater's grid (spacing, origin,
direction); every rater must be on that grid.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, read_image, write_image
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for i, cols in enumerate([(2, 6), (2, 6), (3, 7)]):
...     a = np.zeros((8, 8), np.uint8); a[2:6, cols[0]:cols[1]] = 1
...     write_image(Image(a, kind="label"), d / f"r{i}.nii.gz")
>>> out = fuse_files(sorted(d.glob("r*.nii.gz")), d / "fused.nii.gz", method="majority")
>>> int(read_image(out).array.sum())
16
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from segloop.errors import FileMissingError, InvalidArgumentError
from segloop.fusion.rater_cases import choose_kind
from segloop.fusion.soft import FUSION_METHODS, fuse
from segloop.fusion.staple import STAPLE_VOXELS
from segloop.io import Image, check_same_grid, open_dataset, write_image
from segloop.io.bids import IMAGE_EXTENSIONS
from segloop.io.dataset_sources import read_source
from segloop.io.files import compound_suffix

__all__ = ["fuse_files", "fuse_images"]


def _as_labels(images: dict[str, Image], class_value: int | None) -> dict[str, np.ndarray]:
    first_id, first = next(iter(images.items()))
    for rater, image in images.items():
        if image.kind != "label" or image.channels:
            raise InvalidArgumentError(
                f"rater {rater} ({image.metadata.get('path', rater)}): not a label map "
                f"({'several channels' if image.channels else image.kind}); raters must be "
                "label maps")
        if rater != first_id:
            check_same_grid(first, image)
    arrays = {r: np.asarray(im.array) for r, im in images.items()}
    if class_value is not None:
        return {r: (a == class_value).astype(np.uint8) for r, a in arrays.items()}
    return arrays


def fuse_images(images: dict[str, Image], method: str = "majority", *,
                class_value: int | None = None, soft: str = "mean",
                staple_voxels: str = "all") -> Image:
    """Fuse rater label images (same grid) into one Image on their grid.

    Parameters
    ----------
    images : dict of str to Image
        Rater id -> label image.
    method : str
        One of :data:`~segloop.fusion.soft.FUSION_METHODS`.
    class_value : int, optional
        Fuse only this label of multi-label maps (binary result).
    soft : {"mean", "staple"}
        With ``method="soft"``: the mean of the raters or STAPLE's posterior.
    staple_voxels : {"all", "disputed"}
        Binary STAPLE's EM on every voxel (default) or on those where the
        raters disagree only (:mod:`segloop.fusion.staple`); multi-label
        STAPLE uses all.

    Returns
    -------
    Image
        A label map, or a soft label (``kind="soft"``) for ``method="soft"``.
    """
    if method not in FUSION_METHODS:
        raise InvalidArgumentError(f"method {method!r}: expected one of "
                                   f"{', '.join(FUSION_METHODS)}")
    if not images:
        raise InvalidArgumentError("no rater to fuse")
    if staple_voxels not in STAPLE_VOXELS:
        raise InvalidArgumentError(f"staple_voxels {staple_voxels!r}: expected one of "
                                   f"{', '.join(STAPLE_VOXELS)}")
    arrays = _as_labels(images, class_value)
    options = {"soft": soft} if method == "soft" else {}
    binary = all(int(a.max(initial=0)) <= 1 for a in arrays.values())
    if binary and (method == "staple" or (method == "soft" and soft == "staple")):
        options["disputed_only"] = staple_voxels == "disputed"
    fused = fuse(arrays, method, **options)
    first = next(iter(images.values()))
    kind = "soft" if method == "soft" else "label"
    big = fused.max(initial=0) >= 256
    dtype = np.float32 if kind == "soft" else (np.uint16 if big else np.uint8)
    out = first.with_array(np.asarray(fused, dtype=dtype), kind=kind)
    out.metadata.update(raters=list(images), fusion=method)
    return out


def _rater_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and compound_suffix(p).lower() in IMAGE_EXTENSIONS)


def _fuse_dataset(folder: Path, out: Path, method: str, *, overwrite: bool, kind: str | None,
                  log, **options) -> list[Path]:
    dataset = open_dataset(folder)
    kind = choose_kind(dataset, kind)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out {out}: a dataset of raters fuses into a folder, "
                                   "not a file")
    written = []
    for case in dataset.cases:
        images = case.read_raters(kind) if kind in case.raters else {}
        if not images:
            log(f"{case.id}: no rater, skipped")
            continue
        suffix = ".nii.gz" if method == "soft" else compound_suffix(next(iter(
            case.labels[n] for n in case.rater_labels(kind).values()))) or ".nii.gz"
        if suffix.lower() in (".jpg", ".jpeg", ".gif") or method == "soft":
            suffix = ".nii.gz" if method == "soft" else ".png"
        target = out / f"{case.id}_{method}{suffix}"
        write_image(fuse_images(images, method, **options), target, overwrite=overwrite)
        log(f"{case.id}: {len(images)} raters -> {target}")
        written.append(target)
    return written


def fuse_files(
    raters: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    method: str = "majority",
    overwrite: bool = False,
    kind: str | None = None,
    class_value: int | None = None,
    soft: str = "mean",
    staple_voxels: str = "all",
    log: Callable[[str], None] = lambda line: None,
) -> Path | list[Path]:
    """Fuse rater files into ``out`` (a file), or a dataset's raters into ``out/`` (a folder).

    Parameters
    ----------
    raters : path or sequence of paths
        Label files of one image (one per rater), a folder holding only such
        files, or a dataset folder whose cases list raters.
    out : path
        The fused file; for a dataset, the folder receiving
        ``<case id>_<method><ext>`` per case.
    method : str
        ``majority``, ``weighted``, ``staple`` or ``soft``.
    overwrite : bool
        Replace existing outputs (old files kept as numbered versions).
    kind : str, optional
        Which raters' labels of a dataset with several kinds.
    class_value : int, optional
        Fuse only this label of multi-label maps.
    soft : {"mean", "staple"}
        The soft consensus ``method="soft"`` writes.
    staple_voxels : {"all", "disputed"}
        The voxels binary STAPLE's EM sees (see :func:`fuse_images`).
    log : callable
        Receives a line per case (datasets).

    Returns
    -------
    pathlib.Path or list of pathlib.Path
        The file written, or the files written per case.
    """
    if method not in FUSION_METHODS:
        raise InvalidArgumentError(f"--method {method!r}: expected one of "
                                   f"{', '.join(FUSION_METHODS)}")
    paths = [Path(raters)] if isinstance(raters, str | os.PathLike) else [Path(p) for p in raters]
    if not paths:
        raise InvalidArgumentError("--raters: give rater label files or a folder")
    for path in paths:
        if not path.exists():
            raise FileMissingError("no such rater file or folder", path=path)
    out = Path(out)
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        files = _rater_files(folder)
        if not files or any(p.is_dir() for p in folder.iterdir() if not p.name.startswith(".")):
            return _fuse_dataset(folder, out, method, overwrite=overwrite, kind=kind, log=log,
                                 class_value=class_value, soft=soft,
                                 staple_voxels=staple_voxels)
        paths = files
    folders = [p for p in paths if p.is_dir()]
    if folders:
        raise InvalidArgumentError(f"--raters: {folders[0]} is a folder; give either one folder "
                                   "or several label files")
    if out.is_dir():
        raise InvalidArgumentError(f"--out {out} is a folder; the raters of one image fuse "
                                   "into one file")
    names = [compound_suffix(p) and p.name[: -len(compound_suffix(p))] or p.name for p in paths]
    ids = names if len(set(names)) == len(names) else [str(p) for p in paths]
    # label maps; 8-bit 0/255 masks become {0, 1}
    images = {rater: read_source(p, {"threshold": "auto"}, kind="label")
              for rater, p in zip(ids, paths, strict=True)}
    fused = fuse_images(images, method, class_value=class_value, soft=soft,
                        staple_voxels=staple_voxels)
    write_image(fused, out, overwrite=overwrite)
    return out
