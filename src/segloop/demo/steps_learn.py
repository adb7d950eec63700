"""Demo step: a 2D U-Net learns the MNI152 tissue map from a few slabs, in about a minute.

The template's axial slices are cut into slabs of :data:`SLAB` slices; every
fourth slab is held out for testing, the others are the training set. The
slabs are written as an image/label folder pair (NIfTI, with the template's
geometry), the same layout ``segloop train`` reads, so the step runs the real
pipeline: config, cache, sampling, augmentation, training with a wall-clock
budget, checkpoints, test-split metrics, ``predict`` on files and uncertainty
by test-time augmentation. The held-out slabs are scored against the tissue
map beside the three-class Otsu baseline of the ``baseline`` step.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from typing import Any

import numpy as np

from segloop.data.mni152 import TISSUE_NAMES, load_mni152
from segloop.demo.figures import orthogonal_overlay
from segloop.io import Image, read_image, write_image
from segloop.metrics import label_metrics

__all__ = ["MINUTES", "SLAB", "step_learn"]

#: Axial slices per slab (one case of the demo dataset).
SLAB = 12
#: Training budget of the demo (``training.max_minutes``).
MINUTES = 2.0


def _slab(image: Image, z0: int, z1: int) -> Image:
    """Slices ``z0:z1`` of a volume, placed where they were in the world."""
    return Image(image.array[z0:z1], spacing=image.spacing, origin=image.index_to_world((z0, 0, 0)),
                 direction=image.direction, kind=image.kind)


def write_slabs(mni, root) -> tuple[list[str], list[str], dict[str, tuple[int, int]]]:
    """Write the brain's axial slabs as ``images/`` + ``labels/`` pairs.

    Returns the training ids, the test ids and each slab's slice range.
    """
    zs = np.flatnonzero(mni.brain.array.any(axis=(1, 2)))
    train, test, ranges = [], [], {}
    for k, z0 in enumerate(range(int(zs[0]), int(zs[-1]) + 1 - SLAB // 2, SLAB)):
        z1 = min(z0 + SLAB, int(zs[-1]) + 1)
        name = f"slab{k:02d}"
        write_image(_slab(mni.t1, z0, z1), root / "images" / f"{name}.nii.gz")
        write_image(_slab(mni.tissue, z0, z1), root / "labels" / f"{name}.nii.gz")
        (test if k % 4 == 2 else train).append(name)
        ranges[name] = (z0, z1)
    return train, test, ranges


def demo_config(root, out, test: list[str]) -> dict:
    """The demo's training config (the same schema as ``configs/*.yaml``)."""
    return {
        "data": {"path": str(root), "layout": "pairs",
                 "classes": {name: [k] for k, name in sorted(TISSUE_NAMES.items()) if k},
                 "dims": 2, "spacing": [2.0, 2.0], "patch_size": [96, 96],
                 "foreground_ratio": 0.5,
                 "split": {"by": "subject", "test": test, "val": 0, "seed": 0}},
        "model": {"channels": [16, 32, 64], "num_res_units": 1, "dropout": 0.0},
        "augmentation": {"rotate_degrees": 10.0},
        "loss": {"name": "dice_ce"},
        "optim": {"lr": 0.003},
        "training": {"epochs": 50, "iterations_per_epoch": 20, "batch_size": 8,
                     "max_minutes": MINUTES, "seed": 0, "resume": False},
        "inference": {"batch_size": 16},
        "output": {"dir": str(out), "tensorboard": False},
    }


def _dice_rows(pred: np.ndarray, truth: np.ndarray, spacing) -> dict[str, float]:
    scores = label_metrics(pred, truth, spacing=spacing, metrics=("dice",))
    return {TISSUE_NAMES[k]: round(float(scores[k]["dice"]), 4) for k in sorted(scores)}


def step_learn(ctx) -> dict[str, Any]:
    """Train, predict, measure uncertainty and compare with the Otsu baseline."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("monai") is None:
        return {"skipped": "torch and monai are not installed (pip install 'segloop[learn]')",
                "report": ["Skipped: the `learn` extra (torch, MONAI) is not installed; "
                           "`pip install 'segloop[learn]'` (make demo installs it)."]}
    from segloop.demo.steps_data import multi_otsu_labels
    from segloop.learn.config import load_config
    from segloop.learn.predict import load_model
    from segloop.learn.predict_files import predict_paths
    from segloop.learn.train import train

    mni = ctx.cache.get("mni") or load_mni152()
    root, run = ctx.path("learn", "dataset"), ctx.path("learn", "run")
    train_ids, test_ids, ranges = write_slabs(mni, root)
    cfg = load_config(demo_config(root, run, test_ids))
    result = train(cfg, log=lambda line: None)
    model = load_model(run / "best.pt")
    preds = ctx.path("learn", "predictions")
    heldout = ctx.path("learn", "heldout")
    heldout.mkdir(exist_ok=True)
    for t in test_ids:  # the held-out slabs as a folder of new images
        shutil.copy(root / "images" / f"{t}.nii.gz", heldout / f"{t}.nii.gz")
    # files in, files out, as `segloop predict --input DIR --tta --uncertainty` does
    written = predict_paths(model, heldout, preds, tta=True, uncertainty=True)
    scores = json.loads((preds / "uncertainty.json").read_text())
    # Score the held-out slabs as one stack, beside Otsu on the same voxels.
    pred = np.concatenate([read_image(preds / f"{t}_seg.nii.gz", kind="label").array
                           for t in test_ids])
    truth = np.concatenate([read_image(root / "labels" / f"{t}.nii.gz", kind="label").array
                            for t in test_ids])
    t1 = np.concatenate([read_image(root / "images" / f"{t}.nii.gz").array for t in test_ids])
    otsu = multi_otsu_labels(t1, truth > 0)
    spacing = mni.t1.spacing
    unet_dice, otsu_dice = _dice_rows(pred, truth, spacing), _dice_rows(otsu, truth, spacing)
    first = test_ids[0]
    unc = scores.get(f"{first}.nii.gz", next(iter(scores.values())))
    # The whole template, slice by slice; the axial view cuts a held-out slab.
    whole = model.predict(mni.t1).label
    mid = test_ids[len(test_ids) // 2]
    z = sum(ranges[mid]) // 2
    fig = orthogonal_overlay(mni.t1, {"truth": mni.tissue, "U-Net": whole},
                             ctx.path("figures", "learn_unet.png"),
                             point=(z, mni.t1.shape[1] // 2, mni.t1.shape[2] // 2),
                             title=f"2D U-Net after {result['seconds']:.0f} s of training "
                                   f"(axial: held-out slab {mid})", names=TISSUE_NAMES)
    report = [
        f"- Dataset: {len(train_ids)} training and {len(test_ids)} held-out slabs of {SLAB} axial "
        f"slices (every fourth slab held out), written as `learn/dataset/images|labels`.",
        f"- Training: {result['epochs']} epochs, {result['seconds']:.0f} s "
        f"(budget {MINUTES:g} min), {result.get('samples_per_second', 0):.0f} samples/s; "
        f"checkpoints, metrics.csv and learning curves in `learn/run/`.",
        "", "| held-out tissue Dice | CSF | grey matter | white matter |", "|---|---|---|---|",
        "| 2D U-Net | " + " | ".join(f"{unet_dice[n]:.3f}" for n in unet_dice) + " |",
        "| Otsu baseline | " + " | ".join(f"{otsu_dice[n]:.3f}" for n in otsu_dice) + " |",
        "", f"- Uncertainty (test-time flips) on {first}: mean entropy "
        f"{unc['mean_entropy']:.3f}, inter-sample Dice {unc['inter_sample_dice']:.3f}; "
        f"maps `learn/predictions/*_entropy.nii.gz`, scores `learn/predictions/uncertainty.json`.",
        f"- Figure: `{fig.relative_to(ctx.out)}`.",
    ]
    return {"train_cases": train_ids, "test_cases": test_ids, "epochs": result["epochs"],
            "training_seconds": result["seconds"], "test_dice": result["dice"],
            "unet_dice": unet_dice, "otsu_dice": otsu_dice,
            "uncertainty": {name: {k: round(float(v), 4) for k, v in sc.items()}
                            for name, sc in scores.items()},
            "files": {"predictions": [str(p.relative_to(ctx.out)) for p in written],
                      "checkpoint": "learn/run/best.pt", "figure": str(fig.relative_to(ctx.out))},
            "report": report}
