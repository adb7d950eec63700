"""``segloop bench finetune``: scribble fine-tuning (BIFSeg) against the model and graph cut.

:func:`run_finetune_bench` takes a training config and a trained checkpoint
and plays the simulated annotator (:mod:`segloop.simulate.scribbles`) on the
config's **test split** (images the model did not train on when it was
trained with this config's split):

* ``model`` -- the model's own prediction (no scribble);
* ``graphcut`` -- :class:`segloop.tools.GraphCutSession` on the image's
  (pre-processed) intensities, its defaults, with the same scribbles;
* ``bifseg_crf_only`` -- the CRF on the CNN's probabilities with the
  scribbles, no fine-tuning (the ablation);
* ``bifseg`` -- CRF + image-specific fine-tuning
  (:class:`segloop.learn.finetune.FinetuneSession`).

Protocol (each method its own user, the fair protocol): the first two
scribbles are :func:`~segloop.simulate.scribbles.first_scribbles` (a
foreground stroke along the object's skeleton, a background ring around it),
then each next scribble is :func:`~segloop.simulate.scribbles.next_scribble`
on that method's own current errors, up to ``scribbles`` in all; a method
that reaches the truth stops (its Dice is carried on). Dice is computed on
the network's grid (the pre-processed image). A 2D model on volumes works on
slices: up to ``slices`` per volume, evenly spaced among the slices holding
at least :data:`MIN_AREA` voxels of the class; a 2D image or a 3D model's
volume is one case when it holds the class.

Summary rows, per (dataset, method): ``dataset, method, n, scribbles,
dice_initial`` (the model's), ``dice`` (after the last scribble), ``gain``,
``seconds_per_round`` (mean seconds per update after a scribble), and
``dice_at_2..dice_at_K`` (mean Dice after each number of scribbles).

Examples
--------
>>> rows = summarize([{"dataset": "d", "method": "bifseg", "dice_initial": 0.6,
...                    "dice": [0.7, 0.8], "seconds": [1.0, 3.0]}], scribbles=3)
>>> rows[0]["dice"], rows[0]["gain"], rows[0]["seconds_per_round"], rows[0]["dice_at_2"]
(0.8, 0.2, 2.0, 0.7)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from segloop.bench.plots import save_figure
from segloop.bench.report import bench_report
from segloop.errors import InvalidArgumentError
from segloop.learn.config import Config, to_dict
from segloop.learn.data import prepare_data
from segloop.learn.finetune import FinetuneSession
from segloop.learn.optim import deterministic_runtime
from segloop.learn.predict import load_model
from segloop.simulate.scribbles import first_scribbles, next_scribble
from segloop.tools import GraphCutSession

__all__ = ["METHODS", "MIN_AREA", "cases_of", "play", "run_finetune_bench", "summarize",
           "write_plot"]

METHODS = ("model", "graphcut", "bifseg_crf_only", "bifseg")
#: A slice holds the structure when it has at least this many voxels of it.
MIN_AREA = 20


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def cases_of(volumes, *, label: int, slices: int, limit: int | None, two_d: bool) -> list[dict]:
    """The cases holding class ``label`` (see the module docstring), as dicts.

    Keys: ``case`` (volume id), ``slice`` (index or None), ``image`` ``(C, *sp)``,
    ``truth`` (bool), ``spacing``, ``meta`` (the volume's metadata vector: FiLM models).
    """
    out = []
    for vol in volumes:
        truth = np.asarray(vol.label) == label
        if two_d and vol.slice_axis is not None and truth.ndim == 3:
            ax = vol.slice_axis
            area = truth.sum(axis=tuple(a for a in range(3) if a != ax))
            have = np.flatnonzero(area >= MIN_AREA)
            picks = have[np.unique(np.linspace(0, len(have) - 1, min(slices, len(have)))
                                   .round().astype(int))] if len(have) else []
            spacing = tuple(s for a, s in enumerate(vol.spacing) if a != ax)
            out += [{"case": vol.id, "slice": int(k), "image": np.take(vol.image, k, axis=1 + ax),
                     "truth": np.take(truth, k, axis=ax), "spacing": spacing,
                     "meta": getattr(vol, "meta", None)} for k in picks]
        elif truth.sum() >= MIN_AREA:
            out.append({"case": vol.id, "slice": None, "image": vol.image, "truth": truth,
                        "spacing": tuple(vol.spacing), "meta": getattr(vol, "meta", None)})
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


def play(session, truth: np.ndarray, *, scribbles: int, spacing=None, margin: int = 5,
         finetune: bool = True) -> tuple[list[float], list[float]]:
    """The simulated user on one session: Dice and seconds after scribbles ``2..scribbles``.

    ``session`` is a :class:`FinetuneSession` or a :class:`GraphCutSession`.
    """
    fg, bg = first_scribbles(truth, margin=margin, spacing=spacing)
    is_cut = isinstance(session, GraphCutSession)

    def add(scribble, update: bool = True):
        start = time.perf_counter()
        if is_cut:
            mask = session.add_scribble(scribble.as_strokes(), foreground=scribble.foreground)
        else:
            session.add_scribbles(scribble.as_strokes(), foreground=scribble.foreground)
            mask = session.update(finetune=finetune) if update else None
        return np.asarray(mask, dtype=bool), time.perf_counter() - start

    add(fg, update=False)  # a cut needs both classes: one update after the first pair
    mask, seconds = add(bg)
    dice, times = [_dice(mask, truth)], [seconds]
    while len(dice) < scribbles - 1:
        nxt = next_scribble(mask, truth)
        if nxt is None:
            break
        mask, seconds = add(nxt)
        dice.append(_dice(mask, truth))
        times.append(seconds)
    return dice, times


def summarize(cases: list[dict], *, scribbles: int) -> list[dict]:
    """Summary rows per (dataset, method) from the ``cases`` rows."""
    rows = []
    for key in dict.fromkeys((c["dataset"], c["method"]) for c in cases):
        mine = [c for c in cases if (c["dataset"], c["method"]) == key]
        curves = np.array([(c["dice"] + [c["dice"][-1]] * scribbles)[:scribbles - 1]
                           for c in mine], dtype=float)
        initial = float(np.mean([c["dice_initial"] for c in mine]))
        seconds = [s for c in mine for s in c["seconds"]]
        row = {"dataset": key[0], "method": key[1], "n": len(mine),
               "scribbles": 0 if key[1] == "model" else scribbles,
               "dice_initial": initial, "dice": float(curves[:, -1].mean()),
               "seconds_per_round": float(np.mean(seconds)) if seconds else None}
        row["gain"] = row["dice"] - initial
        if key[1] != "model":
            row.update({f"dice_at_{k + 2}": float(v) for k, v in enumerate(curves.mean(0))})
            row["dice_median"] = float(np.median(curves[:, -1]))
        rows.append(row)
    return rows


def _held_back(cfg: Config, model_cfg: Config) -> str:
    a, b = cfg.data, model_cfg.data
    same = (Path(a.path).resolve() == Path(b.path).resolve() and a.split == b.split
            and a.classes == b.classes)
    if same:
        return ("held-back images: the config's test split, which the model's own training "
                "config also kept out of training (same data path, split and classes)")
    return ("WARNING: the model was trained with other data/split settings than this config "
            f"({b.path}, split {b.split.model_dump()}): its training images may be among these "
            "test images")


def run_finetune_bench(cfg: Config, model: str, *, scribbles: int = 5, limit: int | None = None,
                       slices: int = 3, label: int = 1, methods=METHODS, margin: int = 5,
                       options: dict | None = None, config_path: str | None = None,
                       overrides=(), log=print) -> dict:
    """Play the methods on the test split; the ``finetune`` report.

    Parameters
    ----------
    cfg : Config
        The training config (data, split, pre-processing).
    model : str
        The checkpoint (``best.pt`` of a run of ``cfg``).
    scribbles : int
        Scribbles per case (at least 2: the first foreground and background).
    limit : int, optional
        At most this many cases.
    slices : int
        Slices per volume for a 2D model on volumes.
    label : int
        The class (1-based).
    methods : sequence of str
        Among :data:`METHODS`.
    margin : int
        Voxels between the object and the simulated background ring.
    options : dict, optional
        Options of :class:`~segloop.learn.finetune.FinetuneSession`.

    Raises
    ------
    segloop.errors.SegloopError
        A bad option, checkpoint or dataset; a model whose classes or
        dimensions differ from the config's; no test case with the class.
    """
    if isinstance(scribbles, bool) or not isinstance(scribbles, int) or scribbles < 2:
        raise InvalidArgumentError(f"--scribbles must be at least 2 (the first foreground and "
                                   f"background scribbles), got {scribbles!r}")
    if limit is not None and limit < 1:
        raise InvalidArgumentError(f"--limit must be at least 1, got {limit}")
    if slices < 1:
        raise InvalidArgumentError(f"--slices must be at least 1, got {slices}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InvalidArgumentError(f"unknown method {unknown[0] if unknown else None!r}; "
                                   f"methods: {', '.join(METHODS)}")
    predictor = load_model(model, device="cpu")
    mc = predictor.config
    if (mc.n_classes, mc.data.dims) != (cfg.n_classes, cfg.data.dims):
        raise InvalidArgumentError(
            f"the model has {mc.n_classes} class(es) {list(mc.data.classes)} in {mc.data.dims}D, "
            f"the config's labels {cfg.n_classes} {list(cfg.data.classes)} in {cfg.data.dims}D",
            path=model)
    if not 1 <= label <= mc.n_classes:
        raise InvalidArgumentError(f"--label {label}: the model has classes 1..{mc.n_classes} "
                                   f"({', '.join(mc.data.classes)})")
    options = dict(options or {})
    dataset = Path(cfg.data.path).resolve().name
    cases, notes = [], [_held_back(cfg, mc)]
    with deterministic_runtime(cfg):
        data = prepare_data(cfg, log=lambda line: None)
        items = cases_of(data.test, label=label, slices=slices, limit=limit,
                         two_d=cfg.data.dims == 2)
        if not items:
            raise InvalidArgumentError(f"no test case holds class {label} ({MIN_AREA}+ voxels; "
                                       "data.split.test)", path=cfg.data.path)
        log(f"{dataset}: {len(items)} test case(s) from {len(data.test)} test volume(s)")
        for item in items:
            image, truth, sp, k = item["image"], item["truth"], item["spacing"], item["slice"]
            outputs = predictor.infer(image, tta=options.get("tta", False), meta=item["meta"])
            kw = {"label": label, "spacing": sp, "outputs": outputs, "meta": item["meta"],
                  **options}
            initial = _dice(predictor.to_label(outputs) == label, truth)
            row = {"dataset": dataset, "case": item["case"], "slice": k, "dice_initial": initial}
            for method in methods:
                if method == "model":
                    dice, times = [initial], []
                elif method == "graphcut":
                    dice, times = play(GraphCutSession(image, channel_axis=0, spacing=sp), truth,
                                       scribbles=scribbles, spacing=sp, margin=margin)
                else:
                    dice, times = play(FinetuneSession(predictor, image, **kw), truth,
                                       scribbles=scribbles, spacing=sp, margin=margin,
                                       finetune=method == "bifseg")
                cases.append({**row, "method": method, "dice": dice, "seconds": times})
            log(f"  {item['case']}{'' if k is None else f' slice {k}'}: "
                + ", ".join(f"{c['method']} {c['dice'][-1]:.3f}" for c in cases[-len(methods):]))
    notes.append(f"{len(items)} case(s): " + ("for a 2D model on volumes, up to "
                 f"{slices} slice(s) per volume evenly spaced among those with {MIN_AREA}+ "
                 "voxels of the class" if any(i["slice"] is not None for i in items)
                 else f"images holding {MIN_AREA}+ voxels of the class") + "; Dice on the "
                 "network's grid")
    notes.append("protocol: first_scribbles (foreground skeleton + background ring) count as 2 "
                 "scribbles, then next_scribble on each method's own errors; graphcut: "
                 "GraphCutSession defaults on the pre-processed intensities")
    args = {"config": config_path, "model": str(model), "set": list(overrides),
            "scribbles": scribbles, "limit": limit, "slices": slices, "label": label,
            "methods": list(methods), "margin": margin, "options": options,
            "resolved": to_dict(cfg)}
    return bench_report("finetune", args=args, summary=summarize(cases, scribbles=scribbles),
                        cases=cases, notes=notes)


def write_plot(report: dict, path) -> Path:
    """Mean Dice against scribbles, per dataset, one line per method (PNG; ``path`` returned)."""
    from matplotlib.figure import Figure

    rows = report["summary"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows)) or ["(no data)"]
    k = int(report.get("args", {}).get("scribbles", 5))
    fig = Figure(figsize=(4.6 * len(datasets), 3.6), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(datasets), squeeze=False).ravel(), datasets,
                        strict=True):
        for r in (r for r in rows if r["dataset"] == name):
            if r["method"] == "model":
                ax.axhline(r["dice"], color="grey", linestyle=":", label="model (no scribble)")
                continue
            ys = [r.get(f"dice_at_{i}") for i in range(2, k + 1)]
            ax.plot(range(2, k + 1), ys, marker="o", label=r["method"])
        ax.set(title=name, xlabel="scribbles", ylabel="mean Dice", xticks=range(2, k + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)
