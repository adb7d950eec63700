"""Demo step: the learn step's U-Net exported to ONNX and int8, for a laptop CPU.

``segloop export`` turns the checkpoint into a float32 ONNX file and an int8
one (post-training static quantization, calibrated on 16 training slices of
the demo dataset). The held-out slabs are then segmented by all three
(PyTorch float32, ONNX float32, ONNX int8) through the same
:func:`segloop.learn.predict.load_model` path that ``segloop predict`` uses,
and compared: Dice per tissue against the tissue map, voxel agreement with
the float32 labels, the median seconds of three passes over the held-out
slabs (side by side, after a first pass) and the file sizes.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from typing import Any

import numpy as np

from segloop.data.mni152 import TISSUE_NAMES
from segloop.io import read_image
from segloop.metrics import label_metrics

__all__ = ["step_deploy"]

#: The models compared: name -> file under ``deploy/`` (None: the checkpoint itself).
VARIANTS = {"torch float32": None, "onnx float32": "model.onnx", "onnx int8": "model_int8.onnx"}


def _timed(model, images, repeats: int = 3) -> tuple[np.ndarray, float]:
    """The labels of ``images`` (stacked) and the median seconds of ``repeats`` passes over them.

    A first pass (its labels are returned) warms the model up.
    """
    label = np.concatenate([np.asarray(model.predict(im).label.array) for im in images])
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        for im in images:
            model.predict(im)
        seconds.append(time.perf_counter() - t)
    return label, statistics.median(seconds)


def _weight_bytes(model) -> int:
    """Bytes of a PyTorch model's float32 weights (a checkpoint also holds the optimiser)."""
    return sum(t.numel() * t.element_size() for t in model.network.state_dict().values())


def step_deploy(ctx) -> dict[str, Any]:
    """Export the learn step's model, then compare float32 and int8 on the held-out slabs."""
    learn = ctx.results.get("learn", {})
    if importlib.util.find_spec("onnxruntime") is None or "skipped" in learn or not learn:
        return {"skipped": "needs the learn step and onnxruntime (pip install 'segloop[learn]')",
                "report": ["Skipped: the learn step did not run or onnxruntime is missing."]}
    from segloop.learn.export import export_model
    from segloop.learn.predict import load_model

    checkpoint = ctx.path("learn", "run") / "best.pt"
    files = {}
    for name, fmt in (("model.onnx", "onnx"), ("model_int8.onnx", "int8")):
        result = export_model(checkpoint, ctx.path("deploy", name), format=fmt, calibration=16,
                              log=lambda line: None)
        files[name] = result.bytes
    root = ctx.path("learn", "dataset")
    test_ids = learn["test_cases"]
    truth = np.concatenate([read_image(root / "labels" / f"{t}.nii.gz", kind="label").array
                            for t in test_ids])
    heldout = [read_image(ctx.path("learn", "heldout") / f"{t}.nii.gz") for t in test_ids]
    rows, labels = {}, {}
    for name, file in VARIANTS.items():
        model = load_model(checkpoint if file is None else ctx.path("deploy", file), device="cpu")
        pred, seconds = _timed(model, heldout)
        scores = label_metrics(pred, truth, spacing=heldout[0].spacing, metrics=("dice",))
        labels[name] = pred
        rows[name] = {"dice": {TISSUE_NAMES[k]: round(float(scores[k]["dice"]), 4)
                               for k in sorted(scores)},
                      "seconds_heldout": round(seconds, 3),
                      "bytes": _weight_bytes(model) if file is None else files[file]}
    reference = labels["torch float32"]
    for name in rows:
        rows[name]["agreement"] = round(float(np.mean(labels[name] == reference)), 5)
    fp32, int8 = rows["torch float32"], rows["onnx int8"]
    speed = fp32["seconds_heldout"] / max(int8["seconds_heldout"], 1e-9)
    report = [
        f"- `segloop export --format onnx|int8`: `deploy/model.onnx` "
        f"({files['model.onnx'] / 1e6:.2f} MB) and `deploy/model_int8.onnx` "
        f"({files['model_int8.onnx'] / 1e6:.2f} MB; calibrated on 16 training slices); "
        "`segloop predict --model deploy/model_int8.onnx` takes either.",
        "", "| model | CSF | grey matter | white matter | held-out slabs (s) | agreement | MB |",
        "|---|---|---|---|---|---|---|",
        *[f"| {name} | " + " | ".join(f"{v:.3f}" for v in r["dice"].values())
          + f" | {r['seconds_heldout']:.2f} | {r['agreement']:.4f} | "
          f"{r['bytes'] / 1e6:.2f} |" for name, r in rows.items()],
        "", f"- int8 vs PyTorch float32: {speed:.2f}x the speed on the held-out slabs (median "
        "of 3 passes; a small network, one slab at a time: docs/quantize.md says where int8 "
        "gains most), "
        f"{rows['onnx float32']['bytes'] / int8['bytes']:.1f}x smaller than the float32 ONNX "
        "file (MB of the PyTorch row: its weights); agreement = voxels with the same "
        "label as PyTorch float32.",
    ]
    return {"models": rows, "files": {name: f"deploy/{name}" for name in files},
            "report": report}
