"""``segloop bench quantize``: int8 against float32, Dice, CPU latency and size, on real data.

:func:`run_quantize_bench`:

1. **the model**: a checkpoint (``--model``), or the config trained first
   (:func:`segloop.learn.train.train`); a finished run of the same config is
   reused (:func:`segloop.bench.transfer.resolve_source`: ``OUTPUT_DIR/best.pt``
   and ``metrics.json`` of this very config);
2. **the exports** (:func:`segloop.learn.export.export_model`), into
   ``OUTPUT_DIR/export/``: ``model.onnx`` (float32) and ``model_int8.onnx``
   (calibrated on ``calibration`` samples of the training split);
3. **Dice** of the three models on the test split, each case on its native
   grid as ``segloop train`` tests (:func:`segloop.learn.scoring.predict_cases`):
   the checkpoint with torch (``fp32``, what ``segloop predict --model best.pt``
   runs), the float32 ONNX model and the int8 one with ONNX Runtime, plus the
   agreement of the int8 labels with the torch ones;
4. **latency**, side by side in one process on the same inputs with the same
   threads (``torch.set_num_threads`` and ONNX Runtime's intra-op threads):
   per test case, the inference on the network's grid
   (:func:`segloop.learn.scoring.infer_volume`: slicing, padding, batches of
   ``inference.batch_size``, the network, the final activation), one warm-up
   call per model, then ``repeats`` rounds that run every case on every model
   in turn; a case's time is its median over rounds, a model's the median
   over cases.

Summary row: ``dataset``, ``dice_fp32`` (torch), ``dice_int8``,
``latency_ratio`` (torch float32 seconds / int8 seconds), ``size_ratio``
(float32 ONNX bytes / int8 bytes: ``size_ratio_of`` says so), and
``dice_onnx_fp32``, ``dice_drop_points`` (100 x (fp32 - int8)),
``latency_ratio_onnx_fp32`` (float32 ONNX seconds / int8 seconds),
``seconds_fp32``, ``seconds_onnx_fp32``, ``seconds_int8``, ``bytes_fp32``
(the float32 ONNX file), ``bytes_int8``, ``bytes_weights_fp32`` (the torch
weights alone), ``bytes_checkpoint``, ``size_ratio_weights``, ``agreement``
(fraction of test voxels with the same class, int8 vs torch),
``calibration_check`` (the export's own check), ``threads``, ``repeats``,
``cases``. Cases: per test case and model, Dice and seconds.

Examples
--------
>>> median_of_cases({"a": [0.3, 0.1, 0.2], "b": [0.5, 0.4, 0.6]})
0.35
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch

from segloop.bench.plots import save_figure
from segloop.bench.report import bench_report
from segloop.bench.transfer import resolve_source
from segloop.errors import InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint
from segloop.learn.config import Config, load_config, to_dict
from segloop.learn.data import prepare_data
from segloop.learn.export import export_model
from segloop.learn.onnx_model import load_onnx_model
from segloop.learn.predict import load_model
from segloop.learn.scoring import infer_volume, predict_cases, score_case

__all__ = ["MODELS", "median_of_cases", "run_quantize_bench", "write_plot"]

MODELS = ("fp32", "onnx_fp32", "int8")  #: torch checkpoint, float32 ONNX, int8 ONNX


def median_of_cases(times: dict[str, list[float]]) -> float:
    """The median over cases of each case's median time."""
    return float(np.median([np.median(t) for t in times.values()]))


def _scores(predictor, volumes) -> tuple[dict, dict]:
    """Per-case Dice and labels of ``predictor`` on ``volumes`` (native grid)."""
    cfg = predictor.config
    offset = 1 if predictor.activation == "softmax" else 0
    dice, labels = {}, {}
    for o in predict_cases(predictor, volumes, native=True):
        dice[o.volume.id] = score_case(o.label, o.truth, classes=cfg.data.classes,
                                       probabilities=o.probabilities, soft=cfg.data.soft_labels,
                                       offset=offset)["dice"]
        labels[o.volume.id] = o.label
    return dice, labels


def _timings(predictors: dict, volumes, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per model and case: warm-up, then ``repeats`` interleaved rounds."""
    out = {name: {v.id: [] for v in volumes} for name in predictors}
    for p in predictors.values():
        infer_volume(p, volumes[0])
    for _ in range(repeats):
        for v in volumes:
            for name, p in predictors.items():
                start = time.perf_counter()
                infer_volume(p, v)
                out[name][v.id].append(time.perf_counter() - start)
    return out


def _weights_bytes(ck: dict) -> int:
    buf = io.BytesIO()
    torch.save(ck["model"], buf)
    return len(buf.getvalue())


def _model(cfg: Config, checkpoint, data, log) -> dict:
    if checkpoint is not None:
        return {"path": str(checkpoint), "trained": False, "seconds": None,
                "checkpoint": load_checkpoint(checkpoint)}
    return resolve_source(config=cfg, data=data, log=log)


def _agreement(a: dict, b: dict) -> float:
    same = sum(int((a[k] == b[k]).sum()) for k in a)
    return same / sum(a[k].size for k in a)


def run_quantize_bench(cfg: Config, *, checkpoint=None, calibration: int = 16,
                       method: str = "minmax", repeats: int = 3, threads: int | None = None,
                       args: dict | None = None, log=print) -> dict:
    """int8 vs float32 on ``cfg``'s test split (see the module docstring).

    Parameters
    ----------
    cfg : Config
        The training config (its data, its output folder).
    checkpoint : str or os.PathLike, optional
        A trained checkpoint of this config's data (skips training).
    calibration : int
        Calibration samples of the int8 export.
    method : str
        Calibration method (``minmax`` or ``percentile``).
    repeats : int
        Timed rounds over the test cases.
    threads : int, optional
        Threads of torch and ONNX Runtime (default: torch's current number).
    args : dict, optional
        Recorded in the report.
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        :func:`segloop.bench.report.bench_report` of suite ``quantize``.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``repeats`` or ``threads`` below 1, no labelled test case.
    """
    if repeats < 1:
        raise InvalidArgumentError(f"--repeats must be at least 1, got {repeats}")
    if threads is not None and threads < 1:
        raise InvalidArgumentError(f"--threads must be at least 1, got {threads}")
    if checkpoint is not None:  # the checkpoint's own preprocessing, on this config's data
        cfg = load_config(load_checkpoint(checkpoint)["config"], overrides=[
            f"data.path={cfg.data.path}", f"output.dir={cfg.output.dir}"])
    data = prepare_data(cfg, log=log)
    test = [v for v in data.test if v.label is not None]
    if not test:
        raise InvalidArgumentError("no labelled test case to score (data.split.test)",
                                   path=cfg.data.path)
    src = _model(cfg, checkpoint, data, log)
    folder = Path(cfg.output.dir) / "export"
    exports = {}
    for fmt, name in (("onnx", "model.onnx"), ("int8", "model_int8.onnx")):
        exports[fmt] = export_model(src["path"], folder / name, format=fmt,
                                    calibration=calibration, method=method,
                                    data=cfg.data.path, overwrite=True, log=log)
    previous = torch.get_num_threads()
    threads = int(threads or previous)
    torch.set_num_threads(threads)
    try:
        predictors = {"fp32": load_model(src["path"], device="cpu"),
                      "onnx_fp32": load_onnx_model(exports["onnx"].path, threads=threads),
                      "int8": load_onnx_model(exports["int8"].path, threads=threads)}
        scored = {name: _scores(p, test) for name, p in predictors.items()}
        log(f"timing {len(test)} test cases x {repeats} rounds x {len(MODELS)} models "
            f"({threads} thread{'s' * (threads != 1)})")
        times = _timings(predictors, test, repeats)
    finally:
        torch.set_num_threads(previous)
    dataset = Path(cfg.data.path).resolve().name
    dice = {name: float(np.mean(list(s[0].values()))) for name, s in scored.items()}
    seconds = {name: median_of_cases(t) for name, t in times.items()}
    ck = src["checkpoint"]
    sizes = {"bytes_fp32": exports["onnx"].bytes, "bytes_int8": exports["int8"].bytes,
             "bytes_weights_fp32": _weights_bytes(ck),
             "bytes_checkpoint": Path(src["path"]).stat().st_size}
    row = {"dataset": dataset, "dice_fp32": dice["fp32"], "dice_int8": dice["int8"],
           "latency_ratio": seconds["fp32"] / seconds["int8"],
           "size_ratio": sizes["bytes_fp32"] / sizes["bytes_int8"],
           "size_ratio_of": "float32 ONNX bytes / int8 ONNX bytes",
           "dice_onnx_fp32": dice["onnx_fp32"],
           "dice_drop_points": 100 * (dice["fp32"] - dice["int8"]),
           "latency_ratio_onnx_fp32": seconds["onnx_fp32"] / seconds["int8"],
           "seconds_fp32": seconds["fp32"], "seconds_onnx_fp32": seconds["onnx_fp32"],
           "seconds_int8": seconds["int8"], **sizes,
           "size_ratio_weights": sizes["bytes_weights_fp32"] / sizes["bytes_int8"],
           "agreement": _agreement(scored["fp32"][1], scored["int8"][1]),
           "calibration_check": exports["int8"].check, "calibration": calibration,
           "method": method, "threads": threads, "repeats": repeats, "cases": len(test),
           "checkpoint": src["path"], "trained": src["trained"],
           "train_seconds": src["seconds"], "dims": cfg.data.dims,
           "channels": list(cfg.model.channels), "norm": cfg.model.norm}
    cases = [{"dataset": dataset, "id": v.id, "model": name, "dice": scored[name][0][v.id],
              "seconds": float(np.median(times[name][v.id])), "runs": times[name][v.id]}
             for v in test for name in MODELS]
    log(f"{dataset}: Dice torch fp32 {dice['fp32']:.4f}, ONNX fp32 {dice['onnx_fp32']:.4f}, "
        f"int8 {dice['int8']:.4f}; median per case {seconds['fp32']:.4f} s / "
        f"{seconds['onnx_fp32']:.4f} s / {seconds['int8']:.4f} s -> int8 "
        f"{row['latency_ratio']:.2f}x faster than torch, {row['latency_ratio_onnx_fp32']:.2f}x "
        f"than ONNX fp32; {row['size_ratio']:.2f}x smaller")
    notes = ["latency_ratio: torch float32 (segloop predict on a .pt) / int8; "
             "latency_ratio_onnx_fp32: float32 ONNX / int8; seconds: median over test cases of "
             "each case's median over rounds, inference on the network's grid",
             "size_ratio: float32 ONNX file / int8 ONNX file (size_ratio_weights: torch "
             "state_dict bytes / int8 file)",
             "model " + ("trained by this run" if src["trained"] else "given or reused")
             + f": {src['path']}"]
    report_args = {**(args or {}), "calibration": calibration, "method": method,
                   "repeats": repeats, "threads": threads, "resolved": to_dict(cfg)}
    return bench_report("quantize", args=report_args, summary=[row], cases=cases, notes=notes)


def write_plot(report: dict, path) -> Path:
    """Median seconds per case and test Dice of each model (PNG).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> rep = {"suite": "quantize", "summary": [{"dataset": "d", "threads": 2,
    ...        "seconds_fp32": 0.2, "seconds_onnx_fp32": 0.1, "seconds_int8": 0.08,
    ...        "dice_fp32": 0.8, "dice_onnx_fp32": 0.8, "dice_int8": 0.79}], "cases": []}
    >>> write_plot(rep, pathlib.Path(tempfile.mkdtemp()) / "q.png").stat().st_size > 1000
    True
    """
    if not isinstance(report, dict) or report.get("suite") != "quantize":
        raise InvalidArgumentError("report must be a quantize report (suite 'quantize')")
    from matplotlib.figure import Figure  # Agg canvas, no global pyplot state

    row = (report.get("summary") or [{}])[0]
    labels = ["torch fp32", "ONNX fp32", "ONNX int8"]
    fig = Figure(figsize=(7.5, 3.2))
    left, right = fig.subplots(1, 2)
    colors = ["#777777", "#4c72b0", "#dd8452"]
    secs = [row.get(f"seconds_{m}") or 0.0 for m in MODELS]
    left.bar_label(left.bar(labels, secs, color=colors), fmt="%.3g", fontsize=8)
    left.set(ylabel="seconds per case (median)",
             title=f"{row.get('dataset', '')}: CPU latency ({row.get('threads', '?')} threads)")
    dice = [row.get(f"dice_{m}") or 0.0 for m in MODELS]
    right.bar_label(right.bar(labels, dice, color=colors), fmt="%.4f", fontsize=8)
    right.set(ylabel="test Dice", ylim=(0, 1), title="accuracy")
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
