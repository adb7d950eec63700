"""The figure of the clicks benchmark: mean Dice against interactions, per dataset and tool.

One panel per dataset (3D objects are their own panel), one line per tool:
the mean over the dataset's objects of the Dice after ``k`` interactions
(a session that stopped earlier keeps its last Dice), for ``k`` up to the
run's cap. The legend gives each tool's mean NoC@90 from the summary; peers
are dashed, the polygon baseline dotted. Drawn on a Matplotlib ``Figure``
(Agg canvas: no display, no pyplot state).

Examples
--------
>>> cases = [{"dataset": "d", "tool": "t", "dice": [0.5, 0.9]},
...          {"dataset": "d", "tool": "t", "dice": [0.7]}]
>>> dice_curves(cases, 3)[("d", "t")].tolist()
[0.6, 0.8, 0.8]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segloop.errors import InvalidArgumentError

__all__ = ["dice_curves", "save_figure", "write_plot"]

_PEER_PREFIXES = ("opencv-", "skimage-", "itk-")


def save_figure(fig, path) -> Path:
    """Write a benchmark figure as PNG (parent folders created); the path written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def dice_curves(cases: list[dict], max_k: int) -> dict[tuple[str, str], np.ndarray]:
    """Mean Dice after ``1..max_k`` interactions per ``(dataset, tool)`` from ``cases`` rows."""
    grouped: dict[tuple[str, str], list[np.ndarray]] = {}
    for row in cases:
        dice = list(row.get("dice") or [0.0])[:max_k]
        curve = np.asarray(dice + [dice[-1]] * (max_k - len(dice)), dtype=float)
        grouped.setdefault((row["dataset"], row["tool"]), []).append(curve)
    return {key: np.mean(curves, axis=0) for key, curves in grouped.items()}


def _style(tool: str) -> str:
    if tool == "polygon":
        return ":"
    return "--" if tool.startswith(_PEER_PREFIXES) else "-"


def write_plot(report: dict, path) -> Path:
    """Write the Dice-vs-interactions figure of a clicks ``report`` to ``path`` (PNG).

    Parameters
    ----------
    report : dict
        What :func:`segloop.bench.clicks.run_clicks` returns.
    path : str or pathlib.Path
        The PNG to write (its folder is created).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``report`` is not a clicks report.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> rep = {"suite": "clicks", "args": {"max_interactions": 3},
    ...        "summary": [{"dataset": "d", "tool": "boxclicks", "noc90": 2.0}],
    ...        "cases": [{"dataset": "d", "tool": "boxclicks", "dice": [0.8, 0.92]}]}
    >>> out = write_plot(rep, pathlib.Path(tempfile.mkdtemp()) / "clicks.png")
    >>> out.stat().st_size > 1000
    True
    """
    suite = report.get("suite") if isinstance(report, dict) else report
    if suite != "clicks":
        raise InvalidArgumentError("report must be the result of run_clicks (suite 'clicks'), "
                                   f"got {suite!r}")
    from matplotlib.figure import Figure  # Agg canvas, no global pyplot state

    max_k = int(report.get("args", {}).get("max_interactions", 20))
    curves = dice_curves(report.get("cases", []), max_k)
    noc90 = {(r["dataset"], r["tool"]): r.get("noc90") for r in report.get("summary", [])}
    datasets = list(dict.fromkeys(d for d, _ in curves)) or ["(no cases)"]
    cols = min(3, len(datasets))
    rows = -(-len(datasets) // cols)
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    ks = np.arange(1, max_k + 1)
    for ax, dataset in zip(axes.ravel(), datasets, strict=False):
        for (d, tool), curve in curves.items():
            if d != dataset:
                continue
            n = noc90.get((d, tool))
            label = tool if n is None else f"{tool} (NoC@90 {n:.1f})"
            ax.plot(ks, curve, _style(tool), marker=".", markersize=3, label=label)
        ax.axhline(0.9, color="0.6", linewidth=0.8)
        ax.set(title=dataset, xlabel="interactions", ylabel="mean Dice", ylim=(0.0, 1.0),
               xlim=(1, max_k))
        ax.grid(alpha=0.3)
        if ax.lines[:-1]:
            ax.legend(fontsize=7, loc="lower right")
    for ax in axes.ravel()[len(datasets):]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, path)
