"""``segloop bench interpolation``: Dice on the slices not given, against slices given.

For each object of each dataset (:mod:`segloop.bench.interpolation_data`) and
each ``every`` K, the simulated annotator draws the truth on the slices of
:func:`segloop.simulate.slices.given_slices` (every K-th slice of the
object's extent across ``axis``, plus its first and last slice); each method
fills the rest:

* ``segloop`` — :func:`segloop.tools.interpolate.interpolate_slices`
  (shape-based, signed distances), told which slices were given;
* ``itk-mci`` — ITK's ``MorphologicalContourInterpolator``
  (:mod:`segloop.bench.itk_mci`), when ``SEGLOOP_ITK_PYTHON`` names an
  interpreter that has it or ``import itk`` works; otherwise a note and no rows;
* ``nearest`` — the naive baseline: every slice copies the nearest given
  slice (the earlier one on a tie).

Scoring: Dice over every slice that was not given. Inside the object's
extent that is the interpolated slices; outside it the truth is empty, so a
method only loses there by drawing something (none of the three does, so
this equals Dice on the unseen slices of the extent). A multi-label case
scores the mean Dice over its labels. ``seconds`` is one call's wall time
(ITK's after a warm-up call in its process, without the process start);
``work_saved`` = slices holding the object ÷ slices given, always below K
(the last slice is given too): 10× saved needs K of about 12 or more.

Summary rows, one per (dataset, method, every): ``dataset, method, every,
dice_unseen, seconds, work_saved`` (means over cases) plus ``n``,
``dice_unseen_min`` and, for each target Dice t (85 for 0.85),
``work_saved<t>`` / ``every<t>``: the largest mean work saved among this
(dataset, method)'s K whose mean Dice is ≥ t, and that K (None if no K
reaches it); the same values on every row of the pair. The report also holds
``notes`` (ITK unavailable or failed, and per dataset: skipped inputs by reason →
cases), beside the common top level of :func:`segloop.bench.report.bench_report`.

Examples
--------
>>> import numpy as np
>>> vol = np.zeros((5, 3, 3), np.uint8); vol[0, 1, 1] = 1; vol[4, :, :] = 1
>>> out = nearest_slices(vol, slices=[0, 4])
>>> out[:, 1, 1].tolist(), out.sum(axis=(1, 2)).tolist()
([1, 1, 1, 1, 1], [1, 1, 1, 9, 9])
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from segloop.bench import itk_mci
from segloop.bench.interpolation_data import Volume, iter_volumes
from segloop.bench.report import bench_report
from segloop.errors import InvalidArgumentError
from segloop.metrics import dice
from segloop.simulate.slices import given_label, given_slices, object_slices, work_saved
from segloop.tools.interpolate import interpolate_slices

__all__ = ["METHODS", "nearest_slices", "run_interpolation", "summarize", "unseen_dice",
           "write_plot"]

#: Methods in report order.
METHODS = ("segloop", "itk-mci", "nearest")

_ITK_BATCH_BYTES = 256 * 2**20  # ITK inputs held before one ITK process runs them


def nearest_slices(label, *, slices, axis: int = 0) -> np.ndarray:
    """Fill the slices between the given ones by copying the nearest given slice.

    Slices outside ``min(slices)..max(slices)`` are left as they are; on a tie
    the earlier slice wins.
    """
    out = np.array(label, copy=True)
    stack = np.moveaxis(out, axis, 0)
    given = np.sort(np.asarray(slices, dtype=int))
    for s in range(int(given[0]) + 1, int(given[-1])):
        j = int(np.searchsorted(given, s))
        if given[j] != s:
            stack[s] = stack[given[j - 1] if s - given[j - 1] <= given[j] - s else given[j]]
    return out


#: Our methods: (drawn label, given slices, axis, spacing) -> filled label.
_FILL = {
    "segloop": lambda drawn, given, axis, spacing: interpolate_slices(
        drawn, axis=axis, slices=given, spacing=spacing),
    "nearest": lambda drawn, given, axis, spacing: nearest_slices(drawn, slices=given, axis=axis),
}


def unseen_dice(pred, truth, *, slices, axis: int = 0) -> float:
    """Dice on every slice not in ``slices`` (mean over the truth's labels if several).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.ones((3, 2, 2), np.uint8); p = t.copy(); p[1, 0] = 0
    >>> unseen_dice(p, t, slices=[0, 2])
    0.6667
    """
    keep = np.setdiff1d(np.arange(np.shape(truth)[axis]), np.asarray(slices, dtype=int))
    p, t = np.take(pred, keep, axis=axis), np.take(truth, keep, axis=axis)
    values = np.unique(truth)
    scores = [dice(p == v, t == v) for v in values[values > 0]]
    return round(float(np.mean(scores)), 4)


def _check(every, axis, methods, targets, limit) -> tuple:
    ks = list(dict.fromkeys(every))
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2
                     for k in ks):
        raise InvalidArgumentError(f"every must be integers >= 2, got every={every!r}")
    if axis not in (0, 1, 2) or isinstance(axis, bool):
        raise InvalidArgumentError(f"axis must be 0, 1 or 2, got axis={axis!r}")
    methods = list(METHODS if methods is None else dict.fromkeys(methods))
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InvalidArgumentError(f"unknown method(s) {bad or methods!r}; known: "
                                   f"{', '.join(METHODS)}")
    if not targets or any(not 0.0 < float(t) <= 1.0 for t in targets):
        raise InvalidArgumentError(f"targets must be in (0, 1], got targets={targets!r}")
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise InvalidArgumentError(f"limit must be a positive integer, got limit={limit!r}")
    return [int(k) for k in ks], methods, [float(t) for t in targets]


def _run_volume(vol: Volume, every, axis, methods, pending, log) -> list[dict]:
    """Rows of one object for our methods; ITK jobs appended to ``pending``."""
    obj = vol.truth > 0
    holding = object_slices(obj, axis=axis)
    rows = []
    for k in every:
        given = np.asarray(given_slices(obj, k, axis=axis), dtype=int)
        unseen = int(holding[-1] - holding[0] + 1 - len(given))
        if unseen < 1:
            log(f"  {vol.dataset} {vol.case}: every {k}: no slice left unseen, skipped")
            continue
        drawn = given_label(vol.truth, given, axis=axis)
        base = {"dataset": vol.dataset, "case": vol.case, "label": vol.label,
                "plane": vol.plane, "every": k, "slices": len(holding), "given": len(given),
                "unseen": unseen, "work_saved": round(work_saved(obj, given, axis=axis), 3)}
        for method in methods:
            if method == "itk-mci":
                pending.append((base, vol, drawn, given))
                continue
            t0 = time.perf_counter()
            out = _FILL[method](drawn, given, axis, vol.spacing)
            secs = time.perf_counter() - t0
            score = unseen_dice(out, vol.truth, slices=given, axis=axis)
            rows.append({**base, "method": method, "dice_unseen": score,
                         "seconds": round(secs, 4)})
        log(f"  {vol.dataset} {vol.case} every {k}: " + ", ".join(
            f"{r['method']} {r['dice_unseen']:.3f}" for r in rows if r["every"] == k))
    return rows


def _run_itk(pending, runner, axis, notes, log) -> list[dict]:
    """Run the pending ITK jobs in one process; their rows (or a note on failure)."""
    if not pending:
        return []
    try:
        outputs, times = itk_mci.run_jobs([p[2] for p in pending], runner=runner, axis=axis,
                                          repeats=1)
    except RuntimeError as exc:
        notes.append(f"itk-mci failed on {len(pending)} inputs: {exc}")
        log(f"  itk-mci failed: {exc}")
        return []
    rows = []
    for (base, vol, _, given), out, ms in zip(pending, outputs, times, strict=True):
        rows.append({**base, "method": "itk-mci",
                     "dice_unseen": unseen_dice(out, vol.truth, slices=given, axis=axis),
                     "seconds": round(float(np.median(ms)) / 1000.0, 4)})
    log(f"  itk-mci: {len(rows)} inputs done")
    return rows


def _pct(t: float) -> str:
    return f"{round(t * 100, 2):g}"


def summarize(cases: list[dict], *, targets=(0.85, 0.9)) -> list[dict]:
    """Summary rows per (dataset, method, every) from the case rows (see the module notes)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in cases:
        groups[(row["dataset"], row["method"], row["every"])].append(row)
    order = sorted(groups, key=lambda g: (g[0], METHODS.index(g[1]), g[2]))
    rows = []
    for dataset, method, k in order:
        rs = groups[(dataset, method, k)]
        scores = [r["dice_unseen"] for r in rs]
        rows.append({"dataset": dataset, "method": method, "every": k,
                     "dice_unseen": round(float(np.mean(scores)), 4),
                     "seconds": round(float(np.mean([r["seconds"] for r in rs])), 4),
                     "work_saved": round(float(np.mean([r["work_saved"] for r in rs])), 3),
                     "n": len(rs), "dice_unseen_min": round(float(min(scores)), 4)})
    for t in targets:
        best: dict[tuple, tuple] = {}
        for r in rows:
            key = (r["dataset"], r["method"])
            if r["dice_unseen"] >= t and r["work_saved"] > best.get(key, (0.0, None))[0]:
                best[key] = (r["work_saved"], r["every"])
        for r in rows:
            ws, k = best.get((r["dataset"], r["method"]), (None, None))
            r[f"work_saved{_pct(t)}"], r[f"every{_pct(t)}"] = ws, k
    return rows


def run_interpolation(data, *, every=(2, 3, 5, 7, 10), axis: int = 0, methods=None,
                      targets=(0.85, 0.9), limit: int | None = None, log=print) -> dict:
    """Run the interpolation benchmark on dataset folders; return the report.

    Parameters
    ----------
    data : list of str or Path
        Dataset folders (any layout :func:`segloop.io.open_dataset` knows).
    every : sequence of int
        The K values: the truth is given on every K-th slice (K >= 2).
    axis : int
        The slicing axis of the arrays (0 = the first; axial for BRATS).
    methods : sequence of str, optional
        Among :data:`METHODS` (default all; ``itk-mci`` only when available).
    targets : sequence of float
        Dice targets in (0, 1] for the ``work_saved<t>`` keys.
    limit : int, optional
        At most this many cases per dataset.
    log : callable
        Called with one progress line at a time.

    Returns
    -------
    dict
        :func:`segloop.bench.report.bench_report` of suite ``interpolation``
        whose ``notes`` say what was skipped and why.
    """
    if isinstance(data, (str, Path)) or not list(data):
        raise InvalidArgumentError(f"data must be a non-empty list of folders, got {data!r}")
    ks, methods, targets = _check(every, axis, methods, targets, limit)
    notes: list[str] = []
    runner = itk_mci.itk_runner() if "itk-mci" in methods else None
    if "itk-mci" in methods and runner is None:
        notes.append(f"itk-mci skipped: `import itk` fails here and {itk_mci.ITK_ENV} does "
                     "not name an interpreter that has it")
        methods = [m for m in methods if m != "itk-mci"]
    cases, skipped = [], {}
    for path in data:
        counts: Counter = Counter()
        pending: list = []
        log(f"{Path(path).name}:")
        for vol in iter_volumes(path, axis=axis, limit=limit, skipped=counts):
            cases += _run_volume(vol, ks, axis, methods, pending, log)
            if sum(p[2].nbytes for p in pending) > _ITK_BATCH_BYTES:
                cases += _run_itk(pending, runner, axis, notes, log)
                pending = []
        cases += _run_itk(pending, runner, axis, notes, log)
        skipped[Path(path).resolve().name] = dict(sorted(counts.items()))
    args = {"data": [str(p) for p in data], "every": ks, "axis": axis, "methods": methods,
            "targets": targets, "limit": limit}
    notes += [f"{name}: skipped {n} ({reason})" for name, counts in skipped.items()
              for reason, n in counts.items()]
    return bench_report("interpolation", args=args, summary=summarize(cases, targets=targets),
                        cases=cases, notes=notes)


def write_plot(report: dict, path) -> Path:
    """Write Dice on the unseen slices against K, per dataset, one line per method (PNG).

    The x tick labels give K and the mean work saved at that K; dashed grey
    lines mark the target Dice values; ITK is dashed, the nearest-slice
    baseline dotted. The folder of ``path`` is created; ``path`` is returned.
    """
    from matplotlib.figure import Figure

    rows = report["summary"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows)) or ["(no data)"]
    cols = min(3, len(datasets))
    nrows = -(-len(datasets) // cols)
    fig = Figure(figsize=(4.4 * cols, 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax in axes[len(datasets):]:
        ax.set_axis_off()
    for ax, name in zip(axes, datasets, strict=False):
        mine = [r for r in rows if r["dataset"] == name]
        for method, style in zip(METHODS, ("-", "--", ":"), strict=True):
            line = [r for r in mine if r["method"] == method]
            if line:
                ax.plot([r["every"] for r in line], [r["dice_unseen"] for r in line],
                        linestyle=style, marker="o", label=method)
        saved = {r["every"]: r["work_saved"] for r in mine}
        ax.set_xticks(sorted(saved), [f"{k}\n×{saved[k]:.1f}" for k in sorted(saved)])
        for t in report.get("args", {}).get("targets", ()):
            ax.axhline(t, color="grey", linestyle="--", linewidth=0.8)
        ax.set(title=name, xlabel="every K-th slice given (work saved)",
               ylabel="Dice on unseen slices")
        if mine:
            ax.legend(loc="lower left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
