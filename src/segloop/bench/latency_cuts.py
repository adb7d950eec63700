"""Latency of the cut tools (graph cut, box + clicks), beside PyMaxflow and the peers.

Rows (issue 8 targets as data in ``target_ms`` / ``target_met``, medians compared):

* ``graphcut`` "first cut" on 512², 128³ and 256² × 128: the whole tool
  (seed rasterising, intensity models, boundary weights, graph, max-flow,
  pieces connected to the seeds) beside ``pymaxflow (preallocated)``: a plain
  PyMaxflow grid graph with the *same* weight and terminal arrays (computed
  beforehand, untimed), built as the tool builds it (node and edge counts
  announced to ``maxflow.Graph``, ``add_grid_edges`` / ``add_grid_tedges``),
  solved and read out. Target: ratio <= 1.3, ``target_met`` from this like
  for like reference. ``reference_plain_ms`` / ``ratio_plain``: the same
  graph built without announcing its size (PyMaxflow's default, which
  regrows its arrays while building: slower). ``dice``: the cut against the
  input's truth.
* ``graphcut`` "correction": a new scribble in a :class:`GraphCutSession`
  (a hard constraint: the scribbled voxels' t-links change, the max-flow
  resumes; the intensity models stay those of the first cut). Target:
  <= 0.5 × the first cut. "correction, models refitted" refits the models on
  all seeds: every t-link changes. Both rows say what the speed costs:
  ``dice`` is the session's mask after its corrections, ``reference_dice`` a
  fresh :func:`graph_cut` with the same seeds (models fitted on all of them),
  both against the input's truth.
* ``skimage-randomwalker``: ``random_walker`` with the same seeds (peer,
  512²), after a warm-up call, median of 3 (about 2 s a call).
* ``boxclicks`` "box" and "per click" on 512² and 128³ (targets: 150 ms per
  click in 2D, 1.5 s for the 3D box), beside ``pymaxflow (preallocated)`` on
  a graph of the box's size (one build + solve; the box runs up to 5);
  clicks placed by the standard simulated user.
* ``opencv-grabcut``: ``cv2.grabCut`` with the same box, 5 iterations (peer,
  512²); skipped with a note when OpenCV is missing.

Seeds come from the ``truth`` mask of :func:`~segloop.bench.latency_data.latency_input`:
a stroke through the object's core and the outline of its bounding box grown by 10 voxels.

Examples
--------
>>> truth = np.zeros((5, 5), bool); truth[1:4, 1:4] = True
>>> next_click(np.zeros_like(truth), truth)   # the simulated user's first click
Click(point=(2, 2), positive=True)
"""

from __future__ import annotations

import importlib
import time
import warnings

import maxflow
import numpy as np

from segloop.bench.latency_data import latency_input, size_name
from segloop.bench.timing import Timing
from segloop.metrics import dice
from segloop.simulate import next_click, scribbles
from segloop.tools.boxclicks import DEFAULT_LAM as BOX_LAM
from segloop.tools.boxclicks import BoxClicksSession
from segloop.tools.cut_checks import check_image
from segloop.tools.cutgraph import boundary_weights, geodesic_prior, hard_capacity, tlinks
from segloop.tools.graphcut import (
    DEFAULT_BALANCE,
    DEFAULT_GEODESIC,
    DEFAULT_LAM,
    GraphCutSession,
    graph_cut,
)
from segloop.tools.intensity_model import fit_model, quantize

__all__ = ["CORRECTION_FACTOR", "GRAPHCUT_FACTOR", "measure", "next_click", "scribbles"]

#: Target: graph cut median <= GRAPHCUT_FACTOR × raw PyMaxflow build+solve of the same graph.
GRAPHCUT_FACTOR = 1.3
#: Target: a correction scribble <= CORRECTION_FACTOR × the first cut.
CORRECTION_FACTOR = 0.5
#: Targets in ms: box + clicks per click (2D 512²) and the 3D box (128³).
CLICK_TARGET_MS, BOX3D_TARGET_MS = 150.0, 1500.0


def _interleaved(fns, repeats: int, *, warmup: bool = True) -> list[Timing]:
    """Time several calls in turn (A, B, A, B...) so that machine load hits them alike."""
    for fn in fns if warmup else ():
        fn()
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000.0)
    return [Timing(float(np.median(s)), float(np.percentile(s, 95)), len(s)) for s in samples]


#: The raw solver the cut tools are compared with (built the way the tool builds its graph).
PYMAXFLOW = "pymaxflow (preallocated)"


def _row(tool, size, what, t: Timing, ref: Timing | None = None, reference=None,
         target_ms=None, **extra) -> dict:
    row = {"tool": tool, "size": size, "what": what, "median_ms": round(t.median_ms, 3),
           "p95_ms": round(t.p95_ms, 3), "samples": t.n, "reference": reference if ref else None,
           "reference_median_ms": round(ref.median_ms, 3) if ref else None,
           "ratio": float(f"{t.median_ms / ref.median_ms:.3g}") if ref else None,
           "target_ms": None if target_ms is None else round(target_ms, 3),
           "target_met": None if target_ms is None else bool(t.median_ms <= target_ms)}
    row.update(extra)
    return row


def _graph_arrays(image, fg_mask, bg_mask, spacing, lam):
    """Weights and t-links of the graph the tool builds (same code path, untimed)."""
    pixels = check_image(image)
    q = quantize(pixels, channel_axis=-1)
    opts = {"bins": 64, "smoothing": 1.0}
    diff = q.cost_difference(*(fit_model("histogram", pixels[m], lo=q.lo, hi=q.hi, **opts)
                               for m in (fg_mask, bg_mask)))
    if fg_mask.ndim == 2:  # the tool's default geodesic prior on 2D images (0 on volumes)
        diff = diff + DEFAULT_GEODESIC * geodesic_prior(pixels, fg_mask, bg_mask, spacing=spacing,
                                                        balance=DEFAULT_BALANCE)
    weights, _ = boundary_weights(pixels, spacing=spacing)
    source, sink = tlinks(diff, lam=lam, hard=hard_capacity(weights), fg_seeds=fg_mask,
                          bg_seeds=bg_mask)
    return weights, source, sink


def _raw_maxflow(weights, source, sink, *, prealloc: bool):
    """Plain PyMaxflow: grid nodes, one add_grid_edges per direction, t-links, max-flow."""
    def run():
        n = source.size
        g = maxflow.Graph[float](n, n * len(weights)) if prealloc else maxflow.Graph[float]()
        nodes = g.add_grid_nodes(source.shape)
        for off, w in weights:
            structure = np.zeros((3,) * source.ndim)
            structure[tuple(1 + o for o in off)] = 1.0
            g.add_grid_edges(nodes, weights=w, structure=structure, symmetric=True)
        g.add_grid_tedges(nodes, source, sink)
        g.maxflow()
        return g.get_grid_segments(nodes)
    return run


def _graphcut_rows(shape, repeats) -> list[dict]:
    inp = latency_input(shape)
    size = size_name(shape)
    truth = inp.truth > 0
    fg, bg = scribbles(truth)
    session = GraphCutSession(inp.image, spacing=inp.spacing)
    fg_mask, bg_mask = session.seeds(fg, "fg"), session.seeds(bg, "bg")
    arrays = _graph_arrays(inp.image, fg_mask, bg_mask, inp.spacing, DEFAULT_LAM)
    tool, pre, plain = _interleaved([
        lambda: graph_cut(inp.image, fg, bg, spacing=inp.spacing),
        _raw_maxflow(*arrays, prealloc=True), _raw_maxflow(*arrays, prealloc=False)], repeats)
    del arrays
    session.add_scribble(fg, foreground=True)
    first = session.add_scribble(bg, foreground=False)
    rows = [_row("graphcut", size, "first cut", tool, pre, PYMAXFLOW,
                 GRAPHCUT_FACTOR * pre.median_ms, reference_plain_ms=round(plain.median_ms, 3),
                 ratio_plain=round(tool.median_ms / plain.median_ms, 3),
                 dice=round(dice(first, truth), 4))]
    for refit, what in ((False, "correction"), (True, "correction, models refitted")):
        samples = []
        for _ in range(repeats):
            point, positive = next_click(session.mask, truth)
            stroke = [list(point), [*point[:-1], min(point[-1] + 6, shape[-1] - 1)]]
            t0 = time.perf_counter()
            session.add_scribble(stroke, foreground=positive, refit=refit)
            samples.append((time.perf_counter() - t0) * 1000.0)
        t = Timing(float(np.median(samples)), float(np.percentile(samples, 95)), repeats)
        fresh = graph_cut(inp.image, session.foreground, session.background,
                          spacing=inp.spacing)
        rows.append(_row("graphcut", size, what, t, tool, "graphcut first cut",
                         None if refit else CORRECTION_FACTOR * tool.median_ms,
                         dice=round(dice(session.mask, truth), 4),
                         reference_dice=round(dice(fresh, truth), 4)))
    return rows


def _randomwalker_row(shape, repeats) -> dict:
    from skimage.segmentation import random_walker

    inp = latency_input(shape)
    fg, bg = scribbles(inp.truth > 0)
    session = GraphCutSession(inp.image)
    labels = np.zeros(shape, np.int32)
    labels[session.seeds(bg, "bg")] = 2
    labels[session.seeds(fg, "fg")] = 1
    def run():
        with warnings.catch_warnings():  # its tolerance notice is not the benchmark's business
            warnings.simplefilter("ignore", UserWarning)
            random_walker(inp.image, labels, spacing=inp.spacing)

    (t,) = _interleaved([run], repeats)
    return _row("skimage-randomwalker", size_name(shape),
                f"scribbles (peer), median of {repeats} after a warm-up call", t)


def _box_rows(shape, repeats, clicks) -> list[dict]:
    inp = latency_input(shape)
    size = size_name(shape)
    truth = inp.truth > 0
    idx = np.argwhere(truth)
    box = [idx.min(axis=0).tolist(), idx.max(axis=0).tolist()]
    session = BoxClicksSession(inp.image, spacing=inp.spacing)
    inner = tuple(slice(a, b + 1) for a, b in zip(*box, strict=True))
    pixels = check_image(inp.image)
    q = quantize(pixels, channel_axis=-1)
    inside = np.zeros(shape, bool)
    inside[inner] = True
    models = [fit_model("histogram", pixels[m], lo=q.lo, hi=q.hi) for m in (inside, ~inside)]
    weights, _ = boundary_weights(pixels[inner], spacing=inp.spacing)
    source, sink = tlinks(q.cost_difference(*models)[inner], lam=BOX_LAM,
                          hard=hard_capacity(weights))
    box_t, ref = _interleaved([lambda: session.set_box(box),
                               _raw_maxflow(weights, source, sink, prealloc=True)], repeats)
    target = BOX3D_TARGET_MS if len(shape) == 3 else None
    rows = [_row("boxclicks", size, "box", box_t, ref, PYMAXFLOW, target,
                 dice=round(dice(session.set_box(box), truth), 4))]
    samples = []
    for _ in range(clicks):
        click = next_click(session.mask, truth)
        if click is None:
            break
        t0 = time.perf_counter()
        session.add_click(*click)
        samples.append((time.perf_counter() - t0) * 1000.0)
    t = Timing(float(np.median(samples)), float(np.percentile(samples, 95)), len(samples))
    target = CLICK_TARGET_MS if len(shape) == 2 else None
    rows.append(_row("boxclicks", size, "per click", t, ref, PYMAXFLOW, target,
                     dice=round(dice(session.mask, truth), 4)))
    return rows


def _grabcut_row(shape, repeats) -> dict:
    try:
        cv2 = importlib.import_module("cv2")
    except ImportError:
        return {"tool": "opencv-grabcut", "size": size_name(shape), "what": "box, 5 iterations",
                "median_ms": None, "p95_ms": None, "reference": None,
                "reference_median_ms": None, "ratio": None, "target_ms": None,
                "target_met": None, "note": "skipped: OpenCV (opencv-python-headless) missing"}
    inp = latency_input(shape)
    img = inp.image
    u8 = np.round(255 * (img - img.min()) / max(float(np.ptp(img)), 1e-12)).astype(np.uint8)
    rgb = np.ascontiguousarray(np.dstack([u8] * 3))
    idx = np.argwhere(inp.truth > 0)
    (y0, x0), (y1, x1) = idx.min(axis=0), idx.max(axis=0)
    rect = (int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1))

    def run():
        mask = np.zeros(shape, np.uint8)
        cv2.grabCut(rgb, mask, rect, np.zeros((1, 65)), np.zeros((1, 65)), 5,
                    cv2.GC_INIT_WITH_RECT)

    (t,) = _interleaved([run], repeats)
    return _row("opencv-grabcut", size_name(shape), "box, 5 iterations (peer)", t)


def measure(*, repeats: int = 20, quick: bool = False) -> list[dict]:
    """Time graph cut and box + clicks beside PyMaxflow and the peers.

    Parameters
    ----------
    repeats : int
        Timed calls per 2D measurement (3D ones take fewer: at least 3).
    quick : bool
        Small inputs and two repeats: a smoke run (row keys only).

    Returns
    -------
    list of dict
        One row per (tool, size, what); see the module docstring.
    """
    if quick:
        shapes2d, shapes3d, repeats, r3 = [(64, 64)], [(24, 32, 32)], 2, 2
        box3d = (24, 32, 32)
    else:
        shapes2d, shapes3d = [(512, 512)], [(128, 128, 128), (128, 256, 256)]
        r3, box3d = max(3, repeats // 4), (128, 128, 128)
    rows = []
    for shape in shapes2d:
        rows += _graphcut_rows(shape, repeats)
        rows.append(_randomwalker_row(shape, 3))  # ~2 s a call at 512²
        rows += _box_rows(shape, repeats, clicks=repeats)
        rows.append(_grabcut_row(shape, repeats))
    for shape in shapes3d:
        rows += _graphcut_rows(shape, r3 if shape != shapes3d[0] else max(r3, repeats // 2))
    rows += _box_rows(box3d, r3, clicks=max(r3, 5))
    return rows
