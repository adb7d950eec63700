"""Latency of livewire and geodesic paths, beside the raw solvers and OpenCV's scissors.

Anchors are 8 points evenly spaced along the outline of the ``truth`` mask of
:func:`~segloop.bench.latency_data.latency_input` (66-178 px apart on 512²).
The main measurement is a **realistic drag**: for each anchor in turn, the
anchor is placed (``add_anchor``) and the cursor then moves pixel by pixel
along the true outline to the next anchor, every call timed, tree regrowths
included (no untimed pass); the contour is closed at the end. OpenCV's
``IntelligentScissorsMB`` replays the same drag (``buildMap`` per anchor,
``getContour`` per move), interleaved with ours so machine load hits both
alike. Rows (issue 8 targets as data in ``target_ms`` / ``target_met``):

* ``livewire`` "anchor precompute, realistic drag": per anchor,
  ``add_anchor`` plus every move to the next anchor (what the anchor costs a
  user, regrowth stalls included), beside OpenCV's ``buildMap`` plus
  ``getContour`` on the same moves. **This row carries the anchor-precompute
  target** (median <= OpenCV's median), since it is what a user waits for;
* "time to first path" (``add_anchor`` + first move, beside ``buildMap`` +
  first ``getContour``) and "per mouse move, realistic drag" (target: p95
  <= 0.1 ms on 512²; ``max_ms`` is the worst single move);
* "anchor precompute, window only" (``add_anchor`` alone: the tree over the
  48-px window) and "whole-image tree" (one Dijkstra over every pixel plus
  the pointer-jumping tables), both beside ``buildMap`` for information:
  neither is what a user waits for (the window alone leaves out the
  regrowths; the drag never needs the whole image), so ``target_met`` is
  None there;
* "session setup" beside OpenCV's ``applyImage`` (which only computes
  per-pixel features: OpenCV derives link costs inside ``buildMap``);
* peers: ``opencv-scissors`` (skipped with a note when OpenCV is missing),
  ``skimage-mcp`` (``MCP_Geometric.find_costs``, whole image, on the local
  cost), ``skimage-route`` (``route_through_array`` for one segment);
* ``geodesic``: the same drag (no peer target), and the fronts beside raw
  ``skfmm.travel_time`` **on the same narrow band** (the band the tool used)
  and the same speed: window front, per segment, whole-image front, and the
  3D path (:func:`~segloop.tools.geodesic.geodesic_path_3d` between two points
  40 voxels apart in the brain).

Examples
--------
>>> rows = measure(repeats=1, quick=True)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import time

import numpy as np
from scipy.sparse.csgraph import dijkstra
from skimage.graph import MCP_Geometric, route_through_array

from segloop.bench.latency_data import latency_input
from segloop.bench.timing import Timing, time_calls
from segloop.tools.contour import mask_contour, resample_contour
from segloop.tools.fast_marching import SpeedModel, line_time, travel_time
from segloop.tools.geodesic import GeodesicSession, geodesic_path_3d
from segloop.tools.livewire import LivewireSession

__all__ = ["PER_MOVE_TARGET_MS", "measure"]

#: Target: livewire p95 per mouse move on 512², in ms.
PER_MOVE_TARGET_MS = 0.1
N_ANCHORS = 8


def _timing(samples) -> Timing:
    return Timing(float(np.median(samples)), float(np.percentile(samples, 95)), len(samples))


def _interleaved(fns, repeats: int, setups=None) -> list[Timing]:
    """Time several calls in turn (A, B, A, B...) so that machine load hits them alike."""
    setups = setups or [None] * len(fns)
    samples = [[] for _ in fns]
    for i in range(repeats + 1):  # the first round warms up
        for k, (fn, setup) in enumerate(zip(fns, setups, strict=True)):
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            if i:
                samples[k].append((time.perf_counter() - t0) * 1000.0)
    return [_timing(s) for s in samples]


def _moves(fn, points, repeats: int) -> Timing:
    """Time ``fn(p)`` for every cursor position, cycling ``repeats`` times (after a warm pass)."""
    for p in points:  # untimed pass: the caller says so in the row's "what"
        fn(p)
    samples = []
    for _ in range(repeats):
        for p in points:
            t0 = time.perf_counter()
            fn(p)
            samples.append((time.perf_counter() - t0) * 1000.0)
    return _timing(samples)


def _row(tool, size, what, t: Timing, ref: Timing | None = None, reference=None, **extra):
    row = {"tool": tool, "size": size, "what": what, "median_ms": round(t.median_ms, 4),
           "p95_ms": round(t.p95_ms, 4), "reference": reference if ref else None,
           "reference_median_ms": round(ref.median_ms, 4) if ref else None,
           "ratio": round(t.median_ms / ref.median_ms, 4) if ref else None,
           "target_ms": None, "target_met": None, "n": t.n}
    row.update(extra)
    return row


def _setup(shape):
    """Input, anchors along its truth outline, and the cursor path from anchor 0 to 1."""
    inp = latency_input(shape)
    outline = _outline(inp)
    anchors = [tuple(int(v) for v in a) for a in
               np.rint(resample_contour(outline, N_ANCHORS)).astype(int)]
    dist = np.abs(outline - np.array(anchors[1])).sum(axis=1)
    stop = int(np.argmin(dist)) + 1
    moves = [tuple(int(v) for v in p) for p in outline[:stop]]
    return inp, anchors, moves


def _outline(inp) -> np.ndarray:
    """The truth's outline as pixels, without repeating a pixel twice in a row."""
    outline = np.rint(mask_contour(inp.truth > 0)).astype(int)
    return outline[np.r_[True, np.any(np.diff(outline, axis=0) != 0, axis=1)]]


def _drag_segments(inp, anchors) -> list[list[tuple[int, int]]]:
    """Cursor positions from each anchor along the outline to the next (the last to the first)."""
    outline = _outline(inp)
    at = [int(np.argmin(np.abs(outline - np.array(a)).sum(axis=1))) for a in anchors]
    segments = []
    for k in range(len(anchors)):
        i0, i1 = at[k], at[(k + 1) % len(anchors)]
        seg = outline[i0:i1 + 1] if i1 > i0 else np.vstack([outline[i0:], outline[:i1 + 1]])
        segments.append([tuple(int(v) for v in p) for p in seg])
    return segments


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _drag_ours(session, anchors, segments):
    """One drag with a session: per anchor (add_anchor ms, [move ms]); closes at the end."""
    session.clear()
    out = []
    for anchor, seg in zip(anchors, segments, strict=True):
        t0 = time.perf_counter()
        session.add_anchor(anchor)
        add = _ms(t0)
        moves = []
        for p in seg:
            t0 = time.perf_counter()
            session.path_to(p)
            moves.append(_ms(t0))
        out.append((add, moves))
    t0 = time.perf_counter()
    session.close()
    out[-1][1].append(_ms(t0))  # closing belongs to the last anchor's segment
    return out


def _drag_opencv(scissors, anchors, segments):
    """The same drag with OpenCV: buildMap per anchor, getContour per move."""
    out = []
    for anchor, seg in zip(anchors, segments, strict=True):
        t0 = time.perf_counter()
        scissors.buildMap((anchor[1], anchor[0]))
        add = _ms(t0)
        moves = []
        for p in seg:
            t0 = time.perf_counter()
            scissors.getContour((p[1], p[0]))
            moves.append(_ms(t0))
        out.append((add, moves))
    return out


def _drag_stats(drags) -> dict[str, Timing | float]:
    """Per-anchor cost, time to first path and per-move times over repeated drags."""
    per_anchor = [add + sum(moves) for drag in drags for add, moves in drag]
    first = [add + moves[0] for drag in drags for add, moves in drag]
    moves = [m for drag in drags for _, ms in drag for m in ms]
    adds = [add for drag in drags for add, _ in drag]
    return {"anchor": _timing(per_anchor), "first": _timing(first), "move": _timing(moves),
            "add": _timing(adds), "anchor_max": float(np.max(per_anchor)),
            "move_max": float(np.max(moves))}


def _drags(session, anchors, segments, repeats: int, scissors=None):
    """Repeated drags (one untimed first), ours and OpenCV's interleaved."""
    ours, theirs = [], []
    for i in range(repeats + 1):
        d = _drag_ours(session, anchors, segments)
        c = _drag_opencv(scissors, anchors, segments) if scissors is not None else None
        if i:
            ours.append(d)
            if c is not None:
                theirs.append(c)
    return _drag_stats(ours), (_drag_stats(theirs) if theirs else None)


def _opencv():
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


def _drag_rows(tool, size, ours, cv, n_moves, window) -> list[dict]:
    ref = "OpenCV IntelligentScissorsMB, same drag"
    anchor_ref = cv["anchor"] if cv else None
    rows = [
        _row(tool, size, "anchor precompute, realistic drag: add_anchor + every mouse move to "
             "the next anchor (regrowths included), per anchor"
             + ("; the target row" if cv else ""), ours["anchor"],
             anchor_ref, ref + " (buildMap + getContour)" if cv else None, window=window,
             max_ms=round(ours["anchor_max"], 4),
             reference_max_ms=round(cv["anchor_max"], 4) if cv else None,
             target_ms=round(anchor_ref.median_ms, 4) if cv else None,
             target_met=ours["anchor"].median_ms <= anchor_ref.median_ms if cv else None),
        _row(tool, size, "time to first path: add_anchor + first mouse move (realistic drag)",
             ours["first"], cv["first"] if cv else None,
             ref + " (buildMap + first getContour)" if cv else None, window=window),
        _row(tool, size, "per mouse move, realistic drag (every move timed, regrowth stalls "
             "included)", ours["move"], cv["move"] if cv else None,
             ref + " (getContour)" if cv else None, moves=n_moves,
             max_ms=round(ours["move_max"], 4),
             reference_max_ms=round(cv["move_max"], 4) if cv else None),
    ]
    if tool == "livewire":
        rows[-1].update(target_ms=PER_MOVE_TARGET_MS,
                        target_met=ours["move"].p95_ms <= PER_MOVE_TARGET_MS)
    return rows


def _livewire_rows(shape, repeats: int) -> list[dict]:
    inp, anchors, moves = _setup(shape)
    segments = _drag_segments(inp, anchors)
    size, a0, a1 = inp.name, anchors[0], anchors[1]
    rows = []
    cv2 = _opencv()
    s = LivewireSession(inp.image, spacing=inp.spacing)
    root = int(np.ravel_multi_index(a0, s.shape))

    def raw_dijkstra():
        dijkstra(s.graph, directed=True, indices=root, return_predecessors=True)

    fns = [lambda: LivewireSession(inp.image, spacing=inp.spacing), lambda: s.add_anchor(a0),
           lambda: s._grow(a0, None), raw_dijkstra]
    setups = [None, s.clear, None, None]
    scissors = None
    if cv2 is not None:
        u8 = cv2.normalize(inp.image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        scissors = cv2.segmentation.IntelligentScissorsMB()
        fns += [lambda: scissors.applyImage(u8), lambda: scissors.buildMap((a0[1], a0[0]))]
        setups += [None, None]
    t_setup, t_window, t_full, t_raw, *t_cv = _interleaved(fns, repeats, setups)
    cv_setup, cv_build = t_cv if t_cv else (None, None)
    ours, cv = _drags(s, anchors, segments, max(2, repeats // 4), scissors)
    n_moves = sum(len(seg) for seg in segments)
    rows += _drag_rows("livewire", size, ours, cv, n_moves, s.window)
    build_ref = "OpenCV buildMap (whole image)" if cv_build else None
    rows.append(_row("livewire", size, "anchor precompute, window only: add_anchor (tree over "
                     "the 48-px window; regrowths left out, so not the target row)", t_window,
                     cv_build, build_ref, window=s.window))
    rows.append(_row("livewire", size, "whole-image tree (one Dijkstra over every pixel + "
                     "tables; the drag never needs it, so not the target row)", t_full,
                     cv_build, build_ref, raw_dijkstra_median_ms=round(t_raw.median_ms, 4)))
    rows.append(_row("livewire", size, "session setup (edge costs incl. link costs, graph)",
                     t_setup, cv_setup,
                     "OpenCV applyImage (per-pixel features only; link costs come in buildMap)"
                     if cv_setup else None))
    s.clear()
    s.add_anchor(a0)
    local = s.costs.local
    t_route = time_calls(lambda: route_through_array(local, a0, a1, geometric=True),
                         repeats=max(3, repeats // 4))
    far = [tuple(int(v) for v in p) for p in
           np.random.default_rng(0).integers(0, shape, (len(moves), 2))]
    t_move = _moves(s.path_to, far, max(repeats // 2, 5))
    lengths = [len(s.path_to(p)) for p in far]
    rows.append(_row("livewire", size, "per mouse move, cursor anywhere (after an untimed pass "
                     "that grows the tree over the image)", t_move, t_route,
                     "skimage route_through_array (one segment)", moves=len(far),
                     mean_path_pixels=round(float(np.mean(lengths)), 1),
                     max_path_pixels=int(np.max(lengths))))
    mcp = time_calls(lambda: MCP_Geometric(local).find_costs([a0]), repeats=max(3, repeats // 4))
    rows.append(_row("skimage-mcp", size, "anchor precompute (MCP_Geometric.find_costs, whole "
                     "image)", mcp))
    rows.append(_row("skimage-route", size, "per segment (route_through_array)", t_route))
    if cv2 is None:
        rows.append({**_row("opencv-scissors", size, "skipped", Timing(0.0, 0.0, 0)),
                     "note": "OpenCV (opencv-python-headless) is not installed"})
        return rows
    rows.append(_row("opencv-scissors", size, "session setup (applyImage)", cv_setup))
    rows.append(_row("opencv-scissors", size, "anchor precompute (buildMap)", cv_build))
    rows.append(_row("opencv-scissors", size, "per mouse move (getContour), realistic drag",
                     cv["move"], moves=n_moves, max_ms=round(cv["move_max"], 4)))
    return rows


def _front(speed, source, spacing, narrow):
    """Raw scikit-fmm on the same grid, speed and narrow band (None: the whole image)."""
    return lambda: travel_time(speed, [source], spacing=spacing, narrow=narrow)


def _geodesic_rows(shape, repeats: int) -> list[dict]:
    inp, anchors, _ = _setup(shape)
    segments = _drag_segments(inp, anchors)
    size, a0, a1 = inp.name, anchors[0], anchors[1]
    n = max(3, repeats // 4)
    s = GeodesicSession(inp.image, spacing=inp.spacing)
    speed, sp = s.speed(), s.spacing

    def segment():
        s.clear()
        s.add_anchor(a0)
        s.path_to(a1)

    segment()
    band = s._trees[0].reach  # the band of the front that reached a1 (None: whole image)
    t_setup, t_anchor, t_raw_window, t_full, t_raw, t_seg, t_raw_seg = _interleaved(
        [lambda: GeodesicSession(inp.image, spacing=inp.spacing), lambda: s.add_anchor(a0),
         _front(speed, a0, sp, s._window_reach()), lambda: s._grow(a0, None),
         _front(speed, a0, sp, None), segment, _front(speed, a0, sp, band)], n,
        [None, s.clear, None, None, None, None, None])
    ours, _ = _drags(s, anchors, segments, max(2, repeats // 8))
    band_name = "whole image" if band is None else f"narrow={band:.3g}"
    return [
        _row("geodesic", size, "session setup (speed map)", t_setup),
        _row("geodesic", size, "anchor precompute, window only: add_anchor (front over the "
             "48-px window)", t_anchor, t_raw_window,
             "skfmm.travel_time, same speed and narrow band", window=s.window),
        _row("geodesic", size, "whole-image front", t_full, t_raw,
             "skfmm.travel_time (whole image)"),
        _row("geodesic", size, "per segment (window front, regrowth, path)", t_seg, t_raw_seg,
             f"skfmm.travel_time, one front with the tool's final band ({band_name})"),
        *_drag_rows("geodesic", size, ours, None, sum(len(seg) for seg in segments), s.window),
    ]


def _geodesic_3d_rows(shape, repeats: int) -> list[dict]:
    inp = latency_input(shape)
    truth = inp.truth > 0
    centre = np.array(np.nonzero(truth)).mean(axis=1)
    start = tuple(int(v) for v in np.rint(centre))
    end = (start[0], start[1], min(start[2] + shape[2] // 3, shape[2] - 1))
    n = max(2, repeats // 8)
    # the speed and band geodesic_path_3d computes (its defaults: sigma 1, eps 0.05)
    model = SpeedModel(inp.image, spacing=inp.spacing, channel_axis=None, intensity_window=None,
                       sigma=1.0, metric="intensity", eps=0.05, tolerance=None, edges=False)
    speed, sp = model.speed(0.5 * (model.smooth[start] + model.smooth[end])), model.spacing
    band = line_time(speed, start, end, sp)
    t_path, t_raw = _interleaved(
        [lambda: geodesic_path_3d(inp.image, start, end, spacing=inp.spacing),
         _front(speed, start, sp, band)], n)
    return [_row("geodesic", inp.name, "3D path (speed map, front, path)", t_path, t_raw,
                 "skfmm.travel_time, same speed and narrow band")]


def measure(*, repeats: int = 20, quick: bool = False) -> list[dict]:
    """Time livewire and geodesic paths (and their peers) on 2D and 3D inputs.

    Parameters
    ----------
    repeats : int
        Timed calls per measurement (mouse moves: ``repeats / 2`` passes
        over the cursor path).
    quick : bool
        A smoke run on small inputs (96², 32³).

    Returns
    -------
    list of dict
        One row per (tool, size, what): ``median_ms``, ``p95_ms``,
        ``reference``, ``reference_median_ms``, ``ratio``, ``target_ms``,
        ``target_met``.
    """
    shape2, shape3 = ((96, 96), (32, 32, 32)) if quick else ((512, 512), (128, 128, 128))
    repeats = max(1, int(repeats))
    return (_livewire_rows(shape2, repeats) + _geodesic_rows(shape2, repeats)
            + _geodesic_3d_rows(shape3, repeats))
