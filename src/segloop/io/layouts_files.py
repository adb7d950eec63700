"""Layouts of flat folders of volumes or archives.

* ``acdc_h5``: ``patientNNN_frameNN.h5`` (in the folder or ``data/``) with
  ``image`` and ``label`` stored (z, y, x); labels 1 RV, 2 myocardium, 3 LV.
  The files store no spacing and the SSL4MIS export dropped it, so the
  spacing is unknown (1 mm, ``spacing_known`` false).  Frame 01 is ED and 02
  ES (SSL4MIS convention, ``metadata["phase"]``); ``*.list`` files give
  ``metadata["split"]``.
* ``qubiq_brain_growth_7raters``: an ``.npz`` holding ``image`` (n, y, x),
  ``masks`` (n, raters, y, x) and optionally ``case_ids`` and ``alpha``: one
  case per image with labels ``rater1`` ... ``raterR`` (the main label is
  ``rater1``; ``case.raters == {"manual": {"rater1": "rater1", ...}}``) and
  ``alpha`` (a soft label in [0, 1], not a rater).
* ``spinalcord_sct``: contrast folders (``t1/``, ``t2/``...) holding
  ``X.nii.gz`` and labels ``X_<label>.nii.gz`` (``t2_seg-manual``,
  ``t2s_gmseg_manual``...).  A file is a label of the longest image name it
  extends when the rest starts with a label word (seg, gmseg, wmseg,
  lesion, sc, labeled, labels, level(s), centerline, mask); otherwise it is
  an image (``t2_fake_lesion`` is an image with labels ``lesion_seg`` and
  ``sc_seg``).  The label name is the rest (``seg-manual``, the default main
  label, as in BIDS); the contrast is the folder name; one subject.  A file
  that extends no image name but holds a label word is a label of the
  folder's own image, named by its stem: ``t2/labels.nii.gz`` (point labels
  of vertebral levels) is label ``labels`` of ``t2``,
  ``t2s/MNI-Poly-AMU_level_crop.nii.gz`` (vertebral levels 2-6) is a label
  of ``t2s``.  Labels named ``gmseg`` / ``wmseg`` (SCT's automatic grey and
  white matter segmentations, e.g. ``mt/mt1_gmseg.nii.gz``) are probability
  maps whose values reach about 1.1 (interpolation overshoot): they are read
  as ``kind="soft"`` after clipping to [0, 1] (``metadata["clipped_voxels"]``
  counts the values changed).
* ``totalseg_ct_silver``: ``example_ct*.nii.gz`` / ``example_mr*.nii.gz`` with
  ``example_seg.nii.gz`` (+ ``example_seg_roi_subset``) and
  ``example_seg_mr.nii.gz`` (in ``tests/reference_files/`` or the folder
  itself): TotalSegmentator *model outputs* (label ``seg``, multi-class);
  ``label_map_total_and_total_mr.json`` beside gives the class names.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from segloop.errors import CorruptFileError
from segloop.io.dataset import Case
from segloop.io.layouts_base import Found, Layout, dirs_in, files_in, read_lists, stem_of

__all__ = ["FILE_LAYOUTS"]

_NIFTI = (".nii.gz", ".nii")


# --------------------------------------------------------------------------------- acdc_h5
_ACDC = re.compile(r"^(patient\d+)_frame(\d+)\.h5$")


def _acdc_folder(root: Path) -> Path:
    return root / "data" if (root / "data").is_dir() and not _acdc_files(root) else root


def _acdc_files(folder: Path) -> list[Path]:
    return [p for p in files_in(folder, (".h5",)) if _ACDC.match(p.name)]


def _build_acdc(root: Path) -> Found:
    lists = read_lists(root)
    cases = []
    for path in _acdc_files(_acdc_folder(root)):
        patient, frame = _ACDC.match(path.name).groups()
        meta = {
            "frame": frame,
            "phase": {"01": "ED", "02": "ES"}.get(frame),
            "split": lists.get(stem_of(path)),
        }
        cases.append(
            Case(
                stem_of(path),
                patient,
                path,
                labels={"label": path},
                contrast="cine",
                metadata={k: v for k, v in meta.items() if v is not None},
                image_options={"format": "hdf5", "axes": "zyx", "dataset": "image"},
                label_options={"label": {"format": "hdf5", "axes": "zyx", "dataset": "label"}},
            )
        )
    return Found(cases, [], "label")


# ------------------------------------------------------------------------------ qubiq (npz)
def _npz_keys(path: Path) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return list(archive.files)
    except (OSError, ValueError, zipfile.BadZipFile):
        return []


def _rater_archives(root: Path) -> list[Path]:
    return [p for p in files_in(root, (".npz",)) if {"image", "masks"} <= set(_npz_keys(p))]


def _build_qubiq(root: Path) -> Found:
    cases = []
    for path in _rater_archives(root):
        try:
            with np.load(path, allow_pickle=False) as archive:
                n, raters = archive["masks"].shape[:2]
                ids = (
                    [str(i) for i in archive["case_ids"]]
                    if "case_ids" in archive.files
                    else [f"case{i + 1:02d}" for i in range(n)]
                )
                has_alpha = "alpha" in archive.files
        except (OSError, ValueError) as exc:
            raise CorruptFileError(f"cannot read the rater archive ({exc})", path=path) from exc
        for i, case_id in enumerate(ids):
            names = [f"rater{r + 1}" for r in range(raters)]
            manual = {name: name for name in names}
            options = {name: {"npz": ("masks", i, r)} for r, name in enumerate(names)}
            if has_alpha:
                names.append("alpha")
                options["alpha"] = {"npz": ("alpha", i), "kind": "soft", "scale": 1 / 255}
            cases.append(
                Case(
                    case_id,
                    case_id,
                    path,
                    labels=dict.fromkeys(names, path),
                    contrast="T2",
                    metadata={"index": i},
                    image_options={"npz": ("image", i)},
                    label_options=options,
                    raters={"manual": manual} if manual else {},
                )
            )
    return Found(cases, [], "rater1")


# ---------------------------------------------------------------------------- spinalcord_sct
_LABEL_WORDS = (
    "seg",
    "gmseg",
    "wmseg",
    "lesion",
    "sc",
    "labeled",
    "labels",
    "level",
    "levels",
    "centerline",
    "mask",
)
#: Labels SCT writes as probability maps (``sct_deepseg_gm``, ``sct_segment_graymatter``).
_SOFT_LABELS = ("gmseg", "wmseg")


def _is_label_rest(rest: str) -> bool:
    first = rest.split("_")[0].split("-")[0].lower()
    return first in _LABEL_WORDS


def _has_label_word(stem: str) -> bool:
    return any(word.lower() in _LABEL_WORDS for word in re.split(r"[_-]", stem))


def _split_folder(folder: Path) -> tuple[dict[str, Path], dict[str, dict[str, Path]], list[Path]]:
    """Images by stem, their labels by name, and label-like files without an image.

    A file extending no image name whose name holds a label word
    (``labels.nii.gz``, ``MNI-Poly-AMU_level_crop.nii.gz``) is a label of the
    folder's own image (``t2/t2.nii.gz``), named by its stem; without such an
    image it is reported.
    """
    files = {stem_of(p): p for p in files_in(folder, _NIFTI)}
    images: dict[str, Path] = {}
    owners: dict[str, tuple[str, str]] = {}
    loose: list[str] = []
    for name in sorted(files, key=len):
        prefixes = [s for s in sorted(images, key=len, reverse=True) if name.startswith(s + "_")]
        owner = next((s for s in prefixes if _is_label_rest(name[len(s) + 1 :])), None)
        if owner is not None:
            owners[name] = (owner, name[len(owner) + 1 :])
            continue
        images[name] = files[name]
        if not prefixes and _has_label_word(name):
            loose.append(name)
    labels: dict[str, dict[str, Path]] = {s: {} for s in images}
    for name, (owner, rest) in owners.items():
        labels[owner][rest] = files[name]
    orphans = []
    main = folder.name if folder.name in images and folder.name not in loose else None
    for stem in loose:
        path = images.pop(stem)
        extra = list(labels.pop(stem).values())
        if main is None:
            orphans += [path, *extra]
        else:
            labels[main][stem] = path
            orphans += extra
    return images, labels, orphans


def _sct_folders(root: Path) -> list[Path]:
    return [d for d in dirs_in(root) if not d.name.startswith("sub-")]


def _detect_sct(root: Path) -> bool:
    return any(
        name.startswith("seg")
        for d in _sct_folders(root)
        for labels in _split_folder(d)[1].values()
        for name in labels
    )


def _build_sct(root: Path) -> Found:
    cases, problems = [], []
    for folder in _sct_folders(root):
        images, labels, orphans = _split_folder(folder)
        for stem, path in images.items():
            case_id = stem if stem.startswith(folder.name) else f"{folder.name}_{stem}"
            soft = {"kind": "soft", "clip": (0.0, 1.0)}
            cases.append(
                Case(
                    case_id,
                    root.name,
                    path,
                    labels=labels[stem],
                    contrast=folder.name,
                    metadata={"folder": folder.name},
                    label_options={n: dict(soft) for n in labels[stem] if n in _SOFT_LABELS},
                )
            )
        problems += [
            f"{folder.name}/{p.name}: label-like file without a matching image" for p in orphans
        ]
    return Found(cases, problems, "seg-manual")


# ------------------------------------------------------------------------ totalseg_ct_silver
_TS_IMAGE = re.compile(r"^example_(ct|mr)(_sm)?$")


def _ts_folder(root: Path) -> Path:
    deep = root / "tests" / "reference_files"
    return deep if deep.is_dir() else root


def _detect_ts(root: Path) -> bool:
    stems = {stem_of(p) for p in files_in(_ts_folder(root), _NIFTI)}
    return any(_TS_IMAGE.match(s) for s in stems) and bool(
        stems & {"example_seg", "example_seg_mr"}
    )


def _build_ts(root: Path) -> Found:
    folder = _ts_folder(root)
    files = {stem_of(p): p for p in files_in(folder, _NIFTI)}
    class_maps = {}
    mapping = root / "label_map_total_and_total_mr.json"
    if mapping.is_file():
        class_maps = json.loads(mapping.read_text())
    cases = []
    for stem, path in files.items():
        match = _TS_IMAGE.match(stem)
        if not match:
            continue
        modality = match.group(1)
        seg = "example_seg" if modality == "ct" else "example_seg_mr"
        labels = {"seg": files[seg]} if seg in files else {}
        if modality == "ct" and "example_seg_roi_subset" in files:
            labels["roi_subset"] = files["example_seg_roi_subset"]
        task = "total" if modality == "ct" else "total_mr"
        meta = {"silver": True, "task": task, "classes": class_maps.get(task, {})}
        cases.append(Case(stem, stem, path, labels=labels, contrast=modality, metadata=meta))
    return Found(cases, [], "seg")


FILE_LAYOUTS = {
    "acdc_h5": Layout(
        "acdc_h5",
        "patientNNN_frameNN.h5 (image, label; z, y, x)",
        lambda r: bool(_acdc_files(_acdc_folder(r))),
        _build_acdc,
    ),
    "qubiq_brain_growth_7raters": Layout(
        "qubiq_brain_growth_7raters",
        "*.npz with image (n, y, x) and masks (n, raters, y, x)",
        lambda r: bool(_rater_archives(r)),
        _build_qubiq,
    ),
    "totalseg_ct_silver": Layout(
        "totalseg_ct_silver",
        "[tests/reference_files/]example_{ct,mr}*.nii.gz + example_seg*.nii.gz",
        _detect_ts,
        _build_ts,
    ),
    "spinalcord_sct": Layout(
        "spinalcord_sct",
        "<contrast>/X.nii.gz + X_seg-manual.nii.gz (and other X_<label>.nii.gz)",
        _detect_sct,
        _build_sct,
    ),
}
