"""Livewire (intelligent scissors): minimal edge-cost paths between anchors.

The image becomes a directed 8-connected graph whose link costs are the
Mortensen & Barrett edge costs (:mod:`segloop.tools.edge_cost`). Placing an
anchor runs one Dijkstra from it (:func:`scipy.sparse.csgraph.dijkstra`),
first over the pixels within ``window`` pixels of the anchor (and as far along
cheap edges as the same cost reaches), further only when the cursor leaves
that region; the shortest-path tree is stored with pointer-jumping tables
(:class:`~segloop.tools.path_tree.PathTree`), so each mouse move reads the
path to the cursor in ``O(log L)`` vectorised steps. Paths are exact shortest
paths whatever the window.

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


def grid_graph(links: np.ndarray) -> sparse.csr_matrix:
    """The directed 8-neighbour graph of an ``(8, ny, nx)`` link-cost array, as CSR.

    Every pixel has exactly 8 entries (links leaving the image become
    self-loops, which never shorten a path), so the CSR arrays are written
    directly, without sorting.

    Examples
    --------
    >>> g = grid_graph(np.ones((8, 2, 2)))
    >>> g.shape, g.nnz
    ((4, 4), 32)
    """
    _, ny, nx = links.shape
    n = ny * nx
    data = np.moveaxis(links, 0, -1).astype(np.float64).ravel()
    data[~np.isfinite(data)] = 1.0
    indptr = np.arange(0, 8 * n + 1, 8, dtype=np.int32)
    return sparse.csr_matrix((data, _targets(ny, nx), indptr), shape=(n, n))


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
        self.graph = grid_graph(self.costs.links)

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

    def _grow(self, anchor, reach) -> PathTree:
        root = int(np.ravel_multi_index(anchor, self.shape))
        _, pred = dijkstra(self.graph, directed=True, indices=root, return_predecessors=True,
                           limit=np.inf if reach is None else reach)
        pred[root] = root
        missed = np.flatnonzero(pred < 0)
        pred[missed] = missed
        return PathTree(pred, self.shape, reach=reach, complete=missed.size == 0)


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
