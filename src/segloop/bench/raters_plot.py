"""The figure of ``segloop bench raters``: biases recovered and fusion Dice, per dataset.

Left: the boundary bias the rater report finds for each simulated rater
against the grow it was given (filled markers: STAPLE consensus, open:
majority vote; the ``misses`` and ``shifted`` raters, given no grow, are
placed beside ``0``), beside the identity line.  Right: the Dice against the real mask
of each fusion method, the best simulated rater, the best one with a bias
and the mean rater.  Drawn on a Matplotlib ``Figure`` (no pyplot state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segloop.bench.plots import save_figure
from segloop.bench.raters import FUSION
from segloop.errors import InvalidArgumentError

__all__ = ["write_plot"]

#: x offset of the raters given no grow, so that they stand beside the ``exact`` one.
_NUDGE = {"misses": -0.4, "shifted": 0.4}


def write_plot(report: dict, path) -> Path:
    """Given vs found boundary bias per simulated rater, and fusion Dice, per dataset (PNG).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> rep = {"suite": "raters", "summary": [
    ...     {"dataset": "d", "part": "recovery", "rater": "grow+1", "given_grow_mm": 1.0,
    ...      "boundary_bias_mm": 0.9},
    ...     {"dataset": "d", "part": "fusion", "method": "staple", "dice": 0.95}]}
    >>> write_plot(rep, pathlib.Path(tempfile.mkdtemp()) / "r.png").stat().st_size > 1000
    True
    """
    suite = report.get("suite") if isinstance(report, dict) else report
    if suite != "raters":
        raise InvalidArgumentError(
            f"report must be a raters benchmark (suite 'raters'), got {suite!r}"
        )
    from matplotlib.figure import Figure  # Agg canvas, no global pyplot state

    rows = report.get("summary", [])
    datasets = list(dict.fromkeys(r["dataset"] for r in rows)) or ["(no dataset)"]
    fig = Figure(figsize=(10, 4))
    bias, bars = fig.subplots(1, 2)
    for i, dataset in enumerate(datasets):
        for consensus, fill in (("staple", None), ("majority", "none")):
            rec = [
                r
                for r in rows
                if r["dataset"] == dataset
                and r["part"] == "recovery"
                and r.get("consensus", "staple") == consensus
            ]
            x = [r["given_grow_mm"] + _NUDGE.get(r["rater"], 0.0) for r in rec]
            y = [np.nan if r["boundary_bias_mm"] is None else r["boundary_bias_mm"] for r in rec]
            if rec:
                bias.plot(
                    x,
                    y,
                    "os"[i % 2],
                    color=f"C{i}",
                    markerfacecolor=fill,
                    alpha=0.8,
                    label=f"{dataset} ({consensus})",
                )
    bias.set_xticks(
        [-2, -1, -_NUDGE["shifted"], 0, _NUDGE["shifted"], 1, 2],
        ["-2", "-1", "misses", "0", "shifted", "+1", "+2"],
        fontsize=7,
    )
    bias.plot([-2.5, 2.5], [-2.5, 2.5], color="0.6", linewidth=0.8)
    bias.set(
        xlabel="given grow (mm)",
        ylabel="boundary bias found (mm)",
        title="simulated raters: bias recovered",
    )
    bias.grid(alpha=0.3)
    if bias.lines[:-1]:
        bias.legend(fontsize=7)
    methods = [*FUSION, "best_rater", "mean_rater"]
    width = 0.8 / len(datasets)
    for i, dataset in enumerate(datasets):
        dice = {
            r["method"]: r["dice"]
            for r in rows
            if r["dataset"] == dataset and r["part"] == "fusion"
        }
        values = [np.nan if dice.get(m) is None else dice[m] for m in methods]
        bars.bar(np.arange(len(methods)) + i * width, values, width, label=dataset)
    bars.set_xticks(
        np.arange(len(methods)) + width * (len(datasets) - 1) / 2, methods, rotation=30, fontsize=7
    )
    low = min(
        [v for r in rows if r["part"] == "fusion" and (v := r.get("dice")) is not None], default=0.5
    )
    bars.set(
        ylabel="Dice vs the real mask",
        ylim=(min(0.5, np.floor(low * 10) / 10), 1.0),
        title="fusion of simulated raters",
    )
    bars.grid(alpha=0.3, axis="y")
    bars.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)
