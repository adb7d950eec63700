"""Timing helpers: medians and 95th percentiles of repeated calls.

Examples
--------
>>> t = time_calls(lambda: sum(range(100)), repeats=20)
>>> t.median_ms >= 0 and t.p95_ms >= t.median_ms
True
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Timing", "time_calls"]


@dataclass(frozen=True)
class Timing:
    """Wall-clock statistics of one measured call, in milliseconds."""

    median_ms: float
    p95_ms: float
    n: int

    def as_dict(self) -> dict[str, float]:
        """``{"median_ms", "p95_ms", "n"}``, rounded for reports."""
        return {"median_ms": round(self.median_ms, 4), "p95_ms": round(self.p95_ms, 4),
                "n": self.n}


def time_calls(fn: Callable[[], object], *, repeats: int = 20, warmup: int = 1,
               setup: Callable[[], object] | None = None) -> Timing:
    """Time ``fn()`` ``repeats`` times (after ``warmup`` untimed calls).

    Parameters
    ----------
    fn : callable
        The call to time (no arguments).
    repeats : int
        Timed calls.
    warmup : int
        Untimed calls first (caches, lazy imports).
    setup : callable, optional
        Called before each call, untimed (e.g. to reset a session).

    Returns
    -------
    Timing
        Median and 95th percentile (linear interpolation) in ms.
    """
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one sample is noise, not the tool's cost
    try:
        for _ in range(repeats):
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1000.0)
    finally:
        if gc_was_enabled:
            gc.enable()
    arr = np.asarray(samples)
    return Timing(float(np.median(arr)), float(np.percentile(arr, 95)), len(samples))
