"""Layouts of 2D image folders paired with mask folders, one label per image.

* ``pairs``: ``images/`` + ``labels/`` (or ``masks/``) with the same file
  names; the extension may differ (``images/1.jpg`` <-> ``labels/1.png``);
  sub-folders are followed (the id is the relative path without extension).
  Raster labels are read with ``threshold="auto"`` (0/255 masks become
  {0, 1}, multi-class maps stay), JPEG masks with ``threshold=127``.
  0/255 masks of the layouts below are read with ``"auto"`` too, so that a
  folder of {0, 1} masks laid out the same way keeps its labels.
* ``raters``: ``images/<name>`` + ``labels/<rater>/<name>``: several raters
  per image, ``labels/`` holding one sub-folder per rater (and no image
  file); names are matched as in ``pairs``.  A case's labels are named by
  the rater folders that have its file (a rater may skip images), all of
  kind ``manual`` in ``case.raters``; the main label is the first rater
  folder (``sorted``).  Detected when some file directly in a rater folder
  matches one directly in ``images/`` (with nested ``images/`` folders, give
  ``format="raters"``).  Label files without an image, and image files
  directly in ``labels/``, are problems.
* ``em_isbi2012``: the same with numbered PNG sections (``images/0.png``,
  ``labels/0.png``); 255 = cell interior -> 1, membrane -> 0.
* ``nuclei_dsb2018_96``: ``images/<64-hex id>.png`` + ``masks/<id>.png`` (or
  ``masks/0/``); bilinear-resized masks, threshold > 127.
* ``polyps_kvasir``: ``images/`` + ``masks/`` whose masks are JPEG (noisy,
  colour): mean of the channels > 127.
* ``cxr_lungs``: ``N.jpg`` + ``N-mask.png`` side by side (in ``Demo/Data/``
  or the folder itself).
These 2D sets say nothing about subjects: each image is its own subject
(consecutive EM sections are correlated; split them by position if that
matters).  Layouts with several labels per image are in
:mod:`segloop.io.layouts_multi`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from segloop.io.dataset import Case
from segloop.io.layouts_base import (
    IMAGE_SUFFIXES,
    JPEG_SUFFIXES,
    RASTER_SUFFIXES,
    Found,
    Layout,
    dirs_in,
    files_in,
    natural_key,
    relative,
    stem_of,
)

__all__ = ["PAIR_LAYOUTS"]

_PREFERENCE = (".nii.gz", ".nii", ".png", ".tif", ".tiff")


def _by_stem(folder: Path, suffixes, root: Path, problems: list[str]) -> dict[str, Path]:
    """Files below ``folder`` keyed by relative path without extension; duplicates reported."""
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(suffixes):
            key = Path(relative(p, folder)).parent.joinpath(stem_of(p)).as_posix()
            found.setdefault(key, []).append(p)
    out = {}
    for key, paths in found.items():
        paths.sort(
            key=lambda p: next(
                (i for i, s in enumerate(_PREFERENCE) if p.name.lower().endswith(s)), 99
            )
        )
        if len(paths) > 1:
            problems.append(
                f"duplicate files for {key!r}: "
                f"{', '.join(relative(p, root) for p in paths)} "
                f"(using {relative(paths[0], root)})"
            )
        out[key] = paths[0]
    return dict(sorted(out.items(), key=lambda kv: natural_key(kv[0])))


def _raster_label_options(path: Path) -> dict:
    if path.name.lower().endswith(JPEG_SUFFIXES):
        return {"threshold": 127}
    if path.name.lower().endswith(RASTER_SUFFIXES):
        return {"threshold": "auto"}
    return {}


def _pairs(
    root: Path,
    image_dir: Path,
    label_dirs: dict[str, Path],
    *,
    suffixes=IMAGE_SUFFIXES,
    options=None,
    image_options=None,
    label=None,
    what="{name}",
) -> Found:
    """Cases from an image folder and label folders matched by relative stem.

    ``what`` names a label folder in problems (``{name}``: its label name).
    """
    problems: list[str] = []
    images = _by_stem(image_dir, suffixes, root, problems)
    labels = {name: _by_stem(d, suffixes, root, problems) for name, d in label_dirs.items()}
    cases = []
    for key, path in images.items():
        found = {name: files[key] for name, files in labels.items() if key in files}
        opts = {
            name: dict(options) if options is not None else _raster_label_options(p)
            for name, p in found.items()
        }
        cases.append(
            Case(
                key,
                key,
                path,
                labels=found,
                image_options=dict(image_options or {}),
                label_options=opts,
            )
        )
    for name, files in labels.items():
        for key in files.keys() - images.keys():
            problems.append(
                f"{relative(files[key], root)}: {what.format(name=name)} without an image "
                f"(no {relative(image_dir, root)}/{key}.*)"
            )
    return Found(cases, problems, label or next(iter(label_dirs), None))


def _has_pairs(image_dir: Path, label_dir: Path) -> bool:
    images = {stem_of(p) for p in files_in(image_dir, IMAGE_SUFFIXES)}
    return bool(images) and any(stem_of(p) in images for p in files_in(label_dir, IMAGE_SUFFIXES))


# ------------------------------------------------------------------------------- pairs
def _detect_pairs(root: Path) -> bool:
    return any(_has_pairs(root / "images", root / d) for d in ("labels", "masks"))


def _build_pairs(root: Path) -> Found:
    dirs = {
        name: root / d
        for name, d in (("label", "labels"), ("mask", "masks"))
        if (root / d).is_dir()
    }
    return _pairs(root, root / "images", dirs)


# ------------------------------------------------------------------------------- raters
def _rater_dirs(root: Path) -> dict[str, Path]:
    """Rater id -> folder: the sub-folders of ``labels/``, sorted by name."""
    return {d.name: d for d in sorted(dirs_in(root / "labels"), key=lambda d: d.name)}


def _detect_raters(root: Path) -> bool:
    if files_in(root / "labels", IMAGE_SUFFIXES):
        return False
    return any(_has_pairs(root / "images", d) for d in _rater_dirs(root).values())


def _build_raters(root: Path) -> Found:
    raters = _rater_dirs(root)
    found = _pairs(
        root, root / "images", raters, label=next(iter(raters), None), what="label of rater {name}"
    )
    cases = [
        dataclasses.replace(c, raters={"manual": {n: n for n in sorted(c.labels)}})
        if c.labels
        else c
        for c in found.cases
    ]
    loose = [
        f"{relative(p, root)}: label outside a rater folder (expected labels/<rater>/<name>)"
        for p in files_in(root / "labels", IMAGE_SUFFIXES)
    ]
    return Found(cases, loose + found.problems, found.label)


# ------------------------------------------------------------------------------- em_isbi2012
def _numbered_pngs(folder: Path) -> bool:
    files = files_in(folder)
    return bool(files) and all(p.suffix.lower() == ".png" and p.stem.isdigit() for p in files)


def _detect_em(root: Path) -> bool:
    return _numbered_pngs(root / "images") and _numbered_pngs(root / "labels")


def _build_em(root: Path) -> Found:
    found = _pairs(
        root,
        root / "images",
        {"label": root / "labels"},
        suffixes=(".png",),
        options={"threshold": "auto"},
    )
    cases = [
        Case(
            c.id,
            c.id,
            c.image,
            labels=c.labels,
            contrast="EM",
            metadata={"section": int(c.id)},
            label_options=c.label_options,
        )
        for c in found.cases
    ]
    return Found(cases, found.problems, "label")


# ------------------------------------------------------------------------- nuclei_dsb2018_96
_HEX_ID = re.compile(r"^[0-9a-f]{64}$")


def _dsb96_masks(root: Path) -> Path:
    return root / "masks" / "0" if (root / "masks" / "0").is_dir() else root / "masks"


def _detect_dsb96(root: Path) -> bool:
    images = files_in(root / "images")
    return (
        bool(images)
        and all(p.suffix.lower() == ".png" and _HEX_ID.match(p.stem) for p in images)
        and _has_pairs(root / "images", _dsb96_masks(root))
    )


def _build_dsb96(root: Path) -> Found:
    return _pairs(
        root,
        root / "images",
        {"mask": _dsb96_masks(root)},
        suffixes=(".png",),
        options={"threshold": 127},
    )


# ------------------------------------------------------------------------------ polyps_kvasir
def _detect_kvasir(root: Path) -> bool:
    masks = files_in(root / "masks")
    return (
        bool(masks)
        and all(p.name.lower().endswith(JPEG_SUFFIXES) for p in masks)
        and _has_pairs(root / "images", root / "masks")
    )


def _build_kvasir(root: Path) -> Found:
    return _pairs(root, root / "images", {"mask": root / "masks"}, options={"threshold": 127})


# -------------------------------------------------------------------------------- cxr_lungs
def _cxr_folder(root: Path) -> Path:
    return root / "Demo" / "Data" if (root / "Demo" / "Data").is_dir() else root


def _cxr_pairs(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    masks = {
        p.name[: -len("-mask.png")]: p
        for p in files_in(folder)
        if p.name.lower().endswith("-mask.png")
    }
    images = {
        stem_of(p): p
        for p in files_in(folder, RASTER_SUFFIXES)
        if not p.name.lower().endswith("-mask.png")
    }
    return images, masks


def _detect_cxr(root: Path) -> bool:
    images, masks = _cxr_pairs(_cxr_folder(root))
    return bool(masks.keys() & images.keys())


def _build_cxr(root: Path) -> Found:
    images, masks = _cxr_pairs(_cxr_folder(root))
    cases = [
        Case(
            k,
            k,
            p,
            labels={"mask": masks[k]} if k in masks else {},
            contrast="xray",
            label_options={"mask": {"threshold": "auto"}},
        )
        for k, p in images.items()
    ]
    problems = [
        f"{relative(masks[k], root)}: mask without an image"
        for k in sorted(masks.keys() - images.keys())
    ]
    return Found(cases, problems, "mask")


PAIR_LAYOUTS = {
    "cxr_lungs": Layout("cxr_lungs", "[Demo/Data/]N.jpg + N-mask.png", _detect_cxr, _build_cxr),
    "em_isbi2012": Layout(
        "em_isbi2012", "images/N.png + labels/N.png (numbered sections)", _detect_em, _build_em
    ),
    "nuclei_dsb2018_96": Layout(
        "nuclei_dsb2018_96", "images/<64-hex id>.png + masks/<id>.png", _detect_dsb96, _build_dsb96
    ),
    "polyps_kvasir": Layout(
        "polyps_kvasir", "images/*.jpg + masks/*.jpg (JPEG masks)", _detect_kvasir, _build_kvasir
    ),
    "raters": Layout(
        "raters",
        "images/ + labels/<rater>/ with the same file names (several raters)",
        _detect_raters,
        _build_raters,
    ),
    "pairs": Layout(
        "pairs",
        "images/ + labels/ (or masks/) with the same file names",
        _detect_pairs,
        _build_pairs,
    ),
}
