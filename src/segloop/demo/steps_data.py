"""Demo steps of the foundation: real-data I/O, metrics, phantoms."""

from __future__ import annotations

from typing import Any

import numpy as np

from segloop.data.mni152 import TISSUE_NAMES, load_mni152
from segloop.data.phantoms import phantom_3d
from segloop.demo.figures import orthogonal_overlay
from segloop.io import Image, check_same_grid, read_image, write_image
from segloop.io.describe import describe
from segloop.metrics import label_metrics

__all__ = ["multi_otsu_labels", "step_baseline", "step_data", "step_phantom"]


def _rel(ctx, path) -> str:
    return str(path.relative_to(ctx.out))


def step_data(ctx) -> dict[str, Any]:
    """Load the MNI152 template, write it in several formats, read it back, check geometry."""
    mni = load_mni152()
    files = {}
    checks = {}
    for name, image, suffix in (("t1", mni.t1, ".nii.gz"), ("tissue", mni.tissue, ".nii.gz"),
                                ("brain", mni.brain, ".nii.gz"), ("tissue", mni.tissue, ".nrrd")):
        path = ctx.path("data", f"mni152_{name}{suffix}")
        write_image(image, path)
        back = read_image(path, kind=image.kind)
        check_same_grid(back, image)
        same = bool(np.array_equal(back.array, image.array))
        checks[f"{name}{suffix}"] = same
        files[f"{name}{suffix}"] = _rel(ctx, path)
    mid = mni.t1.shape[0] // 2 + 10
    slice_img = Image((mni.t1.array[mid] * 255).round().astype(np.uint8),
                      spacing=mni.t1.spacing[1:])
    write_image(slice_img, ctx.path("data", "mni152_t1_axial.png"))
    files["axial_png"] = "data/mni152_t1_axial.png"
    fig = orthogonal_overlay(mni.t1, {"tissue": mni.tissue}, ctx.path("figures", "tissue.png"),
                             title="MNI152 T1 with its tissue label map",
                             names=TISSUE_NAMES)
    files["figure"] = _rel(ctx, fig)
    counts = np.bincount(mni.tissue.array.ravel(), minlength=4)
    info = describe(mni.t1)
    report = [
        f"- T1 template: {' x '.join(map(str, info['shape']))} voxels (z, y, x), "
        f"{' x '.join(f'{s:g}' for s in info['spacing'])} mm, orientation {info['orientation']}.",
        f"- Tissue labels (voxels): CSF {counts[1]:,}, grey matter {counts[2]:,}, "
        f"white matter {counts[3]:,}.",
        f"- Written as NIfTI and NRRD and read back: identical voxels and geometry "
        f"({'all ok' if all(checks.values()) else 'MISMATCH'}).",
        f"- Figure: `{files['figure']}`.",
    ]
    ctx.cache["mni"] = mni
    return {"files": files, "round_trip_ok": checks, "t1": info,
            "tissue_voxels": {TISSUE_NAMES[k]: int(counts[k]) for k in TISSUE_NAMES},
            "report": report}


def multi_otsu_labels(t1: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """CSF (1), grey (2) and white matter (3) by two Otsu thresholds of ``t1`` inside ``brain``.

    Examples
    --------
    >>> t1 = np.repeat([[0.1], [0.5], [0.9]], 20, axis=1) + np.linspace(0, 0.05, 20)
    >>> labels = multi_otsu_labels(t1, np.ones_like(t1, bool))
    >>> labels.min(axis=1).tolist(), np.unique(labels).tolist()
    ([1, 2, 3], [1, 2, 3])
    """
    from skimage.filters import threshold_multiotsu

    values = t1[brain]
    low, high = threshold_multiotsu(values, classes=3)
    out = np.zeros(t1.shape, np.uint8)
    out[brain & (t1 <= low)] = 1
    out[brain & (t1 > low) & (t1 <= high)] = 2
    out[brain & (t1 > high)] = 3
    return out


def step_baseline(ctx) -> dict[str, Any]:
    """Segment tissues by three-class Otsu thresholds and score against the tissue map."""
    mni = ctx.cache.get("mni") or load_mni152()
    brain = mni.brain.array.astype(bool)
    pred = mni.tissue.with_array(multi_otsu_labels(mni.t1.array, brain))
    path = ctx.path("baseline", "otsu_tissue.nii.gz")
    write_image(pred, path)
    scores = label_metrics(pred.array, mni.tissue.array, spacing=mni.t1.spacing,
                           metrics=("dice", "hd95", "assd", "rvd"))
    fig = orthogonal_overlay(mni.t1, {"truth": mni.tissue, "Otsu": pred},
                             ctx.path("figures", "baseline_otsu.png"),
                             title="Three-class Otsu threshold vs the tissue map",
                             names=TISSUE_NAMES)
    rows = {TISSUE_NAMES[k]: {m: round(float(v), 4) for m, v in scores[k].items()}
            for k in sorted(scores)}
    report = ["No training data, one global threshold pair: the baseline every smart tool and "
              "model must beat.", "", "| tissue | Dice | HD95 (mm) | ASSD (mm) | RVD |",
              "|---|---|---|---|---|"]
    for name, s in rows.items():
        report.append(f"| {name} | {s['dice']:.3f} | {s['hd95']:.2f} | {s['assd']:.2f} | "
                      f"{s['rvd']:+.3f} |")
    report += ["", f"Figure: `{_rel(ctx, fig)}`."]
    return {"method": "multi-otsu (3 classes) inside the brain mask", "scores": rows,
            "files": {"prediction": _rel(ctx, path), "figure": _rel(ctx, fig)},
            "report": report}


def step_phantom(ctx) -> dict[str, Any]:
    """Generate a seeded 3D phantom with known truth and save it."""
    ph = phantom_3d(seed=0)
    img = Image(ph.image, spacing=ph.spacing)
    lab = img.with_array(ph.label, kind="label")
    write_image(img, ctx.path("phantom", "phantom3d_image.nii.gz"))
    write_image(lab, ctx.path("phantom", "phantom3d_label.nii.gz"))
    kinds = {int(k): v["kind"] for k, v in ph.info.items()}
    report = [f"- 3D phantom {ph.image.shape}, seed 0: labels "
              + ", ".join(f"{k} ({v})" for k, v in kinds.items())
              + " — the truth later tools are scored against."]
    return {"shape": list(ph.image.shape), "labels": kinds,
            "files": {"image": "phantom/phantom3d_image.nii.gz",
                      "label": "phantom/phantom3d_label.nii.gz"}, "report": report}
