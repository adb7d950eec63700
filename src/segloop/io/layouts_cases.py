"""Layouts with one folder per case (directly in the root or in split folders).

* ``brats2013``: ``<case>/`` with ``Flair*.nii.gz``, ``T1c*.nii.gz`` (and
  any other modality), ``OTMultiClass.nii.gz`` (0 background, 1 necrosis,
  2 oedema, 3 non-enhancing, 4 enhancing; kept multi-class, the main label)
  and ``brainmask.nii.gz`` (float, thresholded > 0.5).  The image is FLAIR;
  the other modalities are ``extra_images``.
* ``lgg_flair``: ``<patient>_<date>/<patient>_<date>_<N>.tif`` (3 channels:
  pre-contrast T1, FLAIR, post-contrast T1) + ``..._<N>_mask.tif`` (0/255 ->
  {0, 1}); one case per slice; subject = the TCGA patient, session = the
  date, ``institution`` = the TCGA site code; rows of a ``data.csv`` beside
  the folders (column ``Patient``) join the metadata.
* ``left_atrium_h5``: ``<id>/mri_norm2.h5`` with ``image`` and ``label``
  stored (x, y, z), 0.625 mm isotropic (not stored in the file); ``*.list``
  files beside give ``metadata["split"]``.
* ``nuclei_dsb2018``: ``<id>/images/<id>.png`` (RGBA, alpha dropped) +
  ``<id>/masks/*.png`` (one 0/255 mask per nucleus): label ``instances``
  (main; nucleus ``k`` = the ``k``-th mask file in sorted order) and
  ``nuclei`` (their union).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from segloop.io.dataset import Case
from segloop.io.layouts_base import (
    Found,
    Layout,
    case_dirs,
    files_in,
    read_lists,
    relative,
    stem_of,
)

__all__ = ["CASE_LAYOUTS"]

_NIFTI = (".nii.gz", ".nii")


# ------------------------------------------------------------------------------- brats2013
def _is_brats(folder: Path) -> bool:
    return any(stem_of(p).startswith("OTMultiClass") for p in files_in(folder, _NIFTI))


def _build_brats(root: Path) -> Found:
    cases = []
    for folder, split in case_dirs(root, _is_brats):
        modalities: dict[str, Path] = {}
        labels: dict[str, Path] = {}
        for p in files_in(folder, _NIFTI):
            name = stem_of(p)
            if name.startswith(("OTMultiClass", "brainmask")):
                labels[name.split("_")[0]] = p
            else:
                modalities[name.split("_")[0].lower()] = p
        if not modalities:
            continue
        main = next(
            (m for m in ("flair", "t1c", "t1", "t2") if m in modalities), next(iter(modalities))
        )
        extra = {k: v for k, v in modalities.items() if k != main}
        meta = {"modalities": [main, *extra]} | ({"split": split} if split else {})
        cases.append(
            Case(
                folder.name,
                folder.name,
                modalities[main],
                labels=labels,
                contrast=main,
                metadata=meta,
                extra_images=extra,
                label_options={"brainmask": {"threshold": 0.5}},
            )
        )
    return Found(cases, [], "OTMultiClass")


# ------------------------------------------------------------------------------- lgg_flair
_SLICE = re.compile(r"^(.+)_(\d+)(_mask)?\.tiff?$", re.IGNORECASE)


def _is_lgg(folder: Path) -> bool:
    return any(
        _SLICE.match(p.name) and p.name.lower().endswith(("_mask.tif", "_mask.tiff"))
        for p in files_in(folder)
    )


def _clinical(root: Path) -> dict[str, dict]:
    """Rows of ``data.csv`` (Buda et al.) by patient, if the file is there."""
    path = root / "data.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", errors="replace") as fh:
        return {row["Patient"]: row for row in csv.DictReader(fh) if row.get("Patient")}


def _build_lgg(root: Path) -> Found:
    cases, problems = [], []
    rows = _clinical(root)
    for folder, split in case_dirs(root, _is_lgg):
        scan = re.match(r"^(.*?)(?:_(\d{8}))?$", folder.name)
        subject, date = scan.group(1), scan.group(2)
        site = subject.split("_")[1] if subject.count("_") >= 2 else None
        slices: dict[int, dict[str, Path]] = {}
        for p in files_in(folder):
            m = _SLICE.match(p.name)
            if m:
                slices.setdefault(int(m.group(2)), {})["mask" if m.group(3) else "image"] = p
        for n, files in sorted(slices.items()):
            if "image" not in files:
                problems.append(f"{relative(files['mask'], root)}: mask without an image")
                continue
            meta = {"slice": n, "institution": site, **rows.get(subject, {})}
            if split:
                meta["split"] = split
            cases.append(
                Case(
                    stem_of(files["image"]),
                    subject,
                    files["image"],
                    labels={"mask": files["mask"]} if "mask" in files else {},
                    session=date,
                    contrast="T1-FLAIR-T1c",
                    metadata=meta,
                    label_options={"mask": {"threshold": "auto"}},
                )
            )
    return Found(cases, problems, "mask")


# -------------------------------------------------------------------------- left_atrium_h5
_LA_SPACING = (0.625, 0.625, 0.625)


def _is_la(folder: Path) -> bool:
    return (folder / "mri_norm2.h5").is_file()


def _build_la(root: Path) -> Found:
    lists = read_lists(root)
    common = {"format": "hdf5", "axes": "xyz", "spacing": _LA_SPACING}
    cases = []
    for folder, split in case_dirs(root, _is_la):
        meta = {"split": lists.get(folder.name, split)}
        path = folder / "mri_norm2.h5"
        cases.append(
            Case(
                folder.name,
                folder.name,
                path,
                labels={"label": path},
                contrast="LGE-MRI",
                metadata={k: v for k, v in meta.items() if v is not None},
                image_options=dict(common, dataset="image"),
                label_options={"label": dict(common, dataset="label")},
            )
        )
    return Found(cases, [], "label")


# -------------------------------------------------------------------------- nuclei_dsb2018
def _is_dsb(folder: Path) -> bool:
    return (folder / "images" / f"{folder.name}.png").is_file()


def _build_dsb(root: Path) -> Found:
    cases = []
    for folder, split in case_dirs(root, _is_dsb):
        masks = files_in(folder / "masks", (".png",))
        labels, options = {}, {}
        if masks:
            labels = {"instances": folder / "masks", "nuclei": folder / "masks"}
            options = {
                "instances": {"parts": tuple((p, k + 1) for k, p in enumerate(masks))},
                "nuclei": {"parts": tuple((p, 1) for p in masks)},
            }
        meta = {"instances": len(masks)} | ({"split": split} if split else {})
        cases.append(
            Case(
                folder.name,
                folder.name,
                folder / "images" / f"{folder.name}.png",
                labels=labels,
                contrast="microscopy",
                metadata=meta,
                image_options={"rgb": True},
                label_options=options,
            )
        )
    return Found(cases, [], "instances")


def _per_case(name: str, summary: str, is_case, build) -> Layout:
    return Layout(name, summary, lambda root: bool(case_dirs(root, is_case)), build)


CASE_LAYOUTS = {
    layout.name: layout
    for layout in (
        _per_case(
            "brats2013",
            "<case>/{Flair,T1c}*.nii.gz + OTMultiClass.nii.gz + brainmask.nii.gz",
            _is_brats,
            _build_brats,
        ),
        _per_case(
            "lgg_flair", "<patient>/<patient>_N.tif + <patient>_N_mask.tif", _is_lgg, _build_lgg
        ),
        _per_case("left_atrium_h5", "<id>/mri_norm2.h5 (image, label; x, y, z)", _is_la, _build_la),
        _per_case(
            "nuclei_dsb2018",
            "<id>/images/<id>.png + <id>/masks/*.png (one mask per nucleus)",
            _is_dsb,
            _build_dsb,
        ),
    )
}
