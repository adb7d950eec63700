"""The grid graph shared by the cut tools (graph cut, box + clicks).

* :func:`boundary_weights` -- contrast-sensitive, spacing-aware n-links, one
  float32 weight array per neighbour direction;
* :func:`box_links` -- the n-links of a box whose outside is fixed background;
* :func:`tlinks` -- terminal capacities from regional costs and hard seeds;
* :func:`geodesic_prior` -- a regional term from the geodesic distances to the
  seeds of each class (where between the strokes the boundary is expected);
* :class:`CutGraph` -- a PyMaxflow grid graph built once with the grid API
  and re-solved after terminal capacities change, reusing its flow and
  search trees.

The argument checks live in :mod:`segloop.tools.cut_checks`.

Examples
--------
>>> img = np.array([[0.0, 0.0, 1.0, 1.0]])
>>> weights, sigma = boundary_weights(img[..., None], spacing=(1.0, 1.0), sigma=0.5)
>>> [o for o, _ in weights]
[(0, 1), (1, 0)]
>>> np.round(weights[0][1], 3)
array([[1.   , 0.135, 1.   , 0.   ]], dtype=float32)
"""

from __future__ import annotations

import itertools
import math

import maxflow
import numpy as np
from scipy import ndimage as ndi

from segloop.tools.cut_checks import check_int
from segloop.tools.fast_marching import travel_time

__all__ = ["PRIOR_CELLS", "CutGraph", "GeodesicPrior", "boundary_weights", "box_links",
           "geodesic_prior", "hard_capacity", "keep_seeded", "model_options", "tlinks"]

#: The geodesic prior is computed on a grid of at most this many cells (blocks of voxels,
#: as cubic as the spacing allows): a few ms of fast marching, and the prior is smooth.
PRIOR_CELLS = 2**16
_PRIOR_EPS = 0.1  # speed 1 / (eps + gradient / its RMS): edges slow the front ~10x


def _offsets(ndim: int, connectivity: int) -> list[tuple[int, ...]]:
    """Half of the neighbourhood: offsets whose first non-zero entry is positive."""
    out = []
    for o in itertools.product((-1, 0, 1), repeat=ndim):
        nz = [v for v in o if v]
        if nz and nz[0] > 0 and len(nz) <= connectivity:
            out.append(o)
    return sorted(out, key=lambda o: (sum(map(abs, o)), o))


def _halves(off):
    """Index of the edges' first and second ends for neighbour offset ``off``."""
    src = tuple(slice(0, -1) if o > 0 else slice(1, None) if o < 0 else slice(None) for o in off)
    dst = tuple(slice(1, None) if o > 0 else slice(0, -1) if o < 0 else slice(None) for o in off)
    return src, dst


def boundary_weights(pixels: np.ndarray, *, spacing, sigma=None, connectivity: int = 1):
    """Contrast-sensitive n-link weights, one full-size array per neighbour direction.

    Parameters
    ----------
    pixels : ndarray, shape (spatial..., C)
        The image as :func:`~segloop.tools.cut_checks.check_image` returns it.
    spacing : sequence of float
        Voxel size in array order.
    sigma : float, optional
        Intensity scale; default: root mean square of the differences between
        axis neighbours (GrabCut's choice of beta). Any positive value works:
        a tiny one cuts every intensity step for free (weight 0 where
        neighbours differ, 1 where equal), a huge one ignores contrast.
    connectivity : int
        1 for 4/6-neighbours, up to ndim for 8/26-neighbours.

    Returns
    -------
    weights : list of (offset, ndarray of float32)
        ``weights[k][1][v]`` is the capacity of the edge from ``v`` to
        ``v + offset`` (0 where that neighbour is outside). float32 halves
        the memory written; PyMaxflow converts while it builds, at no cost.
    sigma : float
        The intensity scale used.
    """
    ndim = pixels.ndim - 1
    sp = np.asarray(spacing, dtype=np.float64)
    out, sums = [], []
    for off in _offsets(ndim, connectivity):
        src, dst = _halves(off)
        w = np.zeros(pixels.shape[:-1], dtype=np.float32)
        part = w[src]  # a view: squared differences are written in place
        with np.errstate(over="ignore"):
            if pixels.shape[-1] == 1:
                np.subtract(pixels[dst][..., 0], pixels[src][..., 0], out=part)
                np.square(part, out=part)
            else:
                part[...] = np.square(pixels[dst] - pixels[src]).sum(axis=-1)
        if sum(map(abs, off)) == 1:
            sums.append((float(part.sum(dtype=np.float64)), part.size))
        out.append((off, w, part))
    if sigma is None:
        total, count = map(sum, zip(*sums, strict=True))
        sigma = float(np.sqrt(total / count)) if 0 < total < np.inf else 1.0
    scale = 0.5 / sigma / sigma  # not sigma**2: that underflows (or overflows) first
    for off, _, part in out:
        dist = math.hypot(*(np.asarray(off) * (sp / sp.min())))  # no overflow for any spacing
        if scale > 1e30:  # exp(-d^2 * scale): 0 for any step, 1 for none
            part[...] = part == 0
        elif scale > 0:
            with np.errstate(over="ignore"):
                part *= np.float32(-scale)
            np.exp(part, out=part)
        else:
            part[...] = 1.0
        if dist != 1.0:
            part *= np.float32(1.0 / dist)
    return [(off, w) for off, w, _ in out], float(sigma)


def box_links(pixels: np.ndarray, lo, hi, *, spacing, sigma=None, connectivity: int = 1):
    """The n-links inside the box ``lo:hi`` and the capacities of its edges to the outside.

    The outside of the box is fixed background, so an edge from a box voxel
    to a neighbour outside becomes a sink capacity of that voxel.

    Returns
    -------
    weights : list of (offset, ndarray)
        :func:`boundary_weights` of the box (intensity differences across its
        border count only in ``out_sink``).
    out_sink : ndarray
        Per box voxel, the summed weights of its edges to the outside.
    hard : float
        :func:`hard_capacity` of the weights.
    sigma : float
        The intensity scale used (default: from the box and a voxel around it).
    """
    shape = pixels.shape[:-1]
    elo, ehi = np.maximum(np.asarray(lo) - 1, 0), np.minimum(np.asarray(hi) + 1, shape)
    ext = pixels[tuple(slice(a, b) for a, b in zip(elo, ehi, strict=True))]
    weights, sigma = boundary_weights(ext, spacing=spacing, sigma=sigma,
                                      connectivity=connectivity)
    inner = tuple(slice(a - e, b - e) for a, b, e in zip(lo, hi, elo, strict=True))
    inside = np.zeros(ext.shape[:-1], dtype=bool)
    inside[inner] = True
    out = np.zeros(ext.shape[:-1], dtype=np.float32)
    for off, w in weights:
        src, dst = _halves(off)
        a, b, ws = inside[src], inside[dst], w[src]
        out[src] += np.where(a & ~b, ws, np.float32(0))
        out[dst] += np.where(~a & b, ws, np.float32(0))
    return [(off, w[inner]) for off, w in weights], out[inner], hard_capacity(weights), sigma


def tlinks(diff, *, lam: float, hard: float, fg_seeds=None, bg_seeds=None):
    """Terminal capacities (source = foreground) from regional costs and hard seeds.

    ``diff`` is, per voxel, the regional cost of the background label minus
    that of the foreground label (nats; :meth:`Quantized.cost_difference
    <segloop.tools.intensity_model.Quantized.cost_difference>`). The cut of
    ``source -> v`` (v labelled background) costs ``lam * cost_bg``; the
    reparametrisation keeps only the difference, on one side. Seeds get
    ``hard`` on their own side and 0 on the other. Capacities are float32
    (PyMaxflow converts while it adds them).
    """
    diff = np.multiply(diff, np.float32(lam), dtype=np.float32)
    source = np.maximum(diff, np.float32(0))
    sink = np.minimum(diff, np.float32(0), out=diff)
    np.negative(sink, out=sink)
    for seeds, mine, other in ((fg_seeds, source, sink), (bg_seeds, sink, source)):
        if seeds is not None:
            idx = np.flatnonzero(seeds)  # seeds are few: faster than a boolean mask
            mine.flat[idx] = hard
            other.flat[idx] = 0.0
    return source, sink


def _block_factors(shape, spacing, cells: int) -> np.ndarray:
    """Voxels per block along each axis so that the grid of blocks has at most ``cells``."""
    shape, sp = np.asarray(shape), np.asarray(spacing, dtype=np.float64)
    size, f = sp.min(), np.ones(len(shape), dtype=np.int64)
    while np.prod(-(-shape // f)) > cells:
        size *= 1.25
        f = np.maximum(1, np.floor(size / sp + 1e-9)).astype(np.int64)
    return f


def _blocks(arr: np.ndarray, f, reduce) -> np.ndarray:
    """``reduce`` (``np.mean``, ``np.any``) over blocks of ``f`` voxels; edges repeated."""
    nd = len(f)
    pad = [(0, int(-n % k)) for n, k in zip(arr.shape[:nd], f, strict=True)]
    arr = np.pad(arr, pad + [(0, 0)] * (arr.ndim - nd), mode="edge")
    split = [v for n, k in zip(arr.shape[:nd], f, strict=True) for v in (n // k, int(k))]
    return reduce(arr.reshape(split + list(arr.shape[nd:])), axis=tuple(range(1, 2 * nd, 2)))


class GeodesicPrior:
    """The geodesic prior of one image: its grid of blocks and speed, then a prior per seeding.

    The image's part of :func:`geodesic_prior` (the speed map on the grid of
    blocks), computed once, so that a session refitting its models after a
    correction only runs the fronts again.

    Parameters
    ----------
    pixels : ndarray, shape (spatial..., C)
        The image as :func:`~segloop.tools.cut_checks.check_image` returns it.
    spacing : sequence of float
        Voxel size in array order.
    cells : int
        At most this many blocks (see :func:`geodesic_prior`).
    """

    def __init__(self, pixels: np.ndarray, *, spacing, cells: int = PRIOR_CELLS):
        self.shape = pixels.shape[:-1]
        sp = np.asarray(spacing, dtype=np.float64)
        self.factors = _block_factors(self.shape, sp, check_int(cells, "cells", 1))
        self._whole = bool(np.all(self.factors == 1))
        coarse = pixels if self._whole else _blocks(pixels, self.factors, np.mean)
        self.spacing = sp * self.factors
        grad2 = np.zeros(coarse.shape[:-1])
        for c in range(coarse.shape[-1]):
            channel = ndi.gaussian_filter(coarse[..., c].astype(np.float64),
                                          self.spacing.min() / self.spacing)
            for axis in np.flatnonzero(np.asarray(channel.shape) > 1):  # a grid may be flat
                grad2 += np.square(np.gradient(channel, axis=axis) / self.spacing[axis])
        rms = float(np.sqrt(grad2.mean()))
        self.speed = 1.0 / (_PRIOR_EPS + np.sqrt(grad2) / (rms if rms > 0 else 1.0))

    def __call__(self, foreground, background, *, balance: float = 0.7) -> np.ndarray:
        """The prior ``2 (balance - r)`` of these seeds (see :func:`geodesic_prior`)."""
        seeds = [np.asarray(s, dtype=bool) for s in (foreground, background)]
        if not self._whole:
            seeds = [_blocks(s, self.factors, np.any) for s in seeds]
        cross = ndi.generate_binary_structure(len(self.shape), 1)  # walls without diagonal gaps
        near_f, near_b = (ndi.binary_dilation(s, cross) for s in seeds)
        df = travel_time(self.speed, seeds[0], spacing=self.spacing,
                         obstacles=near_b & ~near_f)
        reach_f = np.isfinite(df)
        # the background front only needs to go where the foreground front went: beyond
        # that r = 1 whatever its distance
        db = travel_time(self.speed, seeds[1], spacing=self.spacing,
                         obstacles=(near_f & ~near_b) | ~(reach_f | near_b))
        reach_b = np.isfinite(db)
        np.maximum(df, 0.0, out=df)
        np.maximum(db, 0.0, out=db)
        ratio = np.ones(df.shape)  # beyond the background walls
        both = reach_f & reach_b
        total = df[both] + db[both]
        ratio[both] = np.divide(df[both], total, out=np.full(total.shape, float(balance)),
                                where=total > 0)
        ratio[reach_f & ~reach_b] = 0.0  # within the foreground walls
        if not self._whole:
            ratio = ndi.zoom(ratio, self.factors, order=1, mode="reflect", grid_mode=True)
            ratio = ratio[tuple(slice(0, n) for n in self.shape)]
        return (2.0 * (balance - ratio)).astype(np.float32)


def geodesic_prior(pixels: np.ndarray, foreground, background, *, spacing,
                   balance: float = 0.7, cells: int = PRIOR_CELLS) -> np.ndarray:
    """Regional costs from where a voxel lies between the seeds of the two classes.

    Price, Morse & Cohen (2010) add to the graph cut's regional term the
    geodesic distances ``D_F``, ``D_B`` of each voxel to the foreground and
    background seeds, so that where intensities do not tell the classes apart
    the boundary lies between the strokes, and is pulled there by a
    correction stroke (in place of the shortest boundary, which hugs the
    foreground stroke). The metric is the image's: the front slows down ~10x
    on edges (speed ``1 / (0.1 + |grad I| / RMS |grad I|)``), so that a voxel
    behind an edge is far from a stroke on the other side. The seeds of each
    class (grown by a voxel, except next to the front's own seeds) are walls
    for the other class's front: what a background loop encloses is reached
    from the foreground seeds inside it only (``r`` is 1 beyond it), and the
    inside of a foreground loop from the foreground seeds only (``r`` 0).

    Parameters
    ----------
    pixels : ndarray, shape (spatial..., C)
        The image as :func:`~segloop.tools.cut_checks.check_image` returns it.
    foreground, background : ndarray of bool
        The seeds (spatial shape, both non-empty).
    spacing : sequence of float
        Voxel size in array order.
    balance : float
        Where between the strokes the prior is neutral, as the fraction
        ``r = D_F / (D_F + D_B)`` of the way from the foreground seeds to the
        background seeds (0.5: half way). Users draw the background stroke
        around the object, closer to its outline than the foreground stroke
        inside it, hence 0.7 by default.
    cells : int
        The distances are computed on blocks of voxels (their mean intensity),
        at most :data:`PRIOR_CELLS` by default, and ``r`` is interpolated back
        (linearly).

    Returns
    -------
    ndarray of float32, spatial shape
        ``2 (balance - r)``: per voxel, the cost of the background label minus
        that of the foreground label (positive: foreground preferred), in
        ``[2 balance - 2, 2 balance]``.

    References
    ----------
    Price, B. L., Morse, B., Cohen, S. (2010). Geodesic graph cut for
    interactive image segmentation. CVPR.

    Examples
    --------
    >>> fg = np.zeros((1, 12), bool); fg[0, 0] = True        # a seed at each end
    >>> bg = np.zeros((1, 12), bool); bg[0, 11] = True
    >>> flat = geodesic_prior(np.zeros((1, 12, 1)), fg, bg, spacing=(1, 1), balance=0.5)
    >>> (flat[0] > 0).astype(int).tolist()                   # half way
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    >>> img = np.zeros((1, 12, 1)); img[0, 8:] = 1.0         # an edge between x = 7 and 8
    >>> prior = geodesic_prior(img, fg, bg, spacing=(1, 1), balance=0.5)
    >>> (prior[0] > 0).astype(int).tolist()                  # the edge
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    """
    return GeodesicPrior(pixels, spacing=spacing, cells=cells)(foreground, background,
                                                               balance=balance)


def model_options(kind: str, n_channels: int) -> dict:
    """Default options of an intensity model for grey or colour images."""
    if kind == "histogram":
        return {"bins": 64 if n_channels == 1 else 16, "smoothing": 1.0}
    return {"n_components": 5}


def hard_capacity(weights) -> float:
    """A t-link that no cut of n-links around one voxel can outweigh."""
    return 1.0 + 2.0 * sum(float(w.max(initial=0.0)) for _, w in weights)


def keep_seeded(cut: np.ndarray, seeds: np.ndarray, *, largest: bool = False,
                connectivity: int | None = None) -> np.ndarray:
    """The connected pieces of ``cut`` that hold a seed (and the largest one if ``largest``).

    Pieces are connected as the graph's n-links are (``connectivity`` 1:
    4/6-neighbours, ndim: 8/26-neighbours; default ndim).

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
    >>> keep_seeded(np.eye(2, dtype=bool), seeds, connectivity=1).astype(int)
    array([[1, 0],
           [0, 0]])
    """
    structure = ndi.generate_binary_structure(cut.ndim, connectivity or cut.ndim)
    labels, n = ndi.label(cut, structure)
    keep = np.zeros(n + 1, dtype=bool)
    if largest and n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep[np.argmax(sizes)] = True
    keep[labels.flat[np.flatnonzero(seeds)]] = True
    keep[0] = False
    if keep[1:].all():  # every piece stays (often just one): no need to gather
        return cut
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
        segments = self.graph.get_grid_segments(self.nodes)
        return np.logical_not(segments, out=segments)

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
        # in float64: the graph then holds exactly the new float32 capacities
        ds = source.astype(np.float64) - self.source[index]
        dt = sink.astype(np.float64) - self.sink[index]
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
