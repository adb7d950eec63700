"""Evaluation of a checkpoint over a split: per-image scores, summary, overlay gallery.

:func:`evaluate_split` re-creates the checkpoint's split from its config
(:func:`segloop.learn.data.prepare_data`, same seed, so the same test
cases), predicts each case and scores it with :mod:`segloop.metrics`;
:func:`evaluate_volumes` does the same for volumes already prepared (what
training calls at its end). Scores are computed on the network's grid (the
pre-processed arrays, ``data.spacing`` when resampled), per foreground class:
Dice, HD95 and ASSD in mm, and lesion-wise detection (connected components).

Written to ``out_dir``:

``cases.csv``
    one row per case and class: ``id, group, class, dice, hd95, assd,
    n_truth, n_pred, tp_truth, fp_pred`` (plus ``soft_dice`` for soft labels).
``metrics.json``
    top-level ``dice`` (per case the mean Dice over the classes, then the mean
    over cases), ``dice_pooled`` (Dice of all voxels of the split pooled),
    ``hd95`` (mean of the finite values, ``hd95_infinite`` counts the others),
    ``classes`` (the same per class, with pooled lesion detection), ``cases``.
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
from segloop.metrics import label_metrics, lesion_detection
from segloop.metrics.lesions import LesionDetection

__all__ = ["OUTPUTS", "evaluate_split", "evaluate_volumes", "score_case", "soft_dice",
           "truth_masks", "write_gallery"]

#: Files written in ``out_dir``.
OUTPUTS = ("cases.csv", "metrics.json", "gallery.png")
_METRICS = ("dice", "hd95", "assd")
_LESION_KEYS = ("n_truth", "n_pred", "tp_truth", "fp_pred")


def soft_dice(probabilities, truth) -> float:
    """``2 Σ p t / (Σ p + Σ t)`` (1.0 when both are empty).

    Examples
    --------
    >>> soft_dice(np.array([0.5, 1.0]), np.array([1.0, 1.0]))
    0.857...
    """
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2.0 * (p * t).sum() / total)


def truth_masks(label, n_classes: int, *, soft: bool = False) -> tuple[list, np.ndarray | None]:
    """Per-class true masks of a volume's label, and the soft truth ``(n, *spatial)`` if soft.

    A hard label holds class indices ``(*spatial)``; a soft one ``(n, *spatial)``
    values in [0, 1], thresholded at 0.5 for the masks.

    Examples
    --------
    >>> masks, soft = truth_masks(np.array([[0, 1, 2]]), 2)
    >>> [m.astype(int).tolist() for m in masks], soft
    ([[[0, 1, 0]], [[0, 0, 1]]], None)
    """
    lab = np.asarray(label)
    if soft:
        if lab.shape[0] != n_classes:
            raise InvalidArgumentError(f"a soft label needs {n_classes} channels, got shape "
                                       f"{lab.shape}")
        values = lab.astype(np.float32)
        return [v >= 0.5 for v in values], values
    return [lab == c for c in range(1, n_classes + 1)], None


def score_case(pred, truth, *, classes, spacing=None, probabilities=None,
               soft: bool = False, offset: int = 1) -> dict:
    """Per-class Dice, HD95, ASSD and lesion detection of one case.

    Parameters
    ----------
    pred : array_like
        Predicted class indices.
    truth : array_like
        True class indices, or with ``soft`` one channel per class in [0, 1].
    classes : sequence of str
        Class names (class ``i`` is the ``i``-th, from 1).
    spacing : sequence of float, optional
        Voxel size (array order) for the distances.
    probabilities : array_like, optional
        Activated outputs ``(K, *spatial)``; with a soft truth, adds ``soft_dice``.
    soft : bool
        ``truth`` is soft.
    offset : int
        Channel of class 1 in ``probabilities`` (1 for softmax, 0 otherwise).

    Returns
    -------
    dict
        ``{"dice": mean over classes, "classes": {name: {metric: value, ...}}}``.

    Examples
    --------
    >>> truth = np.zeros((6, 6), np.uint8); truth[1:4, 1:4] = 1
    >>> row = score_case(np.roll(truth, 1, axis=0), truth, classes=["tumour"])
    >>> round(row["dice"], 3), row["classes"]["tumour"]["hd95"], row["classes"]["tumour"]["n_pred"]
    (0.667, 1.0, 1)
    """
    names = list(classes)
    masks, soft_truth = truth_masks(truth, len(names), soft=soft)
    p = np.asarray(pred)
    if p.shape != masks[0].shape:
        raise InvalidArgumentError(f"prediction shape {p.shape} differs from the truth's "
                                   f"{masks[0].shape}")
    per_class = {}
    for i, (name, t) in enumerate(zip(names, masks, strict=True), start=1):
        mine = p == i
        scores = label_metrics(mine.astype(np.uint8), t.astype(np.uint8), labels=[1],
                               spacing=spacing, metrics=_METRICS)[1]
        d = lesion_detection(mine, t)
        per_class[name] = {**scores, **{k: getattr(d, k) for k in _LESION_KEYS}}
        if soft_truth is not None and probabilities is not None:
            per_class[name]["soft_dice"] = soft_dice(
                np.asarray(probabilities)[i - 1 + offset], soft_truth[i - 1])
    return {"dice": float(np.mean([c["dice"] for c in per_class.values()])),
            "classes": per_class}


def _finite_mean(values) -> tuple[float | None, int]:
    finite = [v for v in values if math.isfinite(v)]
    return (float(np.mean(finite)) if finite else None), len(values) - len(finite)


def _summary(rows: list[dict], classes: list[str], pooled: dict) -> dict:
    per_class = {}
    for name in classes:
        values = [r["classes"][name] for r in rows]
        hd, n_inf = _finite_mean([v["hd95"] for v in values])
        counts = {k: int(sum(v[k] for v in values)) for k in _LESION_KEYS}
        lesions = LesionDetection.from_counts(**counts)
        entry = {"dice": float(np.mean([v["dice"] for v in values])), "hd95": hd,
                 "hd95_infinite": n_inf,
                 "assd": _finite_mean([v["assd"] for v in values])[0],
                 "dice_pooled": pooled[name], "lesions": lesions.as_dict()}
        if values and "soft_dice" in values[0]:
            entry["soft_dice"] = float(np.mean([v["soft_dice"] for v in values]))
        per_class[name] = entry
    all_hd = [v["hd95"] for r in rows for v in r["classes"].values()]
    hd, n_inf = _finite_mean(all_hd)
    out = {"dice": float(np.mean([r["dice"] for r in rows])),
           "dice_pooled": float(np.mean(list(pooled.values()))),
           "hd95": hd, "hd95_infinite": n_inf, "n_cases": len(rows), "classes": per_class}
    if any("soft_dice" in c for c in per_class.values()):
        out["soft_dice"] = float(np.mean([c["soft_dice"] for c in per_class.values()]))
    return out


def _csv_text(rows: list[dict]) -> str:
    soft = any("soft_dice" in c for r in rows for c in r["classes"].values())
    fields = ["id", "group", "class", *_METRICS, *_LESION_KEYS] + (["soft_dice"] if soft else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        for name, values in r["classes"].items():
            cells = {k: values.get(k, "") for k in fields[3:]}
            cells = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in cells.items()}
            writer.writerow({"id": r["id"], "group": r["group"], "class": name, **cells})
    return buf.getvalue()


def _check_outputs(out_dir: Path, overwrite: bool) -> None:
    if overwrite:
        return
    for name in OUTPUTS:
        if (out_dir / name).exists():
            raise OutputExistsError("exists; pass --overwrite to replace it (the old file is "
                                    "kept as a numbered version)", path=out_dir / name)


def evaluate_volumes(predictor, volumes, out_dir, *, tta: bool | None = None,
                     overwrite: bool = False, gallery: bool = True,
                     extra: dict | None = None) -> dict:
    """Predict and score prepared volumes; write ``cases.csv``, ``metrics.json``, ``gallery.png``.

    Parameters
    ----------
    predictor : segloop.learn.predict.Predictor
        The model.
    volumes : sequence of Volume
        From :func:`segloop.learn.data.prepare_data` (``id``, ``group``,
        ``image`` ``(C, *spatial)``, ``label``, ``spacing``).
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
    classes = list(predictor.classes)
    soft = predictor.config.data.soft_labels
    offset = 1 if predictor.activation == "softmax" else 0
    rows, shown = [], []
    sums = {name: [0.0, 0.0] for name in classes}  # pooled intersection, total
    for v in volumes:
        if v.label is None:
            continue
        axis = getattr(v, "slice_axis", None)
        probs = predictor.infer(v.image, tta=tta, slice_axis=axis)
        pred = predictor.to_label(probs, slice_axis=axis)
        row = score_case(pred, v.label, classes=classes, spacing=tuple(v.spacing),
                         probabilities=probs, soft=soft, offset=offset)
        masks = truth_masks(v.label, len(classes), soft=soft)[0]
        truth = np.zeros(pred.shape, np.uint8)
        for i, (name, t) in enumerate(zip(classes, masks, strict=True), start=1):
            p = pred == i
            sums[name][0] += 2.0 * np.count_nonzero(p & t)
            sums[name][1] += np.count_nonzero(p) + np.count_nonzero(t)
            truth[t] = i
        rows.append({"id": str(v.id), "group": str(getattr(v, "group", "")), **row})
        k = 0 if axis is None or pred.ndim == 2 else int(axis)  # the gallery's slicing axis
        sp = [float(s) for s in v.spacing]
        shown.append((np.moveaxis(np.asarray(v.image)[0], k, 0), np.moveaxis(truth, k, 0),
                      np.moveaxis(pred, k, 0), (sp.pop(k), *sp)))
    if not rows:
        raise InvalidArgumentError("no case with a label to evaluate")
    pooled = {n: (1.0 if tot == 0 else inter / tot) for n, (inter, tot) in sums.items()}
    result = {**(extra or {}), **_summary(rows, classes, pooled), "cases": rows}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "cases.csv", overwrite=overwrite) as tmp:
        tmp.write_text(_csv_text(rows))
    write_json(result, out / "metrics.json", overwrite=overwrite)
    if gallery:
        order = np.argsort([r["dice"] for r in rows], kind="stable")
        picks = list(dict.fromkeys([int(order[0]), int(order[len(order) // 2]),
                                    int(order[-1])]))
        titles = ["worst", "median", "best"] if len(picks) == 3 else ["worst", "best"][
            : len(picks)]
        panels = [(f"{t}: {rows[i]['id']}  Dice {rows[i]['dice']:.3f}", *shown[i])
                  for t, i in zip(titles, picks, strict=True)]
        write_gallery(panels, out / "gallery.png", overwrite=overwrite)
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
    if data_path is not None:
        config = config.model_copy(update={"data": config.data.model_copy(
            update={"path": str(data_path)})})
        predictor.config = config
    prepared = prepare_data(config, log=log)
    extra = {"split": split, "checkpoint": str(checkpoint), "data": config.data.path}
    return evaluate_volumes(predictor, getattr(prepared, split), out_dir, tta=tta,
                            overwrite=overwrite, extra=extra)
