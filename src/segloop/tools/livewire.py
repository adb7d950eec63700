"""Livewire (intelligent scissors): minimal edge-cost paths between anchors.

The image becomes a directed 8-connected graph whose link costs are the
Mortensen & Barrett edge costs (:mod:`segloop.tools.edge_cost`). Placing an
anchor runs one Dijkstra from it (:func:`scipy.sparse.csgraph.dijkstra`),
first over the pixels within ``window`` pixels of the anchor (and as far along
cheap edges as the same cost reaches). When the cursor leaves that region the
Dijkstra resumes where it stopped, a quarter further at a time: a virtual
source linked to the region's boundary pixels, at their distances, with the
links back into the region cut, gives the pixels beyond exactly the
distances and predecessors a single run would have. The shortest-path tree
is stored with pointer-jumping tables (:class:`~segloop.tools.path_tree.PathTree`),
extended as the tree grows, so each mouse move reads the path to the cursor
in ``O(log L)`` vectorised steps, or splices it onto the previous path. Paths
are exact shortest paths whatever the window.

Examples
--------
>>> import numpy as np
>>> from segloop.data.phantoms import disk
>>> truth = disk((40, 40), (20, 20), 12)
>>> image = truth * 1.0
>>> mask = livewire_mask(image, [(8, 20), (20, 32), (32, 20), (20, 8)])
>>> int((mask & truth).sum() * 2 * 100 / (mask.sum() + truth.sum()))  # Dice, in percent
9...
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sparse
from scipy import ndimage as ndi
from scipy.sparse.csgraph import dijkstra
from skimage import draw

from segloop.tools.edge_cost import MAX_COST_PER_LENGTH, OFFSETS, edge_costs
from segloop.tools.path_tree import AnchorSession, PathTree, paint_anchors, trace_anchors
from segloop.tools.spec import ToolSpec

__all__ = ["SPEC", "LivewireSession", "grid_graph", "livewire_contour", "livewire_mask"]


@functools.lru_cache(maxsize=4)
def _targets(ny: int, nx: int) -> np.ndarray:
    """Flat index of the 8 neighbours of every pixel (the pixel itself outside the image)."""
    flat = np.arange(ny * nx, dtype=np.int32).reshape(ny, nx)
    targets = np.repeat(flat[:, :, None], 8, axis=2)
    for k, (dy, dx) in enumerate(OFFSETS):
        ys, xs = slice(max(0, -dy), ny - max(0, dy)), slice(max(0, -dx), nx - max(0, dx))
        targets[ys, xs, k] += dy * nx + dx
    targets = targets.ravel()
    targets.setflags(write=False)
    return targets


def _grid_arrays(links: np.ndarray, spare: int = 0):
    """The CSR arrays of the 8-neighbour graph of an ``(8, ny, nx)`` link-cost array.

    ``data`` and ``indices`` have ``spare`` entries of room after the 8 per pixel.
    """
    _, ny, nx = links.shape
    n = ny * nx
    data = np.empty(8 * n + spare)
    data[:8 * n].reshape(ny, nx, 8)[...] = np.moveaxis(links, 0, -1)
    indices = np.empty(8 * n + spare, dtype=np.int32)
    indices[:8 * n] = _targets(ny, nx)
    return data, indices, np.arange(0, 8 * n + 1, 8, dtype=np.int32)


def grid_graph(links: np.ndarray) -> sparse.csr_matrix:
    """The directed 8-neighbour graph of an ``(8, ny, nx)`` link-cost array, as CSR.

    Every pixel has exactly 8 entries (links leaving the image become
    self-loops of infinite cost, never followed), so the CSR arrays are
    written directly, without sorting.

    Examples
    --------
    >>> g = grid_graph(np.ones((8, 2, 2)))
    >>> g.shape, g.nnz
    ((4, 4), 32)
    """
    n = links.shape[1] * links.shape[2]
    return sparse.csr_matrix(_grid_arrays(links), shape=(n, n), copy=False)


_EVERYWHERE = 1e300  # a finite Dijkstra limit: cut (infinite) links are then never followed


def _boundary(settled: np.ndarray) -> np.ndarray:
    """Flat indices of the ``True`` pixels of a 2D mask with a ``False`` 8-neighbour."""
    rows, cols = np.flatnonzero(settled.any(axis=1)), np.flatnonzero(settled.any(axis=0))
    if rows.size == 0:
        return np.empty(0, dtype=np.intp)
    y0, x0 = max(rows[0] - 1, 0), max(cols[0] - 1, 0)
    sub = settled[y0:rows[-1] + 2, x0:cols[-1] + 2]
    inner = ndi.binary_erosion(sub, np.ones((3, 3), bool), border_value=1)
    ys, xs = np.nonzero(sub & ~inner)
    return (ys + y0) * settled.shape[1] + (xs + x0)


def _walk(pred: np.ndarray, dist: np.ndarray, root: int, node: int, shape) -> np.ndarray | None:
    """The path from ``root`` to ``node`` along predecessors (None if ``node`` was not reached)."""
    if not np.isfinite(dist[node]):
        return None
    nodes = [node]
    while nodes[-1] != root:
        nodes.append(int(pred[nodes[-1]]))
    return np.stack(np.unravel_index(np.array(nodes[::-1]), shape), axis=1)


class LivewireSession(AnchorSession):
    """An interactive livewire on one 2D image.

    Parameters
    ----------
    image : array_like, 2D (or 3D with ``channel_axis``)
        The image ``(y, x)``.
    spacing : sequence of 2 float, optional
        Pixel size per axis.
    channel_axis : int, optional
        Channel axis of a multi-channel image.
    intensity_window : (float, float), optional
        Only edges between intensities inside ``[lo, hi]`` count.
    sigma : float
        Scale of the edge features, in pixels of the finest axis.
    weights : dict, optional
        Edge-cost weights (see :data:`segloop.tools.edge_cost.DEFAULT_WEIGHTS`).
    window : float or None
        Placing an anchor grows its shortest-path tree over (at least) the
        pixels within this many pixels of it, and over the whole image only
        when the cursor first leaves that region; None grows it over the
        whole image at once. Paths are exact either way.

    Examples
    --------
    >>> image = np.zeros((30, 30)); image[:, 15:] = 1.0
    >>> s = LivewireSession(image)
    >>> _ = s.add_anchor((2, 14))
    >>> sorted(set(s.path_to((27, 14))[:, 1].tolist()))   # runs down the edge
    [14]
    """

    def __init__(self, image, *, spacing=None, channel_axis=None, intensity_window=None,
                 sigma=1.0, weights=None, window: float | None = 48.0):
        super().__init__(window=window)
        self.costs = edge_costs(image, spacing=spacing, channel_axis=channel_axis,
                                intensity_window=intensity_window, sigma=sigma,
                                weights=weights)
        self.shape = self.costs.local.shape
        self.spacing = self.costs.spacing
        self.strength = self.costs.magnitude
        n = self.shape[0] * self.shape[1]
        # room for the virtual source of a resumed Dijkstra after the 8 links of each pixel
        self._data, self._indices, indptr = _grid_arrays(self.costs.links, spare=n)
        self.graph = sparse.csr_matrix((self._data[:8 * n], self._indices[:8 * n], indptr),
                                       shape=(n, n), copy=False)
        self._indptr = np.append(indptr, 8 * n).astype(np.int32)

    #: A tree that the cursor leaves grows this much further (times its reach) at a time.
    growth = 1.25

    def _window_reach(self) -> float:
        # a link costs at most MAX_COST_PER_LENGTH per pixel of length, so this cost reaches
        # every pixel within `window` pixels (along an 8-connected path) of the anchor
        return self.window * MAX_COST_PER_LENGTH

    def _line_reach(self, anchor, target) -> float:
        """The cost of the straight 8-connected line from ``anchor`` to ``target``."""
        rr, cc = draw.line(*anchor, *target)
        steps = np.column_stack([np.diff(rr), np.diff(cc)])
        k = (steps[:, 0] + 1) * 3 + steps[:, 1] + 1  # offset (dy, dx) -> its index in OFFSETS
        k = k - (k > 4)
        return float(self.costs.links[k, rr[:-1], cc[:-1]].sum()) + 1e-9

    def _next_reach(self, tree, anchor, target) -> float:
        # resumed trees lose nothing by growing in steps: a quarter further, or to the
        # straight line's cost if that is nearer (which reaches the target for sure)
        return min(self.growth * tree.reach, self._line_reach(anchor, target))

    def _grow(self, anchor, reach, tree=None) -> PathTree:
        limit = _EVERYWHERE if reach is None else reach
        if tree is not None and tree.dist is not None:
            return self._resume(tree, limit, reach)
        root = int(np.ravel_multi_index(anchor, self.shape))
        dist, pred = dijkstra(self.graph, directed=True, indices=root, return_predecessors=True,
                              limit=limit)
        pred[root] = root
        missed = np.flatnonzero(pred < 0)
        pred[missed] = missed
        return PathTree(pred, self.shape, reach=reach, complete=missed.size == 0, root=anchor,
                        dist=dist)

    def _detour(self, i, target, avoid) -> np.ndarray | None:
        """One Dijkstra from ``anchors[i]`` with the links into ``avoid`` cut."""
        n = avoid.size
        cut = np.flatnonzero(avoid.ravel()[self._indices[:8 * n]])
        saved = self._data[cut]
        self._data[cut] = np.inf
        root = int(np.ravel_multi_index(self.anchors[i], self.shape))
        try:
            dist, pred = dijkstra(self.graph, directed=True, indices=root,
                                  return_predecessors=True, limit=_EVERYWHERE)
        finally:
            self._data[cut] = saved
        return _walk(pred, dist, root, int(np.ravel_multi_index(target, self.shape)), self.shape)

    def _resume(self, tree: PathTree, limit: float, reach) -> PathTree:
        """Grow a partial tree further, visiting only the pixels it has not reached."""
        n = tree.dist.size
        settled = np.isfinite(tree.dist)
        edge = _boundary(settled.reshape(self.shape))
        # the virtual source n links to the boundary pixels at their distances; their links
        # back into the tree are cut, so no reached pixel is visited again
        rows = (8 * edge[:, None] + np.arange(8)).ravel()
        cut = rows[settled[self._indices[rows]]]
        saved = self._data[cut]
        self._data[cut] = np.inf
        try:
            k = edge.size
            self._indices[8 * n:8 * n + k] = edge
            self._data[8 * n:8 * n + k] = tree.dist[edge]
            self._indptr[-1] = 8 * n + k
            graph = sparse.csr_matrix((self._data[:8 * n + k], self._indices[:8 * n + k],
                                       self._indptr), shape=(n + 1, n + 1), copy=False)
            dist, pred = dijkstra(graph, directed=True, indices=n, return_predecessors=True,
                                  limit=limit)
        finally:
            self._data[cut] = saved
        new = np.flatnonzero(np.isfinite(dist[:n]) & ~settled)
        tree.dist[new] = dist[new]
        return tree.extend(new, pred[new], reach=reach,
                           complete=int(settled.sum()) + new.size == n)


def livewire_contour(image, anchors, *, closed=True, spacing=None, channel_axis=None,
                     intensity_window=None, sigma=1.0, weights=None,
                     snap_radius=0.0) -> np.ndarray:
    """The livewire path through ``anchors``, in order (closed by default).

    Parameters
    ----------
    image : array_like, 2D (or 3D with ``channel_axis``)
        The image ``(y, x)``.
    anchors : sequence of (y, x)
        The points the contour passes through.
    closed : bool
        Join the last anchor back to the first.
    snap_radius : float
        Move every anchor to the strongest edge within this radius first.
    spacing, channel_axis, intensity_window, sigma, weights
        As in :class:`LivewireSession`.

    Returns
    -------
    ndarray of int, shape (n, 2)
        8-connected ``(y, x)`` pixels; a closed contour does not repeat its start.

    Examples
    --------
    >>> image = np.zeros((20, 20)); image[5:15, 5:15] = 1.0
    >>> c = livewire_contour(image, [(4, 4), (4, 15), (15, 15), (15, 4)])
    >>> len(c), c.min(axis=0).tolist(), c.max(axis=0).tolist()   # the ring around the square
    (44, [4, 4], [15, 15])
    """
    session = LivewireSession(image, spacing=spacing, channel_axis=channel_axis,
                              intensity_window=intensity_window, sigma=sigma, weights=weights)
    return trace_anchors(session, anchors, closed=closed, snap_radius=snap_radius)


def livewire_mask(image, anchors, **options) -> np.ndarray:
    """The closed livewire contour through ``anchors`` filled into a boolean mask.

    Takes the options of :func:`livewire_contour` (except ``closed``).

    Examples
    --------
    >>> image = np.zeros((20, 20)); image[5:15, 5:15] = 1.0
    >>> m = livewire_mask(image, [(5, 5), (5, 14), (14, 14), (14, 5)])
    >>> bool(m[5:15, 5:15].all()), int(m.sum()) <= 144      # the square, give or take its rim
    (True, True)
    """
    session = LivewireSession(image, **{k: v for k, v in options.items() if k != "snap_radius"})
    trace_anchors(session, anchors, closed=True, snap_radius=options.get("snap_radius", 0.0))
    return session.mask()


def _apply(image, label, *, spacing=None, anchors, snap_radius=0.0, intensity_window=None,
           value=1, sigma=1.0, channel_axis=None, closed=True):
    session = LivewireSession(image, spacing=spacing, channel_axis=channel_axis,
                              intensity_window=intensity_window, sigma=sigma)
    return paint_anchors(session, anchors, label, value=value, closed=closed,
                         snap_radius=snap_radius)


SPEC = ToolSpec(
    "livewire",
    "intelligent scissors: edge-following contour through anchor points",
    _apply,
    params={
        "anchors": "list of [y, x] points (pixel indices) the contour passes through, in order",
        "snap_radius": "move each anchor to the strongest edge within this radius (mm); 0 = off",
        "intensity_window": "[lo, hi]: only edges between intensities in this window count",
        "value": "label value written inside the contour (default 1)",
        "sigma": "scale of the edge features in pixels (default 1)",
        "closed": "true (default): fill the closed contour; false: draw the open path",
    },
    ndims=(2,),
    required=("anchors",),
)
