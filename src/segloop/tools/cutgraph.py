"""The grid graph shared by the cut tools (graph cut, box + clicks).

* :func:`check_image` -- the image checks of every cut tool's public entry;
* :func:`seed_mask` -- seeds given as points, strokes or a mask, rasterised;
* :func:`boundary_weights` -- contrast-sensitive, spacing-aware n-links, one
  weight array per neighbour direction;
* :func:`tlinks` -- terminal capacities from regional costs and hard seeds;
* :class:`CutGraph` -- a PyMaxflow grid graph built once with the grid API
  and re-solved after terminal capacities change, reusing its flow and
  search trees.

Examples
--------
>>> img = np.array([[0.0, 0.0, 1.0, 1.0]])
>>> weights, sigma = boundary_weights(img[..., None], spacing=(1.0, 1.0), sigma=0.5)
>>> [o for o, _ in weights]
[(0, 1), (1, 0)]
>>> np.round(weights[0][1], 3)
array([[1.   , 0.135, 1.   , 0.   ]])
"""

from __future__ import annotations

import itertools
import math
import numbers

import maxflow
import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.io.checks import check_spacing as _check_spacing
from segloop.tools.intensity_model import MODELS

__all__ = ["CutGraph", "boundary_weights", "check_image", "check_options", "check_spacing",
           "hard_capacity", "keep_seeded", "model_options", "seed_mask", "tlinks"]


def check_image(image, *, channel_axis=None, ndims=(2, 3), name="image") -> np.ndarray:
    """Return ``image`` as float32 ``(spatial..., C)`` after the public-entry checks.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A non-numeric or non-finite image, a bad ``channel_axis``, or a number
        of spatial axes not in ``ndims``.
    """
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{name} must be numeric, got dtype {arr.dtype}")
    if channel_axis is None:
        arr = arr[..., None]
    else:
        ok = isinstance(channel_axis, numbers.Integral) and -arr.ndim <= channel_axis < arr.ndim
        if not ok:
            raise InvalidArgumentError(f"channel_axis={channel_axis!r} is not an axis of {name} "
                                       f"of shape {arr.shape}")
        arr = np.moveaxis(arr, channel_axis, -1)
    spatial = arr.ndim - 1
    if spatial not in ndims:
        what = " or ".join(f"{d}D" for d in ndims)
        raise InvalidArgumentError(f"{name} must be {what} (plus channel_axis for colour), got "
                                   f"shape {np.shape(image)} with channel_axis={channel_axis}")
    if min(arr.shape[:-1]) < 2:
        raise InvalidArgumentError(f"{name} must have at least 2 voxels along every axis, got "
                                   f"shape {np.shape(image)}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InvalidArgumentError(f"{name} has {int((~np.isfinite(arr)).sum())} NaN/Inf voxels")
    return arr


def check_spacing(spacing, ndim: int) -> np.ndarray:
    """``spacing`` (None = 1) as an array of ``ndim`` positive finite floats."""
    return np.asarray(_check_spacing(spacing, ndim), dtype=np.float64)


def _strokes(seeds, ndim: int, name: str) -> list[np.ndarray]:
    """Points ``[[y, x], ...]`` (one stroke) or strokes ``[[[y, x], ...], ...]``."""
    if seeds is None:
        return []
    try:
        arr = np.asarray(seeds, dtype=np.float64)
    except (TypeError, ValueError):  # ragged: strokes of different lengths
        arr = None
    if arr is not None and arr.size == 0:
        return []
    if arr is None:
        try:
            strokes = [np.asarray(s, dtype=np.float64) for s in seeds]
        except (TypeError, ValueError):
            strokes = None
    else:
        strokes = [arr] if arr.ndim == 2 else list(arr) if arr.ndim == 3 else None
    if strokes is None or any(s.ndim != 2 or s.shape[1] != ndim or len(s) == 0 for s in strokes):
        raise InvalidArgumentError(
            f"{name} must be a stroke [[{', '.join('zyx'[-ndim:])}], ...] or a list of strokes "
            f"({ndim} coordinates per point), got {name}={seeds!r}")
    return strokes


def seed_mask(shape, seeds, *, spacing=None, radius: float = 0.0, name="seeds") -> np.ndarray:
    """Rasterise seeds: a boolean mask, a stroke or a list of strokes.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image.
    seeds : array_like
        A boolean mask of ``shape``; or a stroke ``[[y, x], ...]`` (points in
        array order joined by straight segments; one point is a click); or a
        list of strokes ``[[[y, x], ...], [[y, x], ...]]``.
    spacing : sequence of float, optional
        Voxel size, for ``radius``.
    radius : float
        Brush radius in physical units: voxels within it of a stroke are seeds.
    name : str
        Argument name for error messages.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A point outside the image or a malformed stroke (named by ``name``).

    Examples
    --------
    >>> seed_mask((3, 5), [[1, 0], [1, 4]]).astype(int)
    array([[0, 0, 0, 0, 0],
           [1, 1, 1, 1, 1],
           [0, 0, 0, 0, 0]])
    >>> int(seed_mask((9, 9), [[[4, 4]]], radius=1.0).sum())
    5
    """
    shape = tuple(shape)
    if isinstance(seeds, np.ndarray) and seeds.dtype == bool:
        if seeds.shape != shape:
            raise InvalidArgumentError(f"{name} mask has shape {seeds.shape}, the image {shape}")
        return seeds.copy()
    ndim = len(shape)
    points = []
    for stroke in _strokes(seeds, ndim, name):
        if not np.all(np.isfinite(stroke)):
            raise InvalidArgumentError(f"{name} has a non-finite point: {stroke.tolist()!r}")
        idx = np.rint(stroke).astype(np.int64)
        bad = np.any((idx < 0) | (idx >= np.asarray(shape)), axis=1)
        if bad.any():
            raise InvalidArgumentError(f"{name} point {stroke[bad][0].tolist()!r} lies outside "
                                       f"the image of shape {shape}")
        points.append(idx[:1])
        for a, b in zip(idx[:-1], idx[1:], strict=True):
            n = int(np.abs(b - a).max()) + 1
            points.append(np.rint(np.linspace(a, b, n)).astype(np.int64))
    mask = np.zeros(shape, dtype=bool)
    if not points:
        return mask
    pts = np.unique(np.concatenate(points), axis=0)
    if radius > 0:
        sp = check_spacing(spacing, ndim)
        reach = np.floor(radius / sp).astype(int)
        grid = np.stack(np.meshgrid(*(np.arange(-r, r + 1) for r in reach), indexing="ij"), -1)
        offsets = grid.reshape(-1, ndim)
        offsets = offsets[((offsets * sp) ** 2).sum(axis=1) <= radius**2 + 1e-9]
        pts = (pts[:, None, :] + offsets[None]).reshape(-1, ndim)
        pts = pts[np.all((pts >= 0) & (pts < np.asarray(shape)), axis=1)]
    mask[tuple(pts.T)] = True
    return mask


def _offsets(ndim: int, connectivity: int) -> list[tuple[int, ...]]:
    """Half of the neighbourhood: offsets whose first non-zero entry is positive."""
    out = []
    for o in itertools.product((-1, 0, 1), repeat=ndim):
        nz = [v for v in o if v]
        if nz and nz[0] > 0 and len(nz) <= connectivity:
            out.append(o)
    return sorted(out, key=lambda o: (sum(map(abs, o)), o))


def boundary_weights(pixels: np.ndarray, *, spacing, sigma=None, connectivity: int = 1):
    """Contrast-sensitive n-link weights, one full-size array per neighbour direction.

    Parameters
    ----------
    pixels : ndarray, shape (spatial..., C)
        The image as :func:`check_image` returns it.
    spacing : sequence of float
        Voxel size in array order.
    sigma : float, optional
        Intensity scale; default: root mean square of the differences between
        axis neighbours (GrabCut's choice of beta).
    connectivity : int
        1 for 4/6-neighbours, up to ndim for 8/26-neighbours.

    Returns
    -------
    weights : list of (offset, ndarray of float64)
        ``weights[k][1][v]`` is the capacity of the edge from ``v`` to
        ``v + offset`` (0 where that neighbour is outside).
    sigma : float
        The intensity scale used.
    """
    ndim = pixels.ndim - 1
    sp = np.asarray(spacing, dtype=np.float64)
    out, sums = [], []
    for off in _offsets(ndim, connectivity):
        src = tuple(slice(0, -1) if o > 0 else slice(1, None) if o < 0 else slice(None)
                    for o in off)
        dst = tuple(slice(1, None) if o > 0 else slice(0, -1) if o < 0 else slice(None)
                    for o in off)
        w = np.zeros(pixels.shape[:-1], dtype=np.float64)
        part = w[src]  # a view: squared differences are written in place
        if pixels.shape[-1] == 1:
            np.subtract(pixels[dst][..., 0], pixels[src][..., 0], out=part)
            np.square(part, out=part)
        else:
            part[...] = np.square(pixels[dst] - pixels[src]).sum(axis=-1)
        if sum(map(abs, off)) == 1:
            sums.append((float(part.sum()), part.size))
        out.append((off, w, part))
    if sigma is None:
        total, count = map(sum, zip(*sums, strict=True))
        sigma = float(np.sqrt(total / count)) if total > 0 else 1.0
    for off, _, part in out:
        dist = float(np.sqrt(((np.asarray(off) * sp) ** 2).sum()) / sp.min())
        part *= -0.5 / sigma**2
        np.exp(part, out=part)
        if dist != 1.0:
            part *= 1.0 / dist
    return [(off, w) for off, w, _ in out], float(sigma)


def tlinks(cost_fg, cost_bg, *, lam: float, hard: float, fg_seeds=None, bg_seeds=None):
    """Terminal capacities (source = foreground) from regional costs and hard seeds.

    The cut of ``source -> v`` (v labelled background) costs ``lam * cost_bg``;
    the reparametrisation keeps only the difference, on one side. Seeds get
    ``hard`` on their own side and 0 on the other.
    """
    diff = (cost_bg - cost_fg) * np.float32(lam)
    source = np.maximum(diff, 0, dtype=np.float64)
    sink = np.maximum(-diff, 0, dtype=np.float64)
    for seeds, mine, other in ((fg_seeds, source, sink), (bg_seeds, sink, source)):
        if seeds is not None and seeds.any():
            mine[seeds] = hard
            other[seeds] = 0.0
    return source, sink


def check_options(*, lam, sigma, model, connectivity, radius, ndim):
    """Public-entry checks of the options shared by the cut tools."""
    def number(value, name, allow_zero=False):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)):
            sign = ">= 0" if allow_zero else "> 0"
            raise InvalidArgumentError(f"{name} must be a finite number {sign}, got "
                                       f"{name}={value!r}")

    number(lam, "lam")
    number(radius, "radius", allow_zero=True)
    if sigma is not None:
        number(sigma, "sigma")
    if model not in MODELS:
        raise InvalidArgumentError(f"model must be one of {', '.join(MODELS)}, got model={model!r}")
    if not (isinstance(connectivity, numbers.Integral) and 1 <= connectivity <= ndim):
        raise InvalidArgumentError(f"connectivity must be an integer in 1..{ndim}, got "
                                   f"connectivity={connectivity!r}")


def model_options(kind: str, n_channels: int) -> dict:
    """Default options of an intensity model for grey or colour images."""
    if kind == "histogram":
        return {"bins": 64 if n_channels == 1 else 16, "smoothing": 1.0}
    return {"n_components": 5}


def hard_capacity(weights) -> float:
    """A t-link that no cut of n-links around one voxel can outweigh."""
    return 1.0 + 2.0 * sum(float(w.max(initial=0.0)) for _, w in weights)


def keep_seeded(cut: np.ndarray, seeds: np.ndarray, *, largest: bool = False) -> np.ndarray:
    """The connected pieces of ``cut`` that hold a seed (and the largest one if ``largest``).

    Examples
    --------
    >>> cut = np.array([[1, 0, 1, 1], [0, 0, 1, 1]], bool)
    >>> seeds = np.zeros_like(cut); seeds[0, 0] = True
    >>> keep_seeded(cut, seeds).astype(int)
    array([[1, 0, 0, 0],
           [0, 0, 0, 0]])
    >>> keep_seeded(cut, seeds, largest=True).astype(int)
    array([[1, 0, 1, 1],
           [0, 0, 1, 1]])
    """
    labels, n = ndi.label(cut, ndi.generate_binary_structure(cut.ndim, cut.ndim))
    keep = np.zeros(n + 1, dtype=bool)
    if largest and n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep[np.argmax(sizes)] = True
    keep[labels[seeds]] = True
    keep[0] = False
    return keep[labels]


class CutGraph:
    """A PyMaxflow grid graph, solved once and re-solved after t-link changes.

    Parameters
    ----------
    weights : list of (offset, ndarray)
        From :func:`boundary_weights`.
    source, sink : ndarray
        Initial terminal capacities (spatial shape).
    """

    def __init__(self, weights, source: np.ndarray, sink: np.ndarray):
        shape = source.shape
        n = int(np.prod(shape))
        self.graph = maxflow.Graph[float](n, n * len(weights))  # no regrowth while building
        self.nodes = self.graph.add_grid_nodes(shape)
        centre = (1,) * len(shape)
        for off, w in weights:
            structure = np.zeros((3,) * len(shape))
            structure[tuple(c + o for c, o in zip(centre, off, strict=True))] = 1.0
            self.graph.add_grid_edges(self.nodes, weights=w, structure=structure, symmetric=True)
        self.graph.add_grid_tedges(self.nodes, source, sink)
        self.source, self.sink = source, sink
        self.flow = self.graph.maxflow()

    def mask(self) -> np.ndarray:
        """Foreground (source side) of the current cut."""
        return ~self.graph.get_grid_segments(self.nodes)

    def update(self, source: np.ndarray, sink: np.ndarray, index=None) -> None:
        """Set new terminal capacities and re-solve from the previous flow.

        Parameters
        ----------
        source, sink : ndarray
            Full-size capacities (``index`` None: the changed nodes are found
            by comparison), or the capacities of the nodes ``index`` only.
        index : tuple of ndarray, optional
            Nodes that may have changed, as from :func:`numpy.nonzero`.

        Notes
        -----
        A change is added as non-negative increments (adding the same amount
        to both terminals of a node does not move the cut; PyMaxflow folds it
        into the residual capacity), the nodes are marked and the max-flow
        resumes with the previous search trees (Kohli & Torr 2005).
        """
        if index is None:
            index = np.nonzero((source != self.source) | (sink != self.sink))
            source, sink = source[index], sink[index]
        ds, dt = source - self.source[index], sink - self.sink[index]
        changed = (ds != 0) | (dt != 0)
        if not changed.any():
            return
        index = tuple(i[changed] for i in index)
        ds, dt = ds[changed], dt[changed]
        low = np.minimum(ds, dt)
        nodes = self.nodes[index]
        self.graph.add_grid_tedges(nodes, ds - low, dt - low)
        self.graph.mark_grid_nodes(nodes)
        self.source[index], self.sink[index] = source[changed], sink[changed]
        self.flow = self.graph.maxflow(reuse_trees=True)
