"""Layouts of 2D images with several labels each (structures, raters).

* ``ct_slices_sammed2d``: ``images/<slice>.png`` + ``masks/<slice>_<structure>_<k>.png``
  (in ``data_demo/`` or the folder itself), one binary PNG per connected
  component of a structure.  **One case per slice**: each structure is a
  label of its own (its components merged), and the main label
  ``structures`` paints them all into one map whose class ids number the
  structure names of the whole folder in sorted order
  (``metadata["classes"]``).  A slice without masks is an unlabelled case.
* ``retina_drive_2raters``: ``<split>/images/NN_<split>.tif`` with
  ``1st_manual/NN_manual1.gif`` (label ``rater1``, 0/255), ``2nd_manual/
  NN_manual2.gif`` (``rater2``, palette {0, 1}) and ``mask/NN_<split>_mask.gif``
  (``fov``), below ``DRIVE/`` or not.  ``rater1`` and ``rater2`` are the
  raters of kind ``manual`` (``case.raters``); ``fov`` is not a rater.

These 2D sets say nothing about subjects: each image is its own subject.
"""

from __future__ import annotations

import re
from pathlib import Path

from segloop.io.dataset import Case
from segloop.io.layouts_base import (
    RASTER_SUFFIXES,
    Found,
    Layout,
    dirs_in,
    files_in,
    relative,
    stem_of,
)

__all__ = ["MULTI_LAYOUTS"]

# ------------------------------------------------------------------------ ct_slices_sammed2d
_COMPONENT = re.compile(r"^(.+)_(\d{3})$")


def _sam_folder(root: Path) -> Path:
    return root / "data_demo" if (root / "data_demo").is_dir() else root


def _sam_structures(
    folder: Path,
) -> tuple[dict[str, Path], dict[str, dict[str, list[Path]]], list[Path]]:
    """Images by stem; per image stem, structure -> component files; orphan masks."""
    images = {stem_of(p): p for p in files_in(folder / "images", RASTER_SUFFIXES)}
    by_length = sorted(images, key=len, reverse=True)
    structures: dict[str, dict[str, list[Path]]] = {}
    orphans = []
    for mask in files_in(folder / "masks", (".png",)):
        match = _COMPONENT.match(stem_of(mask))
        owner = next((s for s in by_length if match and match.group(1).startswith(s + "_")), None)
        if owner is None:
            orphans.append(mask)
            continue
        name = match.group(1)[len(owner) + 1 :]
        structures.setdefault(owner, {}).setdefault(name, []).append(mask)
    return images, structures, orphans


def _detect_sam(root: Path) -> bool:
    folder = _sam_folder(root)
    if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
        return False
    return bool(_sam_structures(folder)[1])


def _build_sam(root: Path) -> Found:
    folder = _sam_folder(root)
    images, structures, orphans = _sam_structures(folder)
    names = sorted({n for per in structures.values() for n in per})
    classes = {n: i + 1 for i, n in enumerate(names)}
    cases = []
    for key, path in images.items():
        per = structures.get(key, {})
        labels = {n: files[0] for n, files in per.items()}
        options = {n: {"parts": tuple((f, 1) for f in files)} for n, files in per.items()}
        if per:
            labels["structures"] = folder / "masks"
            options["structures"] = {
                "parts": tuple((f, classes[n]) for n in sorted(per) for f in per[n])
            }
        cases.append(
            Case(
                key,
                key,
                path,
                labels=labels,
                contrast="ct",
                metadata={"classes": classes, "structures": sorted(per)},
                image_options={"gray": True},
                label_options=options,
            )
        )
    problems = [
        f"{relative(m, root)}: mask without an image (expected masks/<image>_<structure>_<NNN>.png)"
        for m in orphans
    ]
    return Found(cases, problems, "structures")


# ---------------------------------------------------------------------- retina_drive_2raters
def _drive_splits(root: Path) -> list[Path]:
    candidates = [root, *dirs_in(root), *dirs_in(root / "DRIVE")]
    return [d for d in candidates if (d / "images").is_dir() and (d / "1st_manual").is_dir()]


def _detect_drive(root: Path) -> bool:
    return bool(_drive_splits(root))


def _number(path: Path) -> str:
    return stem_of(path).split("_")[0]


def _build_drive(root: Path) -> Found:
    cases, problems = [], []
    raters = (
        ("rater1", "1st_manual", {"threshold": "auto"}),
        ("rater2", "2nd_manual", {}),
        ("fov", "mask", {"threshold": "auto"}),
    )
    for split in _drive_splits(root):
        found = {
            name: {_number(p): p for p in files_in(split / d, RASTER_SUFFIXES)}
            for name, d, _ in raters
        }
        images = {_number(p): p for p in files_in(split / "images", RASTER_SUFFIXES)}
        for number, path in images.items():
            labels = {name: found[name][number] for name, _, _ in raters if number in found[name]}
            manual = {n: n for n in ("rater1", "rater2") if n in labels}
            cases.append(
                Case(
                    stem_of(path),
                    stem_of(path),
                    path,
                    labels=labels,
                    contrast="fundus",
                    metadata={"split": split.name},
                    label_options={n: dict(o) for n, _, o in raters},
                    raters={"manual": manual} if manual else {},
                )
            )
        for name, _, _ in raters:
            for number in sorted(found[name].keys() - images.keys()):
                problems.append(f"{relative(found[name][number], root)}: {name} without an image")
    return Found(cases, problems, "rater1")


MULTI_LAYOUTS = {
    "ct_slices_sammed2d": Layout(
        "ct_slices_sammed2d",
        "images/<slice>.png + masks/<slice>_<structure>_<NNN>.png (in data_demo/ or not)",
        _detect_sam,
        _build_sam,
    ),
    "retina_drive_2raters": Layout(
        "retina_drive_2raters",
        "[DRIVE/]<split>/images/NN_<split>.tif + 1st_manual/ + 2nd_manual/ + mask/",
        _detect_drive,
        _build_drive,
    ),
}
