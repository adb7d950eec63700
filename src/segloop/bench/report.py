"""The common top level of every benchmark JSON (DESIGN.md, "Benchmarks").

Examples
--------
>>> r = bench_report("latency", args={"repeats": 5}, summary=[], cases=[])
>>> sorted(r)
['args', 'cases', 'machine', 'segloop_version', 'suite', 'summary', 'versions']
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

from segloop import __version__

__all__ = ["bench_report", "package_versions"]

_PACKAGES = ("numpy", "scipy", "scikit-image", "SimpleITK", "PyMaxflow", "scikit-fmm", "edt",
             "opencv-python-headless", "torch", "monai", "itk-morphologicalcontourinterpolation")


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
                 cases: list[dict]) -> dict[str, Any]:
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

    Returns
    -------
    dict
        ``suite, segloop_version, versions, machine, args, summary, cases``.
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
    }
