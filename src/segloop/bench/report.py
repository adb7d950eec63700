"""The common top level of every benchmark JSON (DESIGN.md, "Benchmarks").

Examples
--------
>>> r = bench_report("latency", args={"repeats": 5}, summary=[], cases=[])
>>> sorted(r)
['args', 'cases', 'machine', 'notes', 'segloop_version', 'suite', 'summary', 'versions']
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

from segloop import __version__

__all__ = ["SUMMARY_KEYS", "bench_report", "format_rows", "package_versions"]

_PACKAGES = ("numpy", "scipy", "scikit-image", "SimpleITK", "PyMaxflow", "scikit-fmm", "edt",
             "opencv-python-headless", "torch", "monai", "itk-morphologicalcontourinterpolation")


#: Summary-row keys of each suite (DESIGN.md, "Benchmarks"): a contract other tools read.
SUMMARY_KEYS = {
    "latency": ("tool", "size", "median_ms", "p95_ms", "reference", "reference_median_ms",
                "ratio"),
    "clicks": ("dataset", "tool", "n", "noc85", "noc90", "dice_at_1", "dice_at_3", "dice_at_5",
               "failures90", "polygon_vertices90", "ratio_vs_polygon90"),
    "interpolation": ("dataset", "method", "every", "dice_unseen", "seconds", "work_saved"),
    "train": ("dataset", "dice", "seconds", "samples_per_s", "reference_samples_per_s", "ratio"),
    "loop": ("dataset", "strategy", "auc", "labels_to_95pct", "final_dice"),
    "finetune": ("dataset", "method", "n", "scribbles", "dice_initial", "dice", "gain",
                 "seconds_per_round"),
    "transfer": ("dataset", "variant", "train_images", "dice_scratch", "dice_transfer",
                 "seconds_scratch", "seconds_transfer"),
    "raters": ("dataset", "part", "method", "consensus", "rater", "cases", "seconds",
               "mean_inter_rater_dice", "given_grow_mm", "boundary_bias_mm", "error_mm",
               "true_sensitivity", "staple_sensitivity", "dice"),
    "server": ("clients", "p95_ms", "single_client_p95_ms", "errors_5xx", "lost_updates"),
    "film": ("dataset", "dice_plain", "dice_film"),
    "cascade": ("dataset", "dice_single", "dice_cascade", "seconds_single", "seconds_cascade"),
    "quantize": ("dataset", "dice_fp32", "dice_int8", "latency_ratio", "size_ratio"),
}


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_rows(rows: list[dict], keys) -> str:
    """A Markdown table of ``rows`` restricted to ``keys`` (missing values shown as —).

    Examples
    --------
    >>> print(format_rows([{"tool": "brush", "n": 3, "x": 1}], ("tool", "n")))
    | tool | n |
    |---|---|
    | brush | 3 |
    """
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def package_versions(names=_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a benchmark depends on (missing ones left out)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def bench_report(suite: str, *, args: dict[str, Any], summary: list[dict],
                 cases: list[dict], notes: list[str] | None = None) -> dict[str, Any]:
    """Assemble a benchmark result with the shared top-level keys.

    Parameters
    ----------
    suite : str
        Suite name (``latency``, ``clicks``...).
    args : dict
        The arguments the suite ran with.
    summary : list of dict
        One row per (dataset, tool/method, size), keys as in DESIGN.md.
    cases : list of dict
        Per-image / per-run details.
    notes : list of str, optional
        What the reader must know: skipped inputs and why, unavailable peers.

    Returns
    -------
    dict
        ``suite, segloop_version, versions, machine, args, summary, cases, notes``
        (the same top level for every suite; ``notes`` is an empty list when
        there is nothing to say).
    """
    return {
        "suite": suite,
        "segloop_version": __version__,
        "versions": package_versions(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "processor": platform.machine()},
        "args": args,
        "summary": summary,
        "cases": cases,
        "notes": list(notes or []),
    }
