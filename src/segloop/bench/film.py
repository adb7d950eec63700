"""``segloop bench film``: a plain U-Net vs the same U-Net conditioned on metadata (FiLM).

:func:`run_film_bench` answers "does telling the network what it looks at
(the contrast, the scanner...) help, at the same cost?": the config (which
has ``model.film``) is trained twice with :func:`segloop.learn.train.train`,
on the same prepared data, split, seed, recipe and budget
(``training.max_minutes``):

* ``plain``: the config without ``model.film`` (the cases' metadata unused);
* ``film``: the config as it is (:mod:`segloop.learn.film`).

The data are read once (:func:`segloop.learn.data.prepare_data`, the FiLM
config: its metadata vectors are dropped for the plain run). Runs go to
``OUTPUT_DIR/plain`` and ``OUTPUT_DIR/film``, from scratch each time
(``training.resume`` off); the preprocessed cache is shared
(``data.cache_dir``, default ``OUTPUT_DIR/cache``). Each ``best.pt`` is then
scored on the test split, every case on its native grid as ``segloop train``
scores it (:func:`segloop.learn.scoring.predict_cases`), and the FiLM model
once more with every test case's metadata hidden (the *missing* fallback).

Two Dice per model: the mean over test cases of each case's Dice (what
``metrics.json`` holds; on slices, a slice without foreground scores 1 when
nothing is predicted on it and 0 otherwise, so tumour-free slices weigh as
much as the others), and the **pooled** Dice: ``2 sum |P & T| / (sum |P| +
sum |T|)`` over the voxels of all the test cases of a group (per class, then
the mean over classes): for the slices of a patient, its volume Dice.

Summary row: ``dataset``, ``dice_plain``, ``dice_film`` (mean test Dice),
``gain`` (film - plain), ``dice_film_no_metadata`` (the fallback),
``pooled_plain``, ``pooled_film``, ``pooled_film_no_metadata``,
``seconds_plain``, ``seconds_film`` (training seconds), ``epochs_plain``,
``epochs_film``, ``metadata`` (the fields), ``train_cases``, ``test_cases``,
and per categorical field ``per_FIELD``: ``{value: {"n", the three Dice, the
three pooled Dice}}`` (e.g. ``per_contrast``). Cases: one row per test case
(``id``, its metadata values, the three Dice, and ``voxels_*``: per class
``[|P & T|, |P|, |T|]``).

Examples
--------
>>> rows = [{"contrast": "t1", "dice_plain": 0.5, "voxels_plain": [[1, 2, 2]]},
...         {"contrast": "t1", "dice_plain": 0.7, "voxels_plain": [[0, 0, 4]]}]
>>> group = per_value(rows, "contrast")["t1"]
>>> group["dice_plain"], round(group["pooled_plain"], 3)
(0.6, 0.25)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from segloop.bench.plots import save_figure
from segloop.bench.report import bench_report
from segloop.bench.runs import fmt, mean_of, run_config
from segloop.errors import InvalidArgumentError
from segloop.learn.config import Config, to_dict
from segloop.learn.data import PreparedData, prepare_data
from segloop.learn.metadata import MetadataEncoder
from segloop.learn.predict import load_model
from segloop.learn.scoring import predict_cases, score_case, truth_masks
from segloop.learn.train import train

__all__ = ["SCORED", "per_value", "pooled_dice", "run_film_bench", "write_plot"]

#: What is scored: the two trained models, and the FiLM model with the metadata hidden.
SCORED = ("plain", "film", "film_no_metadata")


def pooled_dice(voxels) -> float | None:
    """Mean over classes of ``2 sum |P & T| / (sum |P| + sum |T|)`` (1.0 when both are empty).

    ``voxels``: per case, per class ``[|P & T|, |P|, |T|]``; None when there is no case.

    Examples
    --------
    >>> pooled_dice([[[1, 2, 2]], [[0, 0, 4]]]), pooled_dice([[[0, 0, 0]]])
    (0.25, 1.0)
    """
    cases = [np.asarray(v, dtype=np.float64) for v in voxels if v is not None]
    if not cases:
        return None
    total = np.sum(cases, axis=0)  # (classes, 3)
    dice = [1.0 if p + t == 0 else 2.0 * i / (p + t) for i, p, t in total]
    return float(np.mean(dice))


def per_value(rows: list[dict], field: str) -> dict:
    """``{value: {"n", "dice_*", "pooled_*"}}`` of case rows grouped by ``field``'s value.

    Cases without a value for ``field`` are grouped under ``"missing"``.
    """
    def key(r):
        return "missing" if r.get(field) is None else str(r[field])

    out: dict = {}
    for value in sorted({key(r) for r in rows}):
        group = [r for r in rows if key(r) == value]
        out[value] = {"n": len(group)}
        for name in SCORED:
            out[value][f"dice_{name}"] = mean_of(r.get(f"dice_{name}") for r in group)
        for name in SCORED:
            out[value][f"pooled_{name}"] = pooled_dice(r.get(f"voxels_{name}") for r in group)
    return out


def _scores(predictor, volumes, cfg: Config) -> dict[str, dict]:
    """Per test case: its Dice and per-class voxel counts, on its native grid."""
    n = cfg.n_classes
    out = {}
    for o in predict_cases(predictor, volumes, tta=cfg.inference.tta, native=True):
        masks, _ = truth_masks(o.truth, n, soft=cfg.data.soft_labels)
        voxels = [[int(np.count_nonzero((o.label == k) & m)), int(np.count_nonzero(o.label == k)),
                   int(np.count_nonzero(m))] for k, m in enumerate(masks, start=1)]
        row = score_case(o.label, o.truth, classes=cfg.data.classes, soft=cfg.data.soft_labels)
        out[o.volume.id] = {"dice": row["dice"], "voxels": voxels}
    return out


def run_film_bench(cfg: Config, *, args: dict | None = None, log=print) -> dict:
    """Train ``cfg`` without and with its ``model.film``; compare their test Dice.

    Parameters
    ----------
    cfg : Config
        A training config with ``model.film`` (configs/film_*.yaml).
    args : dict, optional
        Recorded in the report (the command line).
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        :func:`segloop.bench.report.bench_report` of suite ``film`` (see the
        module docstring).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A config without ``model.film``, or without test cases.
    segloop.errors.SegloopError
        Bad data or metadata (named).
    """
    if cfg.model.film is None:
        raise InvalidArgumentError("the config has no model.film: nothing to compare (add "
                                   "model.film.fields, e.g. [contrast])")
    base = Path(cfg.output.dir)
    shared = {"cache_dir": cfg.data.cache_dir or str(base / "cache")}  # read once for both
    configs = {"film": run_config(cfg, base / "film", data=shared),
               "plain": run_config(cfg, base / "plain", data=shared, model={"film": None})}
    data = prepare_data(configs["film"], log=log)
    if not data.test:
        raise InvalidArgumentError("no test cases (data.split.test): nothing to score",
                                   path=cfg.data.path)
    plain = PreparedData(*([dataclasses.replace(v, meta=None) for v in vs]
                           for vs in (data.train, data.val, data.test)), data.in_channels,
                         {k: v for k, v in data.preprocess.items() if k != "metadata"})
    encoder = MetadataEncoder(data.preprocess["metadata"])
    metrics, wall = {}, {}
    for name, prepared in (("plain", plain), ("film", data)):
        log(f"{name}: training -> {configs[name].output.dir}")
        start = time.perf_counter()
        metrics[name] = train(configs[name], data=prepared, log=log)
        wall[name] = time.perf_counter() - start
    hidden = [dataclasses.replace(v, meta=encoder.missing()) for v in data.test]
    scores = {}
    for name, model, volumes in (("plain", "plain", plain.test), ("film", "film", data.test),
                                 ("film_no_metadata", "film", hidden)):
        predictor = load_model(base / model / "best.pt", device="cpu")
        scores[name] = _scores(predictor, volumes, configs[model])
    dataset = Path(cfg.data.path).resolve().name
    cases = []
    for v in data.test:
        if v.id not in scores["plain"]:  # no label: not scored
            continue
        row = {"dataset": dataset, "id": v.id, **encoder.decode(v.meta)}
        row |= {f"dice_{n}": scores[n][v.id]["dice"] for n in SCORED}
        row |= {f"voxels_{n}": scores[n][v.id]["voxels"] for n in SCORED}
        cases.append(row)
    row = {"dataset": dataset,
           **{f"dice_{n}": mean_of(c[f"dice_{n}"] for c in cases) for n in SCORED},
           **{f"pooled_{n}": pooled_dice(c[f"voxels_{n}"] for c in cases) for n in SCORED},
           "seconds_plain": metrics["plain"].get("seconds"),
           "seconds_film": metrics["film"].get("seconds"),
           "epochs_plain": metrics["plain"].get("epochs"),
           "epochs_film": metrics["film"].get("epochs"),
           "wall_seconds_plain": wall["plain"], "wall_seconds_film": wall["film"],
           "metadata": encoder.fields, "train_cases": len(data.train),
           "test_cases": len(cases)}
    row["gain"] = (None if None in (row["dice_plain"], row["dice_film"])
                   else row["dice_film"] - row["dice_plain"])
    for f in encoder.spec["fields"]:
        if f["kind"] == "categorical":
            row[f"per_{f['name']}"] = per_value(cases, f["name"])
    log(f"film: test dice {fmt(row['dice_film'])} vs {fmt(row['dice_plain'])} plain (gain "
        f"{fmt(row['gain'], '+.4f')}; {fmt(row['dice_film_no_metadata'])} with the metadata "
        f"hidden); pooled {fmt(row['pooled_film'])} vs {fmt(row['pooled_plain'])}")
    notes = [f"the same {len(data.train)} training cases, split, seed and budget for both "
             "models; Dice on the test cases' native grids (dice_*: mean per case; pooled_*: "
             "over the voxels of all the test cases)",
             "*_film_no_metadata: the FiLM model with every test case's metadata hidden "
             "(encoded as missing)"]
    report_args = {**(args or {}), "resolved": to_dict(cfg),
                   "metadata_spec": data.preprocess["metadata"]}
    return bench_report("film", args=report_args, summary=[row], cases=cases, notes=notes)


def write_plot(report: dict, path) -> Path:
    """Test Dice (per case and pooled) per value of the first categorical field and overall.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> rep = {"suite": "film", "summary": [{"dataset": "d", "dice_plain": 0.5,
    ...        "dice_film": 0.6, "pooled_film": 0.7,
    ...        "per_contrast": {"t1": {"n": 2, "dice_plain": 0.5, "dice_film": 0.6}}}]}
    >>> write_plot(rep, pathlib.Path(tempfile.mkdtemp()) / "f.png").stat().st_size > 1000
    True
    """
    if not isinstance(report, dict) or report.get("suite") != "film":
        raise InvalidArgumentError("report must be a film report (suite 'film')")
    from matplotlib.figure import Figure  # Agg canvas, no global pyplot state

    row = (report.get("summary") or [{}])[0]
    field = next((k for k in row if k.startswith("per_")), None)
    keys = [f"{kind}_{name}" for kind in ("dice", "pooled") for name in SCORED]
    groups = {"all": {k: row.get(k) for k in keys}} | (row.get(field) or {} if field else {})
    names = list(groups)
    fig = Figure(figsize=(2.4 + 1.6 * len(names), 3.8))
    ax = fig.subplots()
    width = 0.84 / len(keys)
    colours = ["tab:blue", "tab:orange", "tab:green"]
    for k, key in enumerate(keys):
        values = [groups[n].get(key) or 0.0 for n in names]
        kind, name = key.split("_", 1)
        ax.bar(np.arange(len(names)) + (k - (len(keys) - 1) / 2) * width, values, width,
               color=colours[k % 3], alpha=1.0 if kind == "dice" else 0.5,
               label=f"{name.replace('_', ' ')} ({'per case' if kind == 'dice' else 'pooled'})")
    ax.set(xticks=range(len(names)), xticklabels=names, ylim=(0, 1.15), yticks=np.linspace(
        0, 1, 6), ylabel="test Dice",
           title=f"{row.get('dataset', '')}: plain vs FiLM"
           + (f" ({field.removeprefix('per_')})" if field else ""))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=6, loc="upper center", ncols=3, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)
