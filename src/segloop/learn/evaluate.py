"""Evaluation of a checkpoint over a split: per-image scores, summary, overlay gallery.

:func:`evaluate_split` re-creates the checkpoint's split from its config
(:func:`segloop.learn.data.prepare_data`, same seed, so the same test
cases) and :func:`evaluate_volumes` predicts and scores its cases through
:mod:`segloop.learn.scoring`, the path training's test (``metrics.json``)
takes too, so the per-case Dice agree. Cases are scored on their native grid
(the prediction brought back to the input grid, against the native
annotation) when preprocessing resampled or cropped them; per foreground
class: Dice, HD95 and ASSD in mm, and lesion-wise detection (connected
components).

Written to ``out_dir``:

``cases.csv``
    one row per case and class: ``id, group, class, dice, hd95, assd,
    n_truth, n_pred, tp_truth, fp_pred`` (plus ``soft_dice`` for soft labels).
``metrics.json``
    what training's ``metrics.json`` holds about the test split
    (:func:`segloop.learn.scoring.summarize`: top-level ``dice``, the mean
    over cases of the per-case mean Dice over the classes; ``per_class``;
    ``grid``; ``per_case``, each case with its ``classes`` details) plus
    ``dice_pooled`` (Dice of all voxels of the split pooled), ``hd95`` (mean of
    the finite values, ``hd95_infinite`` counts the others), ``n_cases`` and
    ``classes`` (the means per class, with pooled lesion detection).
``gallery.png``
    the worst, median and best cases: one slice each (the one with the most
    foreground) with the truth (green) and prediction (red) outlines.

Soft labels (``data.soft_labels``) are scored as hard labels thresholded at
0.5, and by the soft Dice ``2 Σ p t / (Σ p + Σ t)`` of the probabilities.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.io.files import atomic_output, write_json
from segloop.learn.preprocess import restore_geometry
from segloop.learn.scoring import LESION_KEYS, predict_cases, score_case, summarize, truth_masks
from segloop.metrics.lesions import LesionDetection

__all__ = ["OUTPUTS", "evaluate_split", "evaluate_volumes", "write_gallery"]

#: Files written in ``out_dir``.
OUTPUTS = ("cases.csv", "metrics.json", "gallery.png")


def _finite_mean(values) -> tuple[float | None, int]:
    finite = [v for v in values if math.isfinite(v)]
    return (float(np.mean(finite)) if finite else None), len(values) - len(finite)


def _class_rows(case: dict) -> dict[str, dict]:
    """``{class: {dice, hd95, assd, lesion counts, soft_dice?}}`` of one scored case."""
    soft = case.get("soft_per_class", {})
    return {name: {"dice": d, **case["classes"][name],
                   **({"soft_dice": soft[name]} if name in soft else {})}
            for name, d in case["per_class"].items()}


def _details(cases: list[dict], classes: list[str], pooled: dict) -> dict:
    """Distances, lesions and pooled Dice over the cases (beside :func:`summarize`'s means)."""
    rows = [_class_rows(c) for c in cases]
    per_class = {}
    for name in classes:
        values = [r[name] for r in rows]
        hd, n_inf = _finite_mean([v["hd95"] for v in values])
        lesions = LesionDetection.from_counts(
            **{k: int(sum(v[k] for v in values)) for k in LESION_KEYS})
        entry = {"dice": float(np.mean([v["dice"] for v in values])), "hd95": hd,
                 "hd95_infinite": n_inf, "assd": _finite_mean([v["assd"] for v in values])[0],
                 "dice_pooled": pooled[name], "lesions": lesions.as_dict()}
        if "soft_dice" in values[0]:
            entry["soft_dice"] = float(np.mean([v["soft_dice"] for v in values]))
        per_class[name] = entry
    hd, n_inf = _finite_mean([v["hd95"] for r in rows for v in r.values()])
    return {"dice_pooled": float(np.mean(list(pooled.values()))), "hd95": hd,
            "hd95_infinite": n_inf, "n_cases": len(cases), "classes": per_class}


def _csv_text(cases: list[dict]) -> str:
    rows = [(c, _class_rows(c)) for c in cases]
    soft = any("soft_dice" in v for _, r in rows for v in r.values())
    fields = ["id", "group", "class", "dice", "hd95", "assd", *LESION_KEYS] + (
        ["soft_dice"] if soft else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for case, per_class in rows:
        for name, values in per_class.items():
            cells = {k: values.get(k, "") for k in fields[3:]}
            cells = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in cells.items()}
            writer.writerow({"id": case["id"], "group": case["group"], "class": name, **cells})
    return buf.getvalue()


def _check_outputs(out_dir: Path, overwrite: bool) -> None:
    if overwrite:
        return
    for name in OUTPUTS:
        if (out_dir / name).exists():
            raise OutputExistsError("exists; pass --overwrite to replace it (the old file is "
                                    "kept as a numbered version)", path=out_dir / name)


def _panel(outcome, truth: np.ndarray) -> tuple:
    """``(image, truth, pred, spacing)``: the case's gallery view (first channel, its grid)."""
    v = outcome.volume
    image = np.asarray(v.image)[0]
    if outcome.restored:
        image = restore_geometry(np.ascontiguousarray(image, np.float32), v.info, 1)
    axis, pred, sp = outcome.slice_axis, outcome.label, list(outcome.spacing)
    k = 0 if axis is None or pred.ndim == 2 else int(axis)  # the slicing axis
    return _best_slice(np.moveaxis(image, k, 0), np.moveaxis(truth, k, 0),
                       np.moveaxis(pred, k, 0), (sp.pop(k), *sp))


def evaluate_volumes(predictor, volumes, out_dir, *, tta: bool | None = None,
                     overwrite: bool = False, gallery: bool = True,
                     extra: dict | None = None, native: bool = True) -> dict:
    """Predict and score prepared volumes; write ``cases.csv``, ``metrics.json``, ``gallery.png``.

    Parameters
    ----------
    predictor : segloop.learn.predict.Predictor
        The model.
    volumes : sequence of Volume
        From :func:`segloop.learn.data.prepare_data` (``id``, ``group``,
        ``image`` ``(C, *spatial)``, ``label``, ``spacing``, ``info``).
    out_dir : str or pathlib.Path
        Created when missing.
    tta : bool, optional
        Test-time augmentation (default ``inference.tta``).
    overwrite : bool
        Replace existing outputs (kept as versions); otherwise they are an error.
    gallery : bool
        Draw ``gallery.png``.
    extra : dict, optional
        More top-level keys for ``metrics.json`` (split, checkpoint...).
    native : bool
        Score resampled or cropped cases on their native grid (re-reading
        their annotation from ``data.path``;
        :func:`segloop.learn.scoring.predict_cases`).

    Returns
    -------
    dict
        What ``metrics.json`` holds.
    """
    volumes = list(volumes)
    if not volumes:
        raise InvalidArgumentError("no case to evaluate (the split is empty)")
    out = Path(out_dir)
    _check_outputs(out, overwrite)
    cfg = predictor.config
    classes, soft = list(predictor.classes), cfg.data.soft_labels
    offset = 1 if predictor.activation == "softmax" else 0
    tta = cfg.inference.tta if tta is None else bool(tta)
    cases, panels = [], []
    sums = {name: [0.0, 0.0] for name in classes}  # pooled intersection, total
    for o in predict_cases(predictor, volumes, tta=tta, native=native):
        case = score_case(o.label, o.truth, classes=classes, probabilities=o.probabilities,
                          soft=soft, offset=offset, spacing=o.spacing, distances=True)
        masks = truth_masks(o.truth, len(classes), soft=soft)[0]
        truth = np.zeros(o.label.shape, np.uint8)
        for i, (name, t) in enumerate(zip(classes, masks, strict=True), start=1):
            p = o.label == i
            sums[name][0] += 2.0 * np.count_nonzero(p & t)
            sums[name][1] += np.count_nonzero(p) + np.count_nonzero(t)
            truth[t] = i
        cases.append({"id": str(o.volume.id), "group": str(getattr(o.volume, "group", "")),
                      "grid": o.grid, **case})
        if gallery:
            panels.append(_panel(o, truth))
    if not cases:
        raise InvalidArgumentError("no case with a label to evaluate")
    pooled = {n: (1.0 if tot == 0 else inter / tot) for n, (inter, tot) in sums.items()}
    summary = summarize(cases, cfg)
    per_case = summary.pop("per_case")
    result = {**(extra or {}), **summary, **_details(cases, classes, pooled),
              "per_case": per_case}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "cases.csv", overwrite=overwrite) as tmp:
        tmp.write_text(_csv_text(cases))
    write_json(result, out / "metrics.json", overwrite=overwrite)
    if gallery:
        order = np.argsort([c["dice"] for c in cases], kind="stable")
        picks = list(dict.fromkeys([int(order[0]), int(order[len(order) // 2]),
                                    int(order[-1])]))
        titles = ["worst", "median", "best"] if len(picks) == 3 else ["worst", "best"][
            : len(picks)]
        shown = [(f"{t}: {cases[i]['id']}  Dice {cases[i]['dice']:.3f}", *panels[i])
                 for t, i in zip(titles, picks, strict=True)]
        write_gallery(shown, out / "gallery.png", overwrite=overwrite)
    return result


def _best_slice(image, truth, pred, spacing):
    """The 2D view of a case: the slice along axis 0 with the most foreground."""
    if image.ndim == 2:
        return image, truth, pred, spacing
    counts = np.count_nonzero((truth > 0) | (pred > 0), axis=(1, 2))
    k = int(np.argmax(counts)) if counts.any() else image.shape[0] // 2
    return image[k], truth[k], pred[k], spacing[1:]


def write_gallery(panels, path, *, overwrite: bool = False) -> Path:
    """Draw ``(title, image, truth, pred, spacing)`` panels side by side as a PNG.

    Volumes show their axial slice with the most foreground; the truth is
    outlined in green, the prediction in red (every class).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> img = np.random.default_rng(0).random((16, 16)); lab = np.zeros((16, 16), int)
    >>> lab[4:10, 4:10] = 1
    >>> out = write_gallery([("a", img, lab, np.roll(lab, 2), (1.0, 1.0))],
    ...                     pathlib.Path(tempfile.mkdtemp()) / "g.png")
    >>> out.stat().st_size > 1000
    True
    """
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    panels = list(panels)
    fig = Figure(figsize=(4.0 * max(1, len(panels)), 4.3))
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (title, image, truth, pred, spacing) in zip(axes, panels, strict=False):
        img, t, p, sp = _best_slice(np.asarray(image, float), np.asarray(truth),
                                    np.asarray(pred), tuple(spacing))
        ax.imshow(img, cmap="gray", aspect=sp[0] / sp[1], interpolation="nearest")
        for mask, colour in ((t, "#2ca02c"), (p, "#d62728")):
            for value in np.unique(mask[mask > 0]):
                ax.contour(mask == value, levels=[0.5], colors=colour, linewidths=1.0)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.suptitle("truth: green, prediction: red", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out


def evaluate_split(checkpoint, split: str = "test", out_dir=None, *, data_path=None,
                   tta: bool | None = None, overwrite: bool = False, device=None,
                   log=print) -> dict:
    """Evaluate a checkpoint on a split of its own dataset (re-created from its config).

    Parameters
    ----------
    checkpoint : str or pathlib.Path
        A checkpoint of ``segloop train``.
    split : {"test", "val", "train"}
        Which split.
    out_dir : str or pathlib.Path
        Where ``cases.csv``, ``metrics.json`` and ``gallery.png`` go.
    data_path : str or pathlib.Path, optional
        The dataset folder, when it moved (default: the config's ``data.path``).
    tta, overwrite, device
        As for :func:`evaluate_volumes` and :func:`segloop.learn.predict.load_model`.
    log : callable
        Receives the data pipeline's summary line.

    Returns
    -------
    dict
        What ``metrics.json`` holds.
    """
    from segloop.learn.data import prepare_data
    from segloop.learn.predict import load_model

    if split not in ("test", "val", "train"):
        raise InvalidArgumentError(f"split must be test, val or train, got {split!r}")
    if out_dir is None:
        raise InvalidArgumentError("out_dir: an output folder is needed")
    _check_outputs(Path(out_dir), overwrite)
    predictor = load_model(checkpoint, device=device)
    config = predictor.config
    if config.cascade is not None:  # refused before any data is read
        raise InvalidArgumentError(
            "evaluate scores a single network on its preprocessed split; a cascade segments "
            "whole images: its training's metrics.json scores the test split through both "
            "stages (or use segloop predict, then segloop evaluate on the files)",
            path=str(checkpoint))
    if data_path is not None:
        config = config.model_copy(update={"data": config.data.model_copy(
            update={"path": str(data_path)})})
        predictor.config = config
    prepared = prepare_data(config, log=log)
    extra = {"split": split, "checkpoint": str(checkpoint), "data": config.data.path}
    return evaluate_volumes(predictor, getattr(prepared, split), out_dir, tta=tta,
                            overwrite=overwrite, extra=extra)
