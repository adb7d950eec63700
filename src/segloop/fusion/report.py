"""The rater report: every rater of a dataset measured against the consensus.

:func:`rater_report` reads the raters of each case of a dataset folder (any
layout :func:`segloop.io.open_dataset` reads whose cases list raters:
``derivatives/labels-<rater>/`` or ``_rater-<id>`` in BIDS, ``labels/<rater>/``
folders, the QUBIQ and DRIVE sets), builds a consensus per case and scores
each rater against it:

* **consensus**: ``"majority"`` (default) is the per-case majority vote
  (ties to background): the median boundary of the raters, so one rater
  drawing far out or in does not move it.  ``"staple"`` runs STAPLE pooled
  over the cases (:func:`~segloop.fusion.staple.staple_cases`, raters missing
  from some cases allowed; ``staple_voxels="disputed"`` on the voxels where
  the raters disagree only) and thresholds its posterior at 0.5; classic
  STAPLE's consensus drifts towards the raters who draw widest (measured by
  ``segloop bench raters``: with simulated raters of known bias it lies
  0.3-0.4 mm outside the true mask, and every bias found is shifted by that
  much, against <= 0.23 mm of error with the majority).  STAPLE's estimates
  (one sensitivity and specificity per rater for the whole dataset) are
  reported whatever the consensus (``staple_sensitivity``,
  ``staple_specificity``).
* **per rater** (means over the cases the rater labelled, and their standard
  deviation over those cases, the rater's *consistency*): Dice against the
  consensus, empirical sensitivity and specificity, volume bias (signed
  relative volume difference) and boundary bias (mean signed surface
  distance in mm, > 0: the rater draws outside the consensus); see
  :mod:`segloop.fusion.agreement`.  By default the rater's own mask is part
  of the consensus it is compared with, which favours agreement when there
  are few raters (with two, the majority is their intersection);
  ``leave_one_out=True`` compares each rater with the consensus of the
  others instead.
* **pairwise**: the mean inter-rater Dice of every pair over the cases both
  labelled, and how many such cases there were.
* **groups**: with a rater attribute (``groups``: rater id -> group, e.g. the
  rater's centre), mean agreement within groups against between groups.

Specificity depends on how much background is counted: ``region`` names a
label of each case (e.g. ``fov`` for DRIVE) to which every count and STAPLE
are restricted; by default the whole image counts.

Cases with fewer than two raters cannot be scored and are listed in
``skipped`` with the reason; a rater missing from some cases is scored on
the others (``n_cases``).  Binary masks are expected: a rater map with
several labels needs ``class_value`` (the label to score) and any value
other than 0/1 without it is an error naming the case and rater.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, write_image
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> truth = np.zeros((32, 32), np.uint8); truth[8:24, 8:24] = 1
>>> for name in ("a", "b"):
...     write_image(Image(np.zeros((32, 32), np.uint8)), root / "images" / f"{name}.png")
...     write_image(Image(truth, kind="label"), root / "labels" / "r1" / f"{name}.png")
...     write_image(Image(truth, kind="label"), root / "labels" / "r2" / f"{name}.png")
...     big = np.zeros_like(truth); big[7:25, 7:25] = 1
...     write_image(Image(big, kind="label"), root / "labels" / "r3" / f"{name}.png")
>>> report = rater_report(root)
>>> sorted(report["raters"]), round(report["raters"]["r3"]["boundary_bias_mm"], 2)
(['r1', 'r2', 'r3'], 1.06)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from segloop.errors import DatasetError, InvalidArgumentError
from segloop.fusion.agreement import (
    AGREEMENT_KEYS,
    agreement_matrix,
    group_agreement,
    pairwise_dice,
    rater_scores,
)
from segloop.fusion.rater_cases import RaterCase, choose_kind, read_rater_cases
from segloop.fusion.staple import STAPLE_VOXELS, staple_cases
from segloop.fusion.vote import majority_vote
from segloop.io import open_dataset
from segloop.io.dataset import Dataset

__all__ = ["CONSENSUS_METHODS", "STAPLE_VOXELS", "rater_report", "score_raters"]

#: How the consensus of each case is built.
CONSENSUS_METHODS = ("majority", "staple")

#: Report key of each agreement score (Dice is measured against the consensus).
_REPORT_KEYS = {"dice": "dice_vs_consensus"} | {k: k for k in AGREEMENT_KEYS if k != "dice"}


def consensus_masks(masks: list[dict[str, np.ndarray]], regions: list, method: str,
                    disputed: bool = False, pooled=None) -> list[np.ndarray]:
    """Each case's consensus as the report builds it (a single rater is its own).

    Parameters
    ----------
    masks : list of dict of str to ndarray
        Per case, rater id -> binary mask.
    regions : list of ndarray or None
        Per case, the voxels that count (None: all); the consensus is cut to it.
    method : {"staple", "majority"}
        STAPLE pooled over the cases (posterior > 0.5) or the per-case majority.
    disputed : bool
        STAPLE on the voxels where the raters disagree only
        (``staple_voxels="disputed"``).
    pooled : PooledStaple, optional
        A pooled STAPLE of exactly these cases, to reuse.
    """
    if method == "staple":
        several = [i for i, m in enumerate(masks) if len(m) >= 2]
        if pooled is None and several:
            pooled = staple_cases([masks[i] for i in several],
                                  regions=[regions[i] for i in several], disputed_only=disputed)
        posterior = dict(zip(several, pooled.posteriors, strict=True)) if several else {}
        fused = [posterior[i] > 0.5 if i in posterior else next(iter(m.values())).copy()
                 for i, m in enumerate(masks)]
    else:
        fused = [majority_vote(m) != 0 for m in masks]
    return [f if r is None else f & r for f, r in zip(fused, regions, strict=True)]


def _scores(cases: list[RaterCase], method: str, pooled, leave_one_out: bool,
            disputed: bool) -> list[dict]:
    """One row per case and rater: the rater against the consensus (of the others)."""
    regions = [c.region for c in cases]
    rows = []
    if not leave_one_out:
        fused = consensus_masks([c.masks for c in cases], regions, method, disputed, pooled)
        for case, reference in zip(cases, fused, strict=True):
            for rater, mask in case.masks.items():
                rows.append({"case": case.id, "rater": rater, **rater_scores(
                    mask, reference, spacing=case.spacing, region=case.region)})
        return rows
    order = {c.id: i for i, c in enumerate(cases)}
    for rater in sorted({r for c in cases for r in c.masks}):
        mine = [c for c in cases if rater in c.masks]
        others = [{k: v for k, v in c.masks.items() if k != rater} for c in mine]
        fused = consensus_masks(others, [c.region for c in mine], method, disputed)
        for case, reference in zip(mine, fused, strict=True):
            rows.append({"case": case.id, "rater": rater, **rater_scores(
                case.masks[rater], reference, spacing=case.spacing, region=case.region)})
    return sorted(rows, key=lambda r: order[r["case"]])


def _stats(values: list[float]) -> tuple[float, float]:
    finite = np.asarray([v for v in values if np.isfinite(v)], float)
    if finite.size == 0:
        return float("nan"), float("nan")
    return float(finite.mean()), float(finite.std())


def _rater_summary(rows: list[dict], raters: list[str], pooled) -> dict[str, dict[str, Any]]:
    out = {}
    for rater in raters:
        mine = [r for r in rows if r["rater"] == rater]
        entry: dict[str, Any] = {"n_cases": len(mine)}
        for key, name in _REPORT_KEYS.items():
            mean, std = _stats([r[key] for r in mine])
            entry[name] = mean
            entry[f"{name}_std"] = std
        entry["staple_sensitivity"] = float(pooled.sensitivity[rater])
        entry["staple_specificity"] = float(pooled.specificity[rater])
        out[rater] = entry
    return out


def _groups(matrix: np.ndarray, raters: list[str], groups: Mapping[str, str] | None,
            attribute: str | None) -> dict[str, Any]:
    if not groups:
        return {}
    known = {r: str(groups[r]) for r in raters if r in groups}
    missing = [r for r in raters if r not in groups]
    result = group_agreement(matrix, raters, known)
    return {"attribute": attribute, "of_rater": known, "raters_without_group": missing, **result}


def score_raters(
    data: str | os.PathLike | Dataset,
    *,
    kind: str | None = None,
    consensus: str = "majority",
    class_value: int | None = None,
    region: str | None = None,
    groups: Mapping[str, str] | None = None,
    group_attribute: str | None = None,
    format: str | None = None,
    limit: int | None = None,
    leave_one_out: bool = False,
    staple_voxels: str = "all",
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[RaterCase]]:
    """Score every rater of a dataset against the consensus (see the module docstring).

    :func:`rater_report` returns the report alone; this also returns the
    cases read (their masks, for figures).

    Parameters
    ----------
    data : path or Dataset
        A dataset folder whose cases have raters, or an opened dataset.
    kind : str, optional
        Which raters' labels, when the cases have several kinds (BIDS label
        suffixes such as ``seg-manual``); default: the only kind.
    consensus : {"majority", "staple"}
        How each case's consensus is built (module docstring).
    class_value : int, optional
        The label value to score in multi-label rater maps.
    region : str, optional
        Name of a label of each case restricting the counts (e.g. ``fov``).
    groups : mapping of str to str, optional
        Rater id -> group (e.g. centre) for the within/between comparison.
    group_attribute : str, optional
        Name of the attribute the groups come from (reported).
    format : str, optional
        Dataset layout name (default: detected).
    limit : int, optional
        Score at most this many cases (quick runs).
    leave_one_out : bool
        Compare each rater with the consensus of the *other* raters (with
        two raters: the other one), so that its own mask does not pull the
        consensus towards it.
    staple_voxels : {"all", "disputed"}
        The voxels STAPLE's EM sees: every voxel (default: the classic
        algorithm, as SimpleITK's filter), or only those where the raters
        disagree (the unanimous ones keep their label); see
        :mod:`segloop.fusion.staple` for what each gives.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    report : dict
        ``raters`` (per rater: ``dice_vs_consensus``, ``volume_bias``,
        ``boundary_bias_mm``, ``sensitivity``, ``specificity``, ``n_cases``,
        each score's ``_std`` over cases, ``staple_sensitivity``,
        ``staple_specificity``), ``pairwise`` (``raters``, ``dice`` and
        ``n_cases`` matrices, ``mean_dice``), ``groups``, ``cases`` (one row
        per case and rater), ``skipped``, ``n_cases``, ``seconds`` and the
        settings used.
    cases : list of RaterCase
        The cases scored, in the dataset's order.
    """
    if staple_voxels not in STAPLE_VOXELS:
        raise InvalidArgumentError(f"staple_voxels {staple_voxels!r}: expected one of "
                                   f"{', '.join(STAPLE_VOXELS)}")
    if consensus not in CONSENSUS_METHODS:
        raise InvalidArgumentError(f"consensus {consensus!r}: expected one of "
                                   f"{', '.join(CONSENSUS_METHODS)}")
    if limit is not None and limit < 1:
        raise InvalidArgumentError(f"limit must be >= 1, got {limit}")
    start = time.perf_counter()
    dataset = data if isinstance(data, Dataset) else open_dataset(data, format=format)
    kind = choose_kind(dataset, kind)
    cases, skipped = read_rater_cases(dataset, kind=kind, class_value=class_value,
                                      region=region, limit=limit)
    if not cases:
        raise DatasetError("no case has two or more raters to compare", path=dataset.root)
    if log:
        log(f"{len(cases)} cases, {len(skipped)} skipped; consensus {consensus}")
    disputed = staple_voxels == "disputed"
    pooled = staple_cases([c.masks for c in cases], regions=[c.region for c in cases],
                          disputed_only=disputed)
    raters = sorted({r for c in cases for r in c.masks})
    rows = _scores(cases, consensus, pooled, leave_one_out, disputed)
    matrix, counts = agreement_matrix([pairwise_dice(c.masks) for c in cases], raters)
    upper = matrix[np.triu_indices(len(raters), 1)]
    report = {
        "dataset": str(dataset.root),
        "layout": dataset.layout,
        "kind": kind,
        "class": class_value,
        "consensus": consensus,
        "leave_one_out": leave_one_out,
        "region": region,
        "n_cases": len(cases),
        "raters": _rater_summary(rows, raters, pooled),
        "pairwise": {"raters": raters, "dice": matrix.tolist(), "n_cases": counts.tolist(),
                     "mean_dice": float(np.nanmean(upper)) if np.isfinite(upper).any() else None},
        "groups": _groups(matrix, raters, groups, group_attribute),
        "staple": {"voxels": staple_voxels, "prior": float(pooled.prior),
                   "iterations": int(pooled.iterations),
                   "converged": bool(pooled.converged)},
        "cases": rows,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return report, cases


def rater_report(data: str | os.PathLike | Dataset, **options) -> dict[str, Any]:
    """Score every rater of a dataset against the consensus: :func:`score_raters`'s report."""
    return score_raters(data, **options)[0]
