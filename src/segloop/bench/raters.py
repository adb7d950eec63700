"""``segloop bench raters``: the rater report's speed, what it recovers, and fusion vs raters.

:func:`run_raters_bench` measures three things per dataset folder whose cases
list raters (QUBIQ, DRIVE, ``images/ + labels/<rater>/``...):

* ``report`` -- the wall time of :func:`segloop.fusion.report.score_raters`
  (its default consensus, with STAPLE pooled over the cases for its
  estimates, restricted to the dataset's ``region`` label when one is given,
  e.g. DRIVE's ``fov``) on the real raters.
* ``recovery`` -- simulated raters of known bias
  (:func:`segloop.simulate.raters.simulate_rater`, the :data:`RATERS` of
  :mod:`segloop.bench.raters_data`: grown by -2 .. +2 mm, one missing 15 %
  of the object, one shifted by 2 mm) are drawn from the first rater's mask
  of the first ``simulate_cases`` cases (cases where that mask is empty are
  left out), written to a temporary ``images/ + labels/<rater>/`` folder
  (NIfTI, the cases' spacing; the region of each case beside it) and the
  same report is run on them, with each consensus (``staple`` and
  ``majority``).  Per rater and consensus: the boundary bias found against
  the given grow (``error_mm = boundary_bias_mm - given_grow_mm``, signed),
  the volume bias, and the STAPLE sensitivity and specificity beside the true
  ones (``true_*``: the rater against the real mask it was drawn from).  The
  report measures against the consensus, which is itself off the real mask
  by ``consensus_bias_mm`` (its mean signed surface distance from it, > 0:
  outside), so ``offset_corrected_error_mm = boundary_bias_mm +
  consensus_bias_mm - given_grow_mm`` is the error of the measurement
  itself.  One ``recovery_rank`` row per dataset and consensus: the Spearman
  rank correlation between the true and the STAPLE sensitivities
  (specificities) over the raters, ``sign_correct`` (the fraction of raters
  with a non-zero grow whose sign is found), and the largest absolute errors
  over the grow raters (``misses`` and ``shifted`` are given no grow but
  have a true boundary bias of their own: holes, a side moved out).
* ``fusion`` -- the same simulated raters but the ``exact`` copy (no real
  rater is perfect: six biased raters) fused per case by majority vote,
  weighted vote (leave-one-out kappa weights), classic STAPLE on every voxel
  (``staple``, the default of ``segloop fuse`` and the report) and STAPLE on
  the voxels where they disagree (``staple_disputed``), in the region; scored
  by Dice against the real mask (inside the region), beside the best of the
  six raters alone (``best_rater``, its id in ``rater``) and their mean
  (``mean_rater``).  The soft mean thresholded at 0.5 is the majority vote,
  so it is not listed.  ``vs_best_rater`` is the Dice minus the best rater's.

Every summary row has a ``part`` key; ``cases`` holds the report's per-rater
rows, the simulated raters per case and the fusion Dice per case.

Examples
--------
>>> list(RATERS)
['grow-2', 'grow-1', 'exact', 'grow+1', 'grow+2', 'misses', 'shifted']
>>> sign_agreement({"a": -1.0, "b": 2.0, "c": 0.0}, {"a": -0.4, "b": -0.1, "c": 3.0})
0.5
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from segloop.bench.raters_data import (
    RATERS,
    draw_raters,
    first_rater_cases,
    report_consensus,
    true_scores,
    truth_of,
    write_rater_dataset,
)
from segloop.bench.report import bench_report
from segloop.errors import InvalidArgumentError
from segloop.fusion.agreement import signed_surface_distance
from segloop.fusion.report import CONSENSUS_METHODS, score_raters
from segloop.fusion.soft import fuse
from segloop.io import open_dataset
from segloop.io.dataset import Dataset

__all__ = ["FUSION", "RATERS", "run_raters_bench", "sign_agreement"]

#: The fusion methods scored against the real mask.
FUSION = ("majority", "weighted", "staple", "staple_disputed")
#: The raters fused: every simulated rater but the ``exact`` copy (no real rater is perfect).
BIASED = tuple(r for r in RATERS if r != "exact")


def sign_agreement(given: Mapping[str, float], found: Mapping[str, float]) -> float:
    """Fraction of raters with a non-zero ``given`` bias whose ``found`` bias has its sign."""
    biased = [r for r, g in given.items() if g != 0]
    if not biased:
        return float("nan")
    return sum(bool(np.sign(found[r]) == np.sign(given[r])) for r in biased) / len(biased)


def _num(value, digits: int = 4):
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def _dice(mask: np.ndarray, truth: np.ndarray, region: np.ndarray | None) -> float:
    if region is not None:
        mask, truth = mask & region, truth & region
    total = int(mask.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * int((mask & truth).sum()) / total


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    with warnings.catch_warnings():  # a constant input: NaN, reported as null
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


# ----------------------------------------------------------------------------- the report
def _report_part(name: str, dataset: Dataset, region: str | None, log) -> tuple[dict, list]:
    start = time.perf_counter()
    report, _ = score_raters(dataset, region=region)
    seconds = time.perf_counter() - start
    raters = report["raters"]
    row = {
        "dataset": name,
        "part": "report",
        "method": report["consensus"],
        "cases": report["n_cases"],
        "raters": len(raters),
        "seconds": round(seconds, 3),
        "mean_inter_rater_dice": _num(report["pairwise"]["mean_dice"] or np.nan),
        "region": region,
        "skipped": len(report["skipped"]),
    }
    log(f"{name}: report on {row['cases']} cases x {row['raters']} raters in {seconds:.2f} s")
    cases = [
        {
            "dataset": name,
            "part": "report",
            "rater": r,
            **{k: _num(v) if isinstance(v, float) else v for k, v in s.items()},
        }
        for r, s in raters.items()
    ]
    return row, cases


def _recovery(name, consensus, report, true, offset) -> list[dict]:
    """Rows per rater (the report's findings beside the truth) and the dataset's rank row."""
    rows = []
    found = report["raters"]
    for rater, (grow, _) in RATERS.items():
        f, t = found[rater], true[rater]
        rows.append(
            {
                "dataset": name,
                "part": "recovery",
                "consensus": consensus,
                "rater": rater,
                "given_grow_mm": grow,
                "boundary_bias_mm": _num(f["boundary_bias_mm"]),
                "error_mm": _num(f["boundary_bias_mm"] - grow),
                "offset_corrected_error_mm": _num(f["boundary_bias_mm"] + offset - grow),
                "true_boundary_bias_mm": _num(t["boundary_bias_mm"]),
                "volume_bias": _num(f["volume_bias"]),
                "true_volume_bias": _num(t["volume_bias"]),
                "true_sensitivity": _num(t["sensitivity"]),
                "staple_sensitivity": _num(f["staple_sensitivity"]),
                "true_specificity": _num(t["specificity"]),
                "staple_specificity": _num(f["staple_specificity"]),
                "dice_vs_consensus": _num(f["dice_vs_consensus"]),
                "cases": f["n_cases"],
            }
        )
    grown = [r for r in rows if RATERS[r["rater"]][1] == {}]  # the pure grow raters
    rank = {
        "dataset": name,
        "part": "recovery_rank",
        "consensus": consensus,
        "raters": len(RATERS),
        "consensus_bias_mm": _num(offset),
    }
    for key in ("sensitivity", "specificity"):
        rank[f"rank_correlation_{key}"] = _num(
            _spearman([r[f"true_{key}"] for r in rows], [r[f"staple_{key}"] for r in rows])
        )
    rank["sign_correct"] = _num(
        sign_agreement(
            {r: g for r, (g, _) in RATERS.items()},
            {r: found[r]["boundary_bias_mm"] for r in RATERS},
        )
    )
    rank["max_abs_error_mm"] = _num(max(abs(r["error_mm"]) for r in grown))
    rank["max_abs_offset_corrected_error_mm"] = _num(
        max(abs(r["offset_corrected_error_mm"]) for r in grown)
    )
    return rows + [rank]


def _fusion(name, truths, simulated) -> tuple[list[dict], list[dict], str]:
    """The biased raters of each case fused, and each of them alone, against the real mask."""
    dice: dict[str, list[float]] = {m: [] for m in (*FUSION, *BIASED)}
    cases = []
    for case, drawn in zip(truths, simulated, strict=True):
        truth = truth_of(case)
        raters = {r: drawn[r] for r in BIASED}
        extra = {} if case.region is None else {"region": case.region}
        fused = {
            "majority": fuse(raters, "majority"),
            "weighted": fuse(raters, "weighted"),
            "staple": fuse(raters, "staple", **extra),
            "staple_disputed": fuse(raters, "staple", disputed_only=True, **extra),
        }
        for method, mask in (*fused.items(), *raters.items()):
            d = _dice(np.asarray(mask, bool), truth, case.region)
            dice[method].append(d)
            kind = "method" if method in FUSION else "rater"
            cases.append(
                {"dataset": name, "part": "fusion", "case": case.id, kind: method, "dice": _num(d)}
            )
    means = {m: float(np.mean(v)) for m, v in dice.items()}
    best = max(BIASED, key=lambda r: means[r])
    mean_rater = float(np.mean([means[r] for r in BIASED]))
    rows = [
        {"dataset": name, "part": "fusion", "method": method, "rater": rater,
         "dice": _num(value), "vs_best_rater": _num(value - means[best]), "cases": len(truths)}
        for method, rater, value in (
            *((m, None, means[m]) for m in FUSION),
            ("best_rater", best, means[best]),
            ("mean_rater", None, mean_rater),
        )
    ]
    top = max(FUSION, key=lambda m: means[m])
    verdict = "beats" if means[top] > means[best] else "does not beat"
    note = (
        f"{name}: fusing the {len(BIASED)} biased raters, the best fusion ({top}, Dice "
        f"{means[top]:.4f}) {verdict} the best of them ({best}, {means[best]:.4f}); mean rater "
        f"{mean_rater:.4f}; STAPLE {means['staple']:.4f} on all voxels, "
        f"{means['staple_disputed']:.4f} on the disputed ones"
    )
    return rows, cases, note


def _check(data, regions, simulate_cases, seed) -> tuple[list[Path], dict[str, str]]:
    if isinstance(data, str | os.PathLike) or not data:
        raise InvalidArgumentError("data must be a non-empty list of dataset folders")
    if (
        not isinstance(simulate_cases, int)
        or isinstance(simulate_cases, bool)
        or simulate_cases < 1
    ):
        raise InvalidArgumentError(
            f"simulate_cases must be an integer >= 1, got {simulate_cases!r}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgumentError(f"seed must be an integer >= 0, got {seed!r}")
    paths = [Path(d) for d in data]
    names = [p.resolve().name for p in paths]
    unknown = sorted(set(regions or {}) - set(names))
    if unknown:
        raise InvalidArgumentError(
            f"regions: no dataset folder named {', '.join(unknown)} "
            f"(the folders given: {', '.join(names)})"
        )
    return paths, dict(regions or {})


def run_raters_bench(
    data: Sequence[str | os.PathLike],
    *,
    regions: Mapping[str, str] | None = None,
    simulate_cases: int = 12,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict:
    """Time the rater report, check what it recovers and score fusion (module docstring).

    Parameters
    ----------
    data : list of path
        Dataset folders whose cases list raters.
    regions : dict of str to str, optional
        Dataset folder name -> the label of each case restricting the counts
        (e.g. ``{"retina_drive_2raters": "fov"}``).
    simulate_cases : int
        Cases per dataset on which raters are simulated (the first ones).
    seed : int
        Seed of the simulated raters' misses.
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        The common benchmark report (suite ``raters``); summary rows of parts
        ``report``, ``recovery``, ``recovery_rank`` and ``fusion``.

    Raises
    ------
    InvalidArgumentError
        No folder, a ``regions`` key naming no folder given, a bad
        ``simulate_cases`` or ``seed``.
    segloop.errors.DatasetError
        A folder without raters, or a case without the region label.
    """
    paths, regions = _check(data, regions, simulate_cases, seed)
    summary, cases, notes = [], [], []
    for path in paths:
        name = path.resolve().name
        region = regions.get(name)
        dataset = open_dataset(path)
        row, rows = _report_part(name, dataset, region, log)
        summary.append(row)
        cases += rows
        truths, skipped = first_rater_cases(dataset, region, simulate_cases)
        notes += [f"{name}: {s}" for s in skipped]
        simulated = draw_raters(truths, seed)
        consensus = report_consensus(truths, simulated)
        true, details = true_scores(name, truths, simulated)
        cases += details
        with tempfile.TemporaryDirectory(prefix="segloop_bench_raters_") as tmp:
            fake = write_rater_dataset(Path(tmp), truths, simulated, region)
            for method in CONSENSUS_METHODS:
                report, _ = score_raters(fake, region=region, consensus=method)
                offset = float(
                    np.nanmean(
                        [
                            signed_surface_distance(
                                f, truth_of(c), spacing=c.spacing, region=c.region
                            )
                            for f, c in zip(consensus[method], truths, strict=True)
                        ]
                    )
                )
                rows = _recovery(name, method, report, true, offset)
                summary += rows
                log(
                    f"{name}: {len(truths)} cases of simulated raters, {method} consensus "
                    f"{offset:+.3f} mm from the real mask; largest grow error "
                    f"{rows[-1]['max_abs_error_mm']} mm "
                    f"({rows[-1]['max_abs_offset_corrected_error_mm']} mm net of that offset)"
                )
        rows, details, note = _fusion(name, truths, simulated)
        summary += rows
        cases += details
        notes.append(note)
        log(note)
    args = {
        "data": [str(p) for p in paths],
        "regions": regions,
        "simulate_cases": simulate_cases,
        "seed": seed,
        "raters": {r: {"grow_mm": g, **o} for r, (g, o) in RATERS.items()},
    }
    return bench_report("raters", args=args, summary=summary, cases=cases, notes=notes)
