"""The simulated raters of ``segloop bench raters``: drawn from real masks, written as a dataset.

* :data:`RATERS` / :func:`rater_specs` -- the raters of known bias: grown by
  -2, -1, 0, +1, +2 mm, one missing 15 % of the object in random blobs, one
  shifted by 2 mm along x;
* :func:`first_rater_cases` -- the cases whose first rater's mask (the truth
  the raters are drawn from) is not empty;
* :func:`draw_raters` -- the raters of each case
  (:func:`segloop.simulate.raters.simulated_raters`);
* :func:`write_rater_dataset` -- them as an ``images/ + labels/<rater>/``
  folder (NIfTI, the case's spacing; each case's region beside it), opened, so
  that :func:`segloop.fusion.report.score_raters` reads them as any dataset;
* :func:`true_scores` -- each simulated rater against the real mask;
* :func:`report_consensus` -- each case's consensus built by the report's
  own :func:`~segloop.fusion.report.consensus_masks` (pooled STAPLE on the
  disputed voxels, majority vote), cut to the region.

Examples
--------
>>> spec = rater_specs(2)
>>> list(spec)
['grow-2', 'grow-1', 'exact', 'grow+1', 'grow+2', 'misses', 'shifted']
>>> spec["grow+1"], spec["misses"], spec["shifted"]
({'grow_mm': 1.0}, {'miss': 0.15}, {'shift_mm': (0.0, 2.0)})
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from segloop.fusion.agreement import rater_scores
from segloop.fusion.rater_cases import RaterCase, read_rater_cases
from segloop.fusion.report import consensus_masks
from segloop.io import Image, open_dataset, write_image
from segloop.io.dataset import Dataset
from segloop.simulate.raters import simulated_raters

__all__ = [
    "RATERS",
    "draw_raters",
    "first_rater_cases",
    "rater_specs",
    "report_consensus",
    "true_scores",
    "truth_of",
    "write_rater_dataset",
]

#: The simulated raters: id -> (given grow in mm, other options; ``shift_x_mm``: last axis).
RATERS = {
    "grow-2": (-2.0, {}),
    "grow-1": (-1.0, {}),
    "exact": (0.0, {}),
    "grow+1": (1.0, {}),
    "grow+2": (2.0, {}),
    "misses": (0.0, {"miss": 0.15}),
    "shifted": (0.0, {"shift_x_mm": 2.0}),
}


def rater_specs(ndim: int) -> dict[str, dict]:
    """The :data:`RATERS` as :func:`~segloop.simulate.raters.simulated_raters` specs."""
    out = {}
    for rater, (grow, extra) in RATERS.items():
        spec = {"grow_mm": grow} if grow else {}
        if "shift_x_mm" in extra:
            spec["shift_mm"] = (0.0,) * (ndim - 1) + (extra["shift_x_mm"],)
        spec.update({k: v for k, v in extra.items() if k != "shift_x_mm"})
        out[rater] = spec
    return out


def truth_of(case: RaterCase) -> np.ndarray:
    """The mask the raters are drawn from: the case's first rater's (raters sorted by id)."""
    return next(iter(case.masks.values()))


def first_rater_cases(
    dataset: Dataset, region: str | None, n: int
) -> tuple[list[RaterCase], list[str]]:
    """The first ``n`` cases whose first rater drew something (in the region); notes on the rest.

    Cases the report cannot score (fewer than two raters) are left out too.
    """
    cases, skipped = read_rater_cases(dataset, region=region)
    chosen, notes = [], [f"case {s['case']}: {s['reason']}" for s in skipped]
    for case in cases:
        if len(chosen) == n:
            break
        mask = truth_of(case) if case.region is None else truth_of(case) & case.region
        if mask.any():
            chosen.append(case)
        else:
            notes.append(f"case {case.id}: rater {next(iter(case.masks))}'s mask is empty")
    return chosen, notes


def draw_raters(cases: list[RaterCase], seed: int) -> list[dict[str, np.ndarray]]:
    """The :data:`RATERS` of each case, drawn from its :func:`truth_of` (case ``i``: seed + 7 i)."""
    return [
        simulated_raters(
            truth_of(c),
            rater_specs(truth_of(c).ndim),
            spacing=c.spacing,
            seed=seed + i * len(RATERS),
        )
        for i, c in enumerate(cases)
    ]


def write_rater_dataset(
    root: Path, cases: list[RaterCase], simulated, region: str | None
) -> Dataset:
    """Write the simulated raters as ``root/images/`` + ``root/labels/<rater>/`` and open it.

    Case ``i`` is written as ``case<i>.nii.gz`` (zero image on its grid); with
    a ``region``, its region is written to ``root/regions/`` and added to the
    opened case's labels under that name (it is not a rater).
    """
    regions = {}
    for i, (case, raters) in enumerate(zip(cases, simulated, strict=True)):
        name = f"case{i:03d}"
        grid = Image(np.zeros(truth_of(case).shape, np.uint8), spacing=case.spacing)
        write_image(grid, root / "images" / f"{name}.nii.gz")
        for rater, mask in raters.items():
            write_image(
                grid.with_array(mask.astype(np.uint8), kind="label"),
                root / "labels" / rater / f"{name}.nii.gz",
            )
        if region is not None:
            regions[name] = root / "regions" / f"{name}.nii.gz"
            write_image(grid.with_array(case.region.astype(np.uint8), kind="label"), regions[name])
    dataset = open_dataset(root, format="raters")
    if region is not None:
        dataset.cases = [
            dataclasses.replace(c, labels={**c.labels, region: regions[c.id]})
            for c in dataset.cases
        ]
    return dataset


def report_consensus(cases: list[RaterCase], simulated) -> dict[str, list[np.ndarray]]:
    """Each case's consensus as the report builds it: ``{"staple": [...], "majority": [...]}``."""
    regions = [c.region for c in cases]
    return {m: consensus_masks(simulated, regions, m) for m in ("staple", "majority")}


def _rounded(value, digits: int = 4):
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def true_scores(name, truths, simulated) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """Each simulated rater against the real mask (:func:`truth_of`), in the case's region.

    Returns the mean of each :func:`~segloop.fusion.agreement.rater_scores` key over
    the cases per rater, and one row per case and rater (``true_<key>``).
    """
    scores: dict[str, list[dict]] = {r: [] for r in RATERS}
    cases = []
    for case, raters in zip(truths, simulated, strict=True):
        truth = truth_of(case)
        for rater, mask in raters.items():
            s = rater_scores(mask, truth, spacing=case.spacing, region=case.region)
            scores[rater].append(s)
            cases.append(
                {
                    "dataset": name,
                    "part": "recovery",
                    "case": case.id,
                    "rater": rater,
                    **{f"true_{k}": _rounded(v) for k, v in s.items()},
                }
            )
    means = {r: {k: float(np.nanmean([x[k] for x in v])) for k in v[0]} for r, v in scores.items()}
    return means, cases
