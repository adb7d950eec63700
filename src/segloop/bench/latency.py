"""``segloop bench latency``: every tool timed beside the raw solver it wraps.

Each tool group has a module ``segloop.bench.latency_<group>`` with a
``measure(*, repeats, quick) -> list[dict]`` function; this suite runs them
in one process (so ratios compare like with like), collects the rows into
the common benchmark JSON and prints a table.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from segloop.bench.report import bench_report

__all__ = ["GROUPS", "format_table", "run_latency"]

#: Tool groups measured, in report order.
GROUPS = ("contours", "cuts", "edit")


def run_latency(*, repeats: int = 20, quick: bool = False, groups=GROUPS,
                log=print) -> dict[str, Any]:
    """Run the latency measurements of every group.

    Parameters
    ----------
    repeats : int
        Timed calls per measurement.
    quick : bool
        Small inputs and few repeats (a smoke run, not a benchmark).
    groups : sequence of str
        Which groups of :data:`GROUPS` to run.
    log : callable
        Progress messages.

    Returns
    -------
    dict
        The benchmark report (``suite="latency"``); ``summary`` has one row
        per (tool, size, what), ``cases`` the seconds each group took.
    """
    rows: list[dict] = []
    cases: list[dict] = []
    for group in groups:
        module = importlib.import_module(f"segloop.bench.latency_{group}")
        log(f"[latency] {group} ...")
        t0 = time.perf_counter()
        group_rows = module.measure(repeats=repeats, quick=quick)
        for row in group_rows:
            row.setdefault("group", group)
        rows += group_rows
        cases.append({"group": group, "seconds": round(time.perf_counter() - t0, 2),
                      "rows": len(group_rows)})
    return bench_report("latency", args={"repeats": repeats, "quick": quick,
                                         "groups": list(groups)}, summary=rows, cases=cases)


def _fmt(value, digits=3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table of the summary rows (what docs/benchmarks.md keeps).

    Examples
    --------
    >>> print(format_table({"summary": [{"tool": "brush", "size": "512x512", "what": "stroke",
    ...     "median_ms": 1.5, "p95_ms": 2.0, "reference": None}]}).splitlines()[2])
    | brush | 512x512 | stroke | 1.5 | 2 | — | — | — | — | — |
    """
    head = ("| tool | size | what | median ms | p95 ms | reference | reference ms | ratio "
            "| target ms | met |")
    lines = [head, "|" + "---|" * 10]
    for r in report["summary"]:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for k in (
            "tool", "size", "what", "median_ms", "p95_ms", "reference", "reference_median_ms",
            "ratio", "target_ms", "target_met")) + " |")
    return "\n".join(lines)
