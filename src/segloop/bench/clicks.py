"""``segloop bench clicks``: interactions each tool needs to reach Dice 0.85 / 0.90 on real images.

For every object of every dataset (:func:`segloop.bench.clicks_data.click_cases`)
and every tool, a driver plays the tool with the simulated annotator
(:mod:`segloop.simulate`) until Dice reaches the largest target or the cap;
the peers (:mod:`segloop.bench.peers`) are played by the same annotator. 2D
tools run on 2D objects; tools whose driver also takes volumes (box + clicks,
graph cut) run on the 3D objects too, reported as dataset ``NAME-3d``.

Summary rows, one per (dataset, tool), with the keys of DESIGN.md
("Benchmarks") for the default targets 0.85 and 0.9 (``noc85``...; other
targets name their keys the same way, ``noc80``):

* ``n``: objects played; ``noc85`` / ``noc90``: mean interactions to reach
  the target (a failure counts as the cap); ``failures90``: objects that
  never reached it (``failure_rate90`` = ÷ ``n``);
* ``dice_at_1`` / ``_3`` / ``_5`` / ``_10``: mean Dice after that many
  interactions (a session that stopped earlier keeps its last Dice);
* ``polygon_vertices90``: mean over the same objects of the fewest polygon
  vertices (Douglas–Peucker on the true contour, no cap) reaching 0.9
  (objects it never reaches are left out and counted in
  ``polygon_unreached90``); ``ratio_vs_polygon90`` = that ÷ ``noc90``;
* extras: ``dims``, ``seconds`` (time in the tool), ``seconds_per_interaction``,
  ``errors`` (sessions in which the tool raised), ``skipped`` (the dataset's
  skip counts by reason), ``dataset_seconds`` (reading the dataset plus every
  session on its objects, summed over workers).

``cases`` holds one row per (object, tool): the ids, the object's size, its
trace (:meth:`segloop.simulate.protocol.Trace.as_dict`), its NoC and the
polygon baseline's vertex counts. ``notes`` say per dataset how many objects
were played (of how many found), its time and what was skipped and why, and
which peers could not run.

Objects can be played by several worker processes (``workers``): each
object's sessions stay in one process, one after the other, and the report
does not depend on the number of workers (only its times do).

Each object's session gets a fresh generator seeded from ``seed`` and the
object's key, the same for every tool, so a jittered annotator gives every
tool the same box.

Examples
--------
>>> sorted(check_tools(["boxclicks", "opencv-grabcut"]))
['boxclicks', 'opencv-grabcut']
"""

from __future__ import annotations

import functools
import multiprocessing
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from segloop.bench.clicks_data import ClickCase, check_dims, click_cases
from segloop.bench.peers import PEERS, get_peer
from segloop.bench.plots import write_plot
from segloop.bench.report import bench_report
from segloop.errors import InvalidArgumentError
from segloop.simulate import DRIVERS, get_driver
from segloop.simulate.polygon_baseline import polygon_vertices
from segloop.simulate.protocol import Trace, dice_at, noc

__all__ = ["TOOLS", "check_tools", "run_clicks", "summarise", "write_plot"]

#: Every tool of the suite, in report order: segloop's drivers, the polygon baseline, the peers.
TOOLS = (*(t for t in DRIVERS if t != "polygon"), "polygon", *PEERS)
_DICE_AT = (1, 3, 5, 10)


def check_tools(tools) -> tuple[str, ...]:
    """``tools`` as known names in report order (None: all of them)."""
    if tools is None:
        return TOOLS
    names = [tools] if isinstance(tools, str) else list(tools)
    unknown = [t for t in names if t not in TOOLS]
    if unknown or not names:
        raise InvalidArgumentError(f"unknown tool {unknown[0] if unknown else None!r}; "
                                   f"known: {', '.join(TOOLS)}")
    return tuple(t for t in TOOLS if t in names)


def _targets(targets) -> tuple[float, ...]:
    try:
        out = tuple(sorted({float(t) for t in targets}))
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"targets must be numbers in (0, 1], got {targets!r}") from None
    bad = [t for t in out if not 0.0 < t <= 1.0]
    if bad or not out:
        raise InvalidArgumentError(f"targets must be in (0, 1], got targets={targets!r}")
    return out


def _pct(target: float) -> str:
    return f"{100 * target:g}"


def _rng(seed: int, dataset: str, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{dataset}/{key}".encode())])


def _driver(tool: str):
    """``(driver, None)`` for ``tool``, or ``(None, note)`` saying why it cannot run."""
    if tool in PEERS:
        return get_peer(tool)
    return get_driver(tool), None


def _ndims(tool: str) -> tuple[int, ...]:
    cls = PEERS.get(tool) or type(DRIVERS[tool])
    return cls.ndims


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def summarise(dataset: str, tool: str, rows: list[dict], *, targets, max_interactions: int,
              dims: int, extra: dict | None = None) -> dict:
    """One summary row from the ``cases`` rows of one (dataset, tool); see the module docstring.

    Examples
    --------
    >>> rows = [{"dice": [0.8, 0.95], "seconds": 0.2, "note": None,
    ...          "polygon_vertices": {"90": 8}}]
    >>> r = summarise("d", "t", rows, targets=(0.9,), max_interactions=20, dims=2)
    >>> r["noc90"], r["failures90"], r["dice_at_3"], r["ratio_vs_polygon90"]
    (2.0, 0, 0.95, 4.0)
    """
    row: dict = {"dataset": dataset, "tool": tool, "n": len(rows)}
    for t in targets:
        p = _pct(t)
        nocs = [noc(r["dice"], t, max_interactions) for r in rows]
        fails = sum(not any(d >= t for d in r["dice"][:max_interactions]) for r in rows)
        row[f"noc{p}"] = _mean(nocs)
        row[f"failures{p}"] = fails if rows else None
        row[f"failure_rate{p}"] = round(fails / len(rows), 4) if rows else None
    for k in _DICE_AT:
        row[f"dice_at_{k}"] = _mean([dice_at(r["dice"], k) for r in rows])
    for t in targets:
        p = _pct(t)
        verts = [r.get("polygon_vertices", {}).get(p) for r in rows]
        row[f"polygon_vertices{p}"] = _mean(verts)
        row[f"polygon_unreached{p}"] = sum(v is None for v in verts) if dims == 2 else None
        mean_noc = row[f"noc{p}"]
        base = row[f"polygon_vertices{p}"]
        row[f"ratio_vs_polygon{p}"] = (round(base / mean_noc, 3)
                                       if base is not None and mean_noc else None)
    steps = sum(len(r["dice"]) for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    row.update(dims=dims, seconds=round(seconds, 3),
               seconds_per_interaction=round(seconds / steps, 4) if steps else None,
               errors=sum("Error" in (r["note"] or "") for r in rows))
    row.update(extra or {})
    return row


def _play(case: ClickCase, tools, *, targets, max_interactions, seed) -> tuple[list[dict], float]:
    """Every tool on one object: one ``cases`` row per tool, and the wall time it took."""
    t0 = time.perf_counter()
    base = {"dataset": case.dataset + ("-3d" if case.ndim == 3 else ""), "case": case.case_id,
            "object": case.object_id, "dims": case.ndim, "size": int(case.truth.sum())}
    polygon = {}
    if case.ndim == 2:
        polygon = {_pct(t): polygon_vertices(case.truth, t, spacing=case.spacing)
                   for t in targets}
    rows = []
    for tool in tools:
        driver, _ = _driver(tool)
        if driver is None or case.ndim not in driver.ndims:
            continue
        trace: Trace = driver(case.image, case.truth, spacing=case.spacing,
                              max_interactions=max_interactions, stop_at=max(targets),
                              rng=_rng(seed, case.dataset, case.key))
        row = {**base, **trace.as_dict(), "polygon_vertices": polygon}
        row["seconds"] = trace.seconds
        for t in targets:
            row[f"noc{_pct(t)}"] = noc(trace.dice, t, max_interactions)
        rows.append(row)
    return rows, time.perf_counter() - t0


def _play_all(cases: list[ClickCase], play, workers: int, done) -> list:
    """``play(case)`` for every case, in ``workers`` processes; ``done(i, result)`` as each ends.

    With several workers the largest objects go first (a long 3D session does
    not end the run alone); workers are forked where the platform allows it
    (no re-import of the caller's script).
    """
    results: list = [None] * len(cases)
    if workers == 1:
        for i, case in enumerate(cases):
            results[i] = play(case)
            done(i, results[i])
        return results
    order = sorted(range(len(cases)), key=lambda i: -cases[i].truth.size * cases[i].ndim)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(play, cases[i]): i for i in order}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            done(i, results[i])
    return results


def run_clicks(data: Sequence, *, tools=None, targets=(0.85, 0.9), max_interactions: int = 20,
               limit: int | None = None, dims=(2,), seed: int = 0,
               log: Callable[[str], object] | None = print, workers: int = 1) -> dict:
    """Run the clicks benchmark on dataset folders; return the report.

    Parameters
    ----------
    data : sequence of path
        Dataset folders (any layout :func:`segloop.io.open_dataset` knows).
    tools : sequence of str, optional
        Tools and peers to play (default: all, see :data:`TOOLS`).
    targets : sequence of float
        Dice targets in (0, 1]; sessions stop at the largest.
    max_interactions : int
        The cap (>= 1); a failure counts as the cap.
    limit : int, optional
        At most this many objects per dataset and dimension.
    dims : sequence of int
        2 and/or 3: objects on images/slices and/or in volumes.
    seed : int
        Seed of the annotator's generators.
    log : callable, optional
        Progress lines (None: quiet).
    workers : int
        Processes playing objects side by side (each object's tools run in
        one process, so per-tool times stay comparable); the results do not
        depend on it.

    Returns
    -------
    dict
        The common benchmark report (:func:`segloop.bench.report.bench_report`).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        An unknown tool, a target outside (0, 1], a cap below 1, bad dims,
        limit or workers.
    segloop.errors.DatasetError
        A folder without masks.
    """
    names = check_tools(tools)
    targets = _targets(targets)
    for value, name in ((max_interactions, "max_interactions"), (workers, "workers")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InvalidArgumentError(f"{name} must be an integer >= 1, got {name}={value!r}")
    dims = check_dims(dims)
    paths = [data] if isinstance(data, str | Path) else list(data)
    if not paths:
        raise InvalidArgumentError("data must name at least one dataset folder")
    say = log or (lambda _: None)
    notes = {tool: _driver(tool)[1] for tool in names}
    for tool, note in notes.items():
        if note:
            say(f"{tool}: skipped ({note})")
    t_start = time.perf_counter()
    loaded, load_s = [], []
    for path in paths:
        t0 = time.perf_counter()
        loaded.append(click_cases(path, dims=dims, limit=limit))
        load_s.append(time.perf_counter() - t0)
    owner = [k for k, found in enumerate(loaded) for _ in found.cases]
    left = [len(found.cases) for found in loaded]
    spent = list(load_s)

    def done(i, result):
        k = owner[i]
        left[k] -= 1
        spent[k] += result[1]
        if not left[k]:
            say(f"{loaded[k].dataset}: {len(loaded[k].cases)} objects (of "
                f"{sum(loaded[k].found.values())}), {spent[k]:.1f} s")

    play = functools.partial(_play, tools=names, targets=targets,
                             max_interactions=int(max_interactions), seed=seed)
    results = _play_all([c for found in loaded for c in found.cases], play, int(workers), done)
    summary, cases = [], []
    for k, found in enumerate(loaded):
        rows = [r for i, (rs, _) in enumerate(results) if owner[i] == k for r in rs]
        # rows for each dimension with objects (a dataset without any: n = 0 rows, its skips)
        for d in [d for d in dims if found.found.get(d)] or [dims[0]]:
            name = found.dataset + ("-3d" if d == 3 else "")
            for tool in names:
                if d not in _ndims(tool):
                    continue
                extra = {"skipped": found.skipped, "dataset_seconds": round(spent[k], 1)}
                if notes[tool]:
                    extra["note"] = notes[tool]
                mine = [r for r in rows if r["dataset"] == name and r["tool"] == tool]
                summary.append(summarise(name, tool, mine, targets=targets,
                                         max_interactions=int(max_interactions), dims=d,
                                         extra=extra))
        cases += rows
    say(f"clicks: {len(cases)} sessions in {time.perf_counter() - t_start:.1f} s wall "
        f"({workers} worker{'s' if workers > 1 else ''})")
    notes = [f"{tool}: skipped ({note})" for tool, note in notes.items() if note]
    for k, found in enumerate(loaded):
        notes.append(f"{found.dataset} ({found.layout}): {len(found.cases)} objects played of "
                     f"{' + '.join(f'{n} {d}D' for d, n in found.found.items())} found, "
                     f"{spent[k]:.1f} s")
        notes += [f"{found.dataset}: skipped {n} ({reason})"
                  for reason, n in found.skipped.items()]
    args = {"data": [str(p) for p in paths], "tools": list(names), "targets": list(targets),
            "max_interactions": int(max_interactions), "limit": limit, "dims": list(dims),
            "seed": seed, "workers": int(workers)}
    return bench_report("clicks", args=args, summary=summary, cases=cases, notes=notes)
