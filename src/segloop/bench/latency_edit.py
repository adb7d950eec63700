"""Latency of the editing tools and of slice interpolation, beside what they wrap.

Editing tools (threshold, region growing, brush, polygon, islands, smooth)
are timed on the 512² slice and the 240 × 240 × 155 volume of
:func:`~segloop.bench.latency_data.latency_input`, each beside the raw call
it wraps, in the same run on the same input: ``skimage.filters.threshold_otsu``
for the suggestions, ``scipy.ndimage.label`` for region growing and islands,
``edt`` for margins, opening and closing, ``scipy.ndimage`` filters for median
and Gaussian smoothing, ``skimage.draw.polygon`` for polygons, a copy and a
masked write for the brush. Like with like: where a tool works in a region
(region growing with a radius: the box around the seed's ball; every
``smooth`` operation: the label's bounding box grown by the operation's
margin, :func:`segloop.tools.morphology.margin`), its reference runs on that
same region with the tool's settings (the Gaussian's truncation, edge modes),
and both get the same warm-up call.

Slice interpolation (issue 8 target: at most 2× the time of ITK's
``MorphologicalContourInterpolator`` and at least its Dice) is measured with
every 5th slice given, on a 128³ ellipsoid, on the benchmark's brain mask
and on real labels (BRATS whole tumour, left atrium), Dice counted on the
slices not given. ITK runs when available (see :mod:`segloop.bench.itk_mci`);
otherwise its rows are skipped with a note.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import edt
import numpy as np
from scipy import ndimage as ndi

from segloop.bench import itk_mci
from segloop.bench.latency_data import latency_input, size_name
from segloop.bench.timing import Timing, time_calls
from segloop.metrics import dice
from segloop.tools import brush, interpolate, islands, morphology, polygon, regiongrow, threshold
from segloop.tools._label_edit import bounding_box, pad_box
from segloop.tools.smooth import smooth

__all__ = ["BUDGET_S", "EVERY", "ITK_TIME_FACTOR", "MIN_REPEATS", "measure"]

#: Slice interpolation is given every EVERY-th slice.
EVERY = 5
#: Target: interpolation time <= ITK_TIME_FACTOR × ITK's on the same input.
ITK_TIME_FACTOR = 2.0
#: Seconds one measurement may take: slow calls get fewer repeats (at least MIN_REPEATS).
BUDGET_S = 1.0
MIN_REPEATS = 5
#: Region growing's radius (mm) in the benchmark.
GROW_RADIUS_MM = 20.0
#: Real label sets interpolated when the shared data are present: (folder, description).
REAL_LABELS = (("brats2013", "brats2013 whole tumour"), ("left_atrium_h5", "left atrium"))


def _time(fn, repeats: int) -> Timing:
    """Time ``fn``: the first call warms up and sizes the number of repeats to the budget."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    n = int(min(repeats, max(MIN_REPEATS, BUDGET_S / max(first, 1e-6))))
    return time_calls(fn, repeats=n, warmup=0)


def _row(tool, size, what, t: Timing, ref: Timing | None = None, reference=None, **extra):
    row = {"tool": tool, "size": size, "what": what, "median_ms": round(t.median_ms, 3),
           "p95_ms": round(t.p95_ms, 3), "reference": reference if ref else None,
           "reference_median_ms": round(ref.median_ms, 3) if ref else None,
           "ratio": round(t.median_ms / ref.median_ms, 3) if ref else None,
           "target_ms": None, "target_met": None}
    row.update(extra)
    return row


def _deepest(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(np.argmax(edt.edt(mask)), mask.shape))


def _outline(mask2d: np.ndarray) -> np.ndarray:
    from skimage.measure import approximate_polygon, find_contours

    contour = max(find_contours(mask2d.astype(np.float32), 0.5), key=len)
    return approximate_polygon(contour, tolerance=1.0)[:-1]


def _smooth_pairs(lab: np.ndarray, sp) -> list[dict]:
    """Each ``smooth`` row's tool call and its raw reference on the same region.

    Returns dicts with ``what``, ``tool`` (the call timed), ``reference``
    (name), ``raw`` (the reference call) and ``box`` (slices: the label's
    bounding box grown by the operation's margin, the region the tool edits
    and the reference runs on).
    """
    truth = lab > 0
    aniso = tuple(float(s) for s in sp)
    sigma = 1.0 / np.asarray(sp)
    median_size = 2 * np.rint(1.0 / np.asarray(sp)).astype(int) + 1
    pairs = []
    for op, size in (("grow", 2), ("shrink", 2), ("open", 2), ("close", 2), ("median", 1),
                     ("gaussian", 1)):
        box = pad_box(bounding_box(truth), morphology.margin(op, size, sp, lab.shape), lab.shape)
        inside = np.ascontiguousarray(truth[box])
        outside = np.ascontiguousarray(~inside)
        as_float = inside.astype(np.float32)
        if op == "grow":
            name, raw = "edt", lambda o=outside: edt.edt(o, anisotropy=aniso, black_border=False)
        elif op == "shrink":
            name, raw = "edt", lambda i=inside: edt.edt(i, anisotropy=aniso, black_border=False)
        elif op in ("open", "close"):
            def raw(i=inside, o=outside):
                edt.edt(i, anisotropy=aniso, black_border=False)
                return edt.edt(o, anisotropy=aniso, black_border=False)
            name = "edt x2"
        elif op == "median":
            name, raw = "scipy.ndimage.uniform_filter", lambda f=as_float: ndi.uniform_filter(
                f, size=median_size, mode="constant")
        else:
            name, raw = "scipy.ndimage.gaussian_filter", lambda f=as_float: ndi.gaussian_filter(
                f, sigma, mode="nearest", truncate=morphology.GAUSSIAN_TRUNCATE)
        pairs.append({
            "what": f"{op} {size} mm",
            "tool": lambda o=op, z=size: smooth(lab, operation=o, size_mm=z, spacing=sp),
            "reference": f"{name}, same box", "raw": raw, "box": box})
    return pairs


def _edit_rows(shape, repeats: int) -> list[dict]:
    from skimage.draw import polygon as draw_polygon
    from skimage.filters import threshold_otsu

    inp = latency_input(shape)
    img, truth, sp, size = inp.image, inp.truth > 0, inp.spacing, inp.name
    lab = truth.astype(np.uint8)
    seed = _deepest(truth)
    rows = []

    refs: dict = {}  # a raw call serving several rows is timed once

    def pair(tool, what, fn, reference, ref_fn):
        t = _time(fn, repeats)
        if ref_fn not in refs:
            refs[ref_fn] = _time(ref_fn, repeats)
        rows.append(_row(tool, size, what, t, refs[ref_fn], reference))

    s = threshold.suggest_thresholds(img)
    pair("threshold", "suggest otsu, multi-otsu, li, triangle",
         lambda: threshold.suggest_thresholds(img), "skimage threshold_otsu",
         lambda: threshold_otsu(img))
    pair("threshold", "threshold low..high",
         lambda: threshold.threshold(img, low=s["otsu"], high=s["max"]), "numpy comparisons",
         lambda: (img >= s["otsu"]) & (img <= s["max"]))

    tol = float(2 * img[truth].std())
    in_range = (img >= img[seed] - tol) & (img <= img[seed] + tol)

    def label_range():
        return ndi.label(in_range)

    pair("regiongrow", "seed, absolute tolerance",
         lambda: regiongrow.region_grow(img, seed, tolerance=tol, spacing=sp),
         "scipy.ndimage.label", label_range)
    # with a radius the tool works in the box around the seed's ball: label that same box
    reach = np.ceil(GROW_RADIUS_MM / np.asarray(sp)).astype(int)
    ball_box = pad_box(tuple(slice(i, i + 1) for i in seed), reach, shape)
    in_box = np.ascontiguousarray(in_range[ball_box])
    pair("regiongrow", f"seed, tolerance, {GROW_RADIUS_MM:g} mm radius",
         lambda: regiongrow.region_grow(img, seed, tolerance=tol, spacing=sp,
                                        max_radius_mm=GROW_RADIUS_MM),
         "scipy.ndimage.label, same box", lambda: ndi.label(in_box))

    stroke = np.array([seed] * 20, float)
    stroke[:, -1] += np.linspace(-20, 20, 20) / sp[-1]
    stroke = np.clip(stroke, 0, np.array(shape) - 1)
    painted = brush.stroke_mask(shape, stroke, radius_mm=5.0, spacing=sp)

    def raw_paint():
        out = lab.copy()
        out[painted] = 2

    pair("brush", "stroke of 20 points, radius 5 mm",
         lambda: brush.brush(lab, stroke, radius_mm=5.0, value=2, spacing=sp),
         "numpy copy + masked write", raw_paint)

    on = () if truth.ndim == 2 else (seed[0],)  # the slice a 3D polygon is drawn on
    plane = truth[on]
    verts = _outline(plane)
    where = np.column_stack([np.full(len(verts), seed[0]), verts]) if on else verts

    def raw_polygon():
        out = lab.copy()
        out[(*on, *draw_polygon(verts[:, 0], verts[:, 1], plane.shape))] = 2

    pair("polygon", f"{len(verts)} vertices" + (" on one slice" if on else ""),
         lambda: polygon.polygon(lab, where, value=2, axis=0 if on else None),
         "skimage.draw.polygon", raw_polygon)

    rng = np.random.default_rng(0)
    speckled = (truth ^ (rng.random(truth.shape) < 0.002)).astype(np.uint8)
    label_call = ("scipy.ndimage.label", lambda: ndi.label(speckled))  # timed once
    ops = [("keep largest", lambda: islands.keep_largest(speckled)),
           ("remove < 10 voxels", lambda: islands.remove_small(speckled, min_voxels=10)),
           ("keep at point", lambda: islands.keep_at_point(speckled, seed)),
           ("fill holes", lambda: islands.fill_holes(speckled))]
    if truth.ndim == 3:
        ops.append(("fill holes per slice", lambda: islands.fill_holes(speckled, axis=0)))
    for what, fn in ops:
        pair("islands", what, fn, *label_call)

    for p in _smooth_pairs(lab, sp):
        pair("smooth", p["what"], p["tool"], p["reference"], p["raw"])
    return rows


def _every(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The drawn volume (every EVERY-th slice of ``label``) and the mask of unseen slices."""
    given = np.zeros_like(label)
    given[::EVERY] = label[::EVERY]
    unseen = np.ones(label.shape[0], bool)
    unseen[::EVERY] = False
    return given, unseen


def _ellipsoid(n: int) -> np.ndarray:
    z, y, x = np.ogrid[:n, :n, :n]
    c = (n - 1) / 2
    return ((((z - c) / (0.35 * n)) ** 2 + ((y - c) / (0.27 * n)) ** 2
             + ((x - c) / (0.2 * n)) ** 2) <= 1).astype(np.uint8)


def _shared_data() -> Path:
    """The shared data folder (it may not exist), by the rule of ``tests/conftest.py``.

    ``SEGLOOP_SHARED_DATA`` when set, else ``<repo>/../shared/data``, the folder
    beside the project.
    """
    env = os.environ.get("SEGLOOP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _real_labels() -> tuple[list[tuple[str, list[np.ndarray]]], list[tuple[str, str]]]:
    """Real label sets of :data:`REAL_LABELS` in the shared data, and notes for the absent.

    Returns ``[(description, label volumes)]`` and ``[(description, note)]``.
    """
    data = _shared_data()
    found, skipped = [], []
    for name, what in REAL_LABELS:
        if not (data / name).is_dir():
            skipped.append((what, f"skipped: {data / name} not found (set SEGLOOP_SHARED_DATA "
                                  "to the shared data folder)"))
            continue
        from segloop.io import open_dataset

        cases = open_dataset(data / name).cases
        found.append((what, [(c.read_label().array > 0).astype(np.uint8) for c in cases]))
    return found, skipped


def _interpolation_inputs(quick: bool):
    """Interpolation inputs: synthetic, the benchmark's brain, real labels.

    Returns ``[(name, label volumes)]`` and ``[(name, note)]`` for the real
    label sets that are absent.
    """
    if quick:
        return [("ellipsoid", [_ellipsoid(32)])], []
    inputs = [("ellipsoid", [_ellipsoid(128)]),
              ("MNI152 brain mask", [latency_input((155, 240, 240)).truth])]
    real, skipped = _real_labels()
    return inputs + real, skipped


def _interpolation_rows(repeats: int, quick: bool) -> list[dict]:
    runner = None if quick else itk_mci.itk_runner()
    results = []  # per input: what, labels, drawn, our timing, our Dice, ITK repeats per case
    inputs, skipped = _interpolation_inputs(quick)
    for what, labels in inputs:
        drawn = [_every(lab) for lab in labels]
        times, scores = [], []
        for lab, (given, unseen) in zip(labels, drawn, strict=True):
            reps = repeats if len(labels) == 1 else min(repeats, 3)  # several cases: 3 each
            times.append(_time(lambda g=given: interpolate.interpolate_slices(g), reps))
            out = interpolate.interpolate_slices(given)
            scores.append(dice(out[unseen] > 0, lab[unseen] > 0))
        itk_reps = [times[0].n] if len(labels) == 1 else [1] * len(labels)  # ITK: ~1 s a call
        results.append((what, labels, drawn, _pool(times), float(np.mean(scores)), itk_reps))
    itk, note = None, "quick run: no ITK" if quick else (
        f"ITK peer skipped: no `import itk` here and {itk_mci.ITK_ENV} not set")
    if runner is not None:
        try:  # one ITK process for every input: its start-up takes seconds
            itk = itk_mci.run_jobs([g for r in results for g, _ in r[2]], runner=runner,
                                   repeats=[n for r in results for n in r[5]])
        except RuntimeError as exc:
            note = f"ITK peer failed: {exc}"
    rows, k = [], 0
    for what, labels, drawn, t, score, _ in results:
        size = size_name(labels[0].shape) + (f" (n={len(labels)})" if len(labels) > 1 else "")
        label = f"every {EVERY}th slice: {what}"
        extra = {"dice": round(score, 4), "n_cases": len(labels)}
        if itk is None:
            rows.append(_row("interpolate", size, label, t, **extra, note=note))
            continue
        outputs, itk_times = itk[0][k:k + len(labels)], itk[1][k:k + len(labels)]
        k += len(labels)
        ref = _pool([Timing(float(np.median(x)), float(np.percentile(x, 95)), len(x))
                     for x in itk_times])
        itk_dice = round(float(np.mean([dice(o[u] > 0, lab[u] > 0) for o, lab, (_, u)
                                        in zip(outputs, labels, drawn, strict=True)])), 4)
        target = ITK_TIME_FACTOR * ref.median_ms
        rows.append(_row("interpolate", size, label, t, ref, "itk-mci", **extra,
                         reference_dice=itk_dice, dice_target_met=extra["dice"] >= itk_dice,
                         target_ms=round(target, 3), target_met=bool(t.median_ms <= target)))
        rows.append(_row("itk-mci", size, label, ref, dice=itk_dice, n_cases=len(labels)))
    return rows + [_skipped_row(f"every {EVERY}th slice: {what}", why) for what, why in skipped]


def _skipped_row(what: str, note: str) -> dict:
    """An interpolation row that could not run, with the reason."""
    return {"tool": "interpolate", "size": None, "what": what, "median_ms": None,
            "p95_ms": None, "reference": None, "reference_median_ms": None, "ratio": None,
            "target_ms": None, "target_met": None, "note": note}


def _pool(times: list[Timing]) -> Timing:
    """One timing for several cases: medians of the per-case medians and p95s."""
    return Timing(float(np.median([t.median_ms for t in times])),
                  float(np.median([t.p95_ms for t in times])), sum(t.n for t in times))


def measure(*, repeats: int = 20, quick: bool = False) -> list[dict]:
    """Time the editing tools and slice interpolation.

    Parameters
    ----------
    repeats : int
        Timed calls per measurement at most: a measurement whose first call
        takes more than :data:`BUDGET_S` / ``repeats`` seconds gets fewer
        (never under :data:`MIN_REPEATS`); interpolation over several real
        cases times at most 3 calls per case, ITK one (both after a warm-up
        call), and reports the median over cases.
    quick : bool
        Small inputs (64², 32 × 40 × 40, a 32³ ellipsoid), no ITK and no real
        data: a smoke run of a few seconds.

    Returns
    -------
    list of dict
        Rows with ``tool, size, what, median_ms, p95_ms, reference,
        reference_median_ms, ratio, target_ms, target_met``; interpolation
        rows add ``dice`` (on the slices not given), ``n_cases`` and, beside
        ITK, ``reference_dice`` and ``dice_target_met``.
    """
    repeats = max(1, min(repeats, 3)) if quick else repeats
    shapes = [(64, 64), (32, 40, 40)] if quick else [(512, 512), (155, 240, 240)]
    rows = []
    for shape in shapes:
        rows += _edit_rows(shape, repeats)
    return rows + _interpolation_rows(repeats, quick)
