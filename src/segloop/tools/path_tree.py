"""Shortest-path trees on a pixel grid, read back by pointer jumping, and anchor sessions.

A :class:`PathTree` holds, for every pixel, its predecessor towards one root
(an anchor). When the tree is built it also stores the predecessor tables of
``2, 4, 8, ...`` steps (binary lifting), so that the path from any pixel back
to the root, ``L`` pixels long, comes out of about ``log2(L)`` vectorised
gathers ("list doubling") instead of ``L`` Python steps: a mouse move costs
microseconds. :class:`AnchorSession` is the interaction shared by livewire
and geodesic paths: anchors, the committed segments between them, undo and
closing; subclasses only say how a tree is grown from an anchor.

Examples
--------
>>> import numpy as np
>>> pred = np.array([0, 0, 1, 2, 3])          # a chain 4 -> 3 -> 2 -> 1 -> 0
>>> PathTree(pred, (1, 5)).path((0, 4)).tolist()
[[0, 0], [0, 1], [0, 2], [0, 3], [0, 4]]
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod

import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.tools.contour import check_point, fill_contour, join_paths, snap_point

__all__ = ["MIN_INTERIOR_FRACTION", "AnchorSession", "PathTree", "check_anchors", "check_bool",
           "check_encloses", "paint_anchors", "trace_anchors", "write_label"]

#: A closed contour must enclose at least this many pixels (strictly inside, not on the
#: outline) per pixel of its outline. A there-and-back path (anchors A, B, A, or two anchors
#: on one edge) encloses almost none, and a "mask" of it would be its path; a 4 x 4 pixel
#: object (12 outline, 4 inside) still passes, a 3 x 3 one (8 outline, 1 inside) does not.
MIN_INTERIOR_FRACTION = 0.25


def check_bool(value, name: str) -> bool:
    """``value`` if it is a real bool (not a string such as "no", nor 0/1).

    Examples
    --------
    >>> check_bool(False, "closed")
    False
    """
    if not isinstance(value, bool | np.bool_):
        raise InvalidArgumentError(f"{name} must be true or false, got {name}={value!r}")
    return bool(value)


def check_encloses(contour: np.ndarray, shape: tuple[int, ...], anchors=None) -> np.ndarray:
    """Fill a closed contour, or raise when it encloses (almost) nothing.

    ``contour`` is a traced 8-connected pixel chain (as the sessions make;
    of any other polygon only the vertices count as its outline). The pixels
    strictly inside (centre inside the polygon, not on the outline) must
    number at least :data:`MIN_INTERIOR_FRACTION` of the outline's pixels.
    Returns the filled mask (outline included).

    Examples
    --------
    >>> ring = np.array([[1, 1], [1, 4], [4, 4], [4, 1]])
    >>> int(check_encloses(ring, (6, 6)).sum())
    16
    """
    on = np.zeros(shape[:2], dtype=bool)
    if len(contour):
        on[tuple(np.asarray(contour).T)] = True
    outline, inside = int(on.sum()), 0
    mask = None
    if len(contour) >= 3:
        mask = fill_contour(contour, shape[:2])
        inside = int((fill_contour(contour, shape[:2], include_boundary=False) & ~on).sum())
    if mask is None or inside < MIN_INTERIOR_FRACTION * outline:
        where = "" if anchors is None else f" through anchors {[list(a) for a in anchors]}"
        raise InvalidArgumentError(
            f"the closed contour{where} encloses no area: {inside} pixels inside its "
            f"{outline}-pixel outline (at least {MIN_INTERIOR_FRACTION:g} per outline pixel "
            "needed); place the anchors around the object")
    return mask


class PathTree:
    """Predecessor tree over a grid with pointer-jumping tables.

    Parameters
    ----------
    pred : ndarray of int, shape (n_pixels,)
        Flat index of each pixel's predecessor; the root points to itself.
        Pixels not reached (outside a partial tree) point to themselves too.
    shape : tuple of int
        Grid shape (the flat indices are C-ordered).
    reach : float, optional
        The cost up to which the tree was grown (None: the whole grid).
    complete : bool
        Whether every pixel reaches the root.
    root : tuple of int, optional
        The root, if known: paths to it are then remembered, so that the next
        path (the cursor moved by a pixel or a few) is spliced onto the last
        one instead of being read back in full.
    dist : ndarray of float, optional
        Distance of each pixel from the root (``inf`` where not reached),
        kept for trees that :meth:`extend` later.
    """

    def __init__(self, pred: np.ndarray, shape: tuple[int, ...], *, reach: float | None = None,
                 complete: bool = True, root=None, dist: np.ndarray | None = None):
        pred = np.array(pred, dtype=np.int32)
        self.shape = tuple(shape)
        self.reach, self.complete, self.dist = reach, complete, dist
        self._root = None if root is None else int(np.ravel_multi_index(root, self.shape))
        self._jumps = [pred]
        self._deepen(np.flatnonzero(pred != np.arange(pred.size, dtype=np.int32)))
        self._last_nodes = self._pos = None

    def _deepen(self, nodes: np.ndarray) -> None:
        """Fill the 2**k-step tables of ``nodes``, whose 1-step pointers are set.

        Level ``k`` of a node only needs level ``k - 1`` of its ancestors,
        which are older nodes (final already) or among ``nodes`` (done at the
        previous level), so a tree grows without recomputing its old part.
        """
        jumps, k = self._jumps, 1
        moving = nodes.size > 0
        whole = nodes.size > jumps[0].size // 4  # then whole tables are cheaper than scatters
        while moving or k < len(jumps):
            prev = jumps[k - 1]
            if whole:  # (old nodes come out as they were)
                nxt = np.take(prev, prev)
                moving = not np.array_equal(nxt, prev)
                if k == len(jumps):
                    jumps.append(nxt)
                else:
                    jumps[k] = nxt
            else:
                if k == len(jumps):
                    jumps.append(prev.copy())  # the old nodes have reached their root already
                step = np.take(prev, nodes)
                nxt = np.take(prev, step)
                jumps[k][nodes] = nxt
                moving = bool(np.any(nxt != step))
            k += 1

    def extend(self, nodes: np.ndarray, pred: np.ndarray, *, reach: float | None,
               complete: bool) -> PathTree:
        """Add ``nodes`` (not reached so far) with predecessors ``pred``; return self."""
        self._jumps[0][nodes] = pred
        self._deepen(np.asarray(nodes, dtype=np.intp))
        self.reach, self.complete = reach, complete
        return self

    def path(self, target) -> np.ndarray:
        """The pixels from the root to ``target`` (inclusive), as ``(n, ndim)`` indices.

        ``target`` is an index tuple inside the grid. For a pixel the tree
        does not reach, the "path" is that pixel alone.
        """
        if len(self.shape) == 2:
            node = int(target[0]) * self.shape[1] + int(target[1])
        else:
            node = int(np.ravel_multi_index(tuple(int(v) for v in target), self.shape))
        if self._pos is not None:
            nodes = self._splice(node)
            if nodes is not None:
                return self._coords(nodes)
        chain = np.array([node], dtype=np.int32)
        for table in self._jumps:  # list doubling: chain holds 2**k ancestors after step k
            if table[chain[-1]] == chain[-1]:
                break
            chain = np.concatenate((chain, np.take(table, chain, mode="wrap")))
        n = int(np.argmax(chain == chain[-1])) + 1
        nodes = chain[n - 1::-1]
        if self._root is not None and nodes[0] == self._root:
            self._remember(nodes, 0)
        return self._coords(nodes)

    def _coords(self, nodes: np.ndarray) -> np.ndarray:
        if len(self.shape) != 2:
            return np.stack(np.unravel_index(nodes, self.shape), axis=1)
        out = np.empty((nodes.size, 2), dtype=np.intp)
        np.divmod(nodes, self.shape[1], out=(out[:, 0], out[:, 1]))
        return out

    _SPLICE_STEPS = 24  # pointers followed from the cursor to meet the last path

    def _splice(self, node: int) -> np.ndarray | None:
        """The path to ``node`` as the last path cut where ``node``'s branch meets it."""
        pred, pos, walk = self._jumps[0], self._pos, [node]
        for _ in range(self._SPLICE_STEPS):
            at = int(pos[walk[-1]])
            if at >= 0:
                nodes = self._last_nodes[:at + 1]
                if len(walk) > 1:
                    nodes = np.concatenate((nodes, np.array(walk[-2::-1], dtype=np.int32)))
                self._remember(nodes, at + 1)
                return nodes
            up = int(pred[walk[-1]])
            if up == walk[-1]:  # not reached: no path
                return None
            walk.append(up)
        return None

    def _remember(self, nodes: np.ndarray, keep: int) -> None:
        """Make ``nodes`` the last path; its first ``keep`` nodes are those of the previous one."""
        if self._pos is None:
            self._pos = np.full(len(self._jumps[0]), -1, dtype=np.int32)
        elif keep < len(self._last_nodes):
            self._pos[self._last_nodes[keep:]] = -1
        if keep < len(nodes):
            self._pos[nodes[keep:]] = np.arange(keep, len(nodes), dtype=np.int32)
        self._last_nodes = nodes


class AnchorSession(ABC):
    """Anchors joined by minimal paths: the interaction of livewire and geodesic tools.

    Subclasses set ``shape``, ``spacing`` and ``strength`` (edge strength,
    for snapping) and implement :meth:`_grow` (a :class:`PathTree` rooted at
    an anchor and grown up to a cost ``reach``, or over the whole image),
    :meth:`_window_reach` (the reach that covers every pixel within
    ``window`` pixels of an anchor) and :meth:`_line_reach` (an upper bound
    of the cost from an anchor to a pixel, e.g. along the straight line).

    A new anchor's tree is first grown over its window. When a path is asked
    for a pixel beyond, the tree is regrown until it reaches that pixel
    (:meth:`_next_reach`; livewire trees resume where they stopped). Paths
    are exact shortest paths in every case. Trees of the most recent
    anchors are kept (``keep_trees``) so that undo does not recompute them.

    Attributes
    ----------
    anchors : list of tuple of int
        The anchors placed so far, ``(y, x)``.
    segments : list of ndarray
        ``segments[i]`` joins ``anchors[i]`` to ``anchors[i + 1]`` (and, once
        closed, the last anchor back to the first).
    closed : bool
        Whether :meth:`close` was called.
    window : float or None
        Radius in pixels (of the finest axis) of the first growth of a tree;
        None grows every tree over the whole image at once.
    """

    keep_trees = 3
    #: Closing (3 anchors or more): a way back from the last anchor to the first that runs
    #: along the contour already traced for more than this fraction of its pixels (it
    #: retraces a side instead of going round the other) is replaced by the best way back
    #: that keeps a pixel off that contour, when the session can find one (:meth:`_detour`).
    max_retrace = 0.25
    shape: tuple[int, ...]
    spacing: np.ndarray
    strength: np.ndarray

    def __init__(self, *, window: float | None = None):
        if window is not None and not (isinstance(window, numbers.Real)
                                       and not isinstance(window, bool) and window > 0):
            raise InvalidArgumentError(f"window must be a positive number or None, got {window!r}")
        self.window = window
        self.anchors: list[tuple[int, ...]] = []
        self.segments: list[np.ndarray] = []
        self.closed = False
        self._trees: dict[int, PathTree] = {}

    @abstractmethod
    def _grow(self, anchor: tuple[int, ...], reach: float | None,
              tree: PathTree | None = None) -> PathTree:
        """The tree of ``anchor`` grown up to ``reach`` (None: everywhere).

        ``tree`` is the anchor's current (partial) tree, which a subclass may
        extend instead of starting again.
        """

    def _next_reach(self, tree: PathTree, anchor, target) -> float | None:
        """How far to regrow ``tree`` when ``target`` lies beyond it (None: everywhere).

        Trees regrown from scratch go at least twice as far, so that a cursor
        moving away triggers few regrowths; once the reach passes the cost of
        the straight line to the target (which should have reached it) they
        go everywhere.
        """
        line = self._line_reach(anchor, target)
        return None if tree.reach >= line else max(2.0 * tree.reach, line)

    @abstractmethod
    def _window_reach(self) -> float:
        """The reach that covers every pixel within ``window`` pixels of an anchor."""

    def _detour(self, i: int, target: tuple[int, ...], avoid: np.ndarray) -> np.ndarray | None:
        """The minimal path from ``anchors[i]`` to ``target`` through no ``avoid`` pixel.

        None when there is none (or the session cannot tell); the base class
        cannot.
        """
        return None

    def _way_back(self) -> np.ndarray:
        """The closing segment: the minimal path back to the first anchor, unless it retraces."""
        last = len(self.anchors) - 1
        back = self._path(last, self.anchors[0])
        if last < 2 or len(back) < 3:
            return back
        on = np.zeros(self.shape, dtype=bool)
        for seg in self.segments:
            on[tuple(seg.T)] = True
        if np.mean(on[tuple(back[1:-1].T)]) <= self.max_retrace:
            return back
        avoid = ndi.binary_dilation(on, np.ones((3,) * len(self.shape), bool))
        grid = np.indices(self.shape, sparse=True)
        for end in (self.anchors[last], self.anchors[0]):  # room to leave and reach the ends
            avoid &= sum((g - e) ** 2 for g, e in zip(grid, end, strict=True)) > 4
        detour = self._detour(last, self.anchors[0], avoid)
        return back if detour is None else detour

    @abstractmethod
    def _line_reach(self, anchor: tuple[int, ...], target: tuple[int, ...]) -> float:
        """An upper bound of the cost from ``anchor`` to ``target`` (e.g. the straight line)."""

    def _keep(self, i: int, tree: PathTree) -> PathTree:
        self._trees[i] = tree
        for old in sorted(self._trees)[:-self.keep_trees]:
            del self._trees[old]
        return tree

    def _tree(self, i: int) -> PathTree:
        if i not in self._trees:
            reach = None if self.window is None else self._window_reach()
            self._keep(i, self._grow(self.anchors[i], reach))
        return self._trees[i]

    def _path(self, i: int, target: tuple[int, ...]) -> np.ndarray:
        anchor, tree = self.anchors[i], self._tree(i)
        path = tree.path(target)
        while tuple(path[0]) != anchor and not tree.complete and tree.reach is not None:
            tree = self._keep(i, self._grow(anchor, self._next_reach(tree, anchor, target), tree))
            path = tree.path(target)
        return path

    def _point(self, point, name="point") -> tuple[int, ...]:
        return check_point(point, self.shape, name)

    def snap(self, point, radius: float = 5.0) -> tuple[int, ...]:
        """The strongest edge pixel within ``radius`` (physical units) of ``point``.

        Ties go to the pixel nearest ``point``; ``radius=0`` returns the point.
        """
        return snap_point(self.strength, point, radius, self.spacing)

    def add_anchor(self, point) -> np.ndarray:
        """Place an anchor; return the segment from the previous anchor to it.

        The shortest-path tree of the new anchor is computed here, once, so
        that :meth:`path_to` is then immediate. The first anchor returns a
        one-point segment.
        """
        if self.closed:
            raise InvalidArgumentError("the contour is closed; remove_last_anchor() to reopen")
        p = self._point(point)
        if p in self.anchors:
            i = self.anchors.index(p)
            hint = "; close() joins the last anchor back to the first" if i == 0 else ""
            raise InvalidArgumentError(
                f"point={point!r} is anchors[{i}] already: anchors must be distinct pixels{hint}")
        if self.anchors:
            self.segments.append(self._path(len(self.anchors) - 1, p))
        self.anchors.append(p)
        self._tree(len(self.anchors) - 1)
        return self.segments[-1] if len(self.anchors) > 1 else np.array([p])

    def path_to(self, point) -> np.ndarray:
        """The minimal path from the last anchor to ``point`` (the cursor), ``(n, 2)``."""
        if not self.anchors:
            raise InvalidArgumentError("place an anchor first (add_anchor)")
        return self._path(len(self.anchors) - 1, self._point(point))

    def remove_last_anchor(self) -> None:
        """Undo: reopen a closed contour, or else drop the last anchor and its segment."""
        if self.closed:
            self.closed = False
            self.segments.pop()
            return
        if not self.anchors:
            raise InvalidArgumentError("there is no anchor to remove")
        self._trees.pop(len(self.anchors) - 1, None)
        self.anchors.pop()
        if self.segments:
            self.segments.pop()

    def clear(self) -> None:
        """Remove every anchor and segment (start a new contour on the same image)."""
        self.anchors, self.segments, self.closed, self._trees = [], [], False, {}

    def close(self) -> np.ndarray:
        """Join the last anchor back to the first; return the closed contour.

        With 3 anchors or more, a way back that would retrace the contour
        (see :attr:`max_retrace`) goes round the other side instead, when
        there is a way. Raises (and leaves the session as it was) when the
        closed contour encloses no area (see :func:`check_encloses`).
        """
        if len(self.anchors) < 2:
            raise InvalidArgumentError(
                f"closing needs at least 2 anchors, got {len(self.anchors)}")
        if not self.closed:
            back = self._way_back()
            pts = join_paths([np.array([self.anchors[0]])] + self.segments + [back])[:-1]
            check_encloses(pts, self.shape, self.anchors)  # before any state changes
            self.segments.append(back)
            self.closed = True
        return self.contour()

    def contour(self) -> np.ndarray:
        """All committed segments joined (a closed contour does not repeat its first point)."""
        if not self.anchors:
            return np.empty((0, len(self.shape)), dtype=np.intp)
        pts = join_paths([np.array([self.anchors[0]])] + self.segments)
        return pts[:-1] if self.closed and len(pts) > 1 else pts

    def mask(self) -> np.ndarray:
        """The closed contour filled into a boolean mask (closes the contour if needed)."""
        return check_encloses(self.close(), self.shape, self.anchors)


def check_anchors(anchors, shape, *, closed: bool) -> list[tuple[int, ...]]:
    """Validate a list of anchors (at least 3 for a closed contour, 2 for a path).

    Examples
    --------
    >>> check_anchors([[1, 2], (3.2, 4)], (5, 5), closed=False)
    [(1, 2), (3, 4)]
    """
    check_bool(closed, "closed")
    try:
        if isinstance(anchors, str | bytes | dict):
            raise TypeError
        pts = [check_point(a, shape, f"anchors[{i}]") for i, a in enumerate(anchors)]
    except TypeError:
        raise InvalidArgumentError(
            f"anchors must be a list of points in array order, got anchors={anchors!r}"
        ) from None
    _check_distinct(pts, "")
    least = 3 if closed else 2
    if len(pts) < least:
        raise InvalidArgumentError(
            f"a {'closed contour' if closed else 'path'} needs at least {least} anchors, "
            f"got anchors={anchors!r}")
    return pts


def _check_distinct(pts, after: str) -> None:
    first: dict[tuple[int, ...], int] = {}
    for i, p in enumerate(pts):
        if p in first:
            raise InvalidArgumentError(
                f"anchors[{first[p]}] and anchors[{i}] are the same pixel {list(p)}"
                + (after or ": anchors must be distinct (a closed contour returns to anchors[0] "
                   "by itself)"))
        first[p] = i


def trace_anchors(session: AnchorSession, anchors, *, closed: bool,
                  snap_radius: float = 0.0) -> np.ndarray:
    """Place every anchor in a fresh session (snapped first if asked); return the contour."""
    pts = check_anchors(anchors, session.shape, closed=closed)
    if snap_radius:
        pts = [snap_point(session.strength, p, snap_radius, session.spacing, name="snap_radius")
               for p in pts]
        _check_distinct(pts, f" after snapping with snap_radius={snap_radius!r}; use a smaller "
                             "snap_radius")
    for p in pts:
        session.add_anchor(p)
    return session.close() if closed else session.contour()


def write_label(mask: np.ndarray, label, value) -> np.ndarray:
    """``label`` (or a new zero label map) with ``value`` written where ``mask`` is set.

    Examples
    --------
    >>> write_label(np.array([True, False]), None, 3).tolist()
    [3, 0]
    """
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0):
        raise InvalidArgumentError(f"value must be a positive integer, got value={value!r}")
    if label is None:
        out = np.zeros(mask.shape, dtype=np.uint8 if value < 256 else np.int32)
    else:
        out = np.array(label, copy=True)
        if out.shape != mask.shape:
            raise InvalidArgumentError(
                f"label has shape {out.shape}, but the image's spatial shape is {mask.shape}")
        if np.issubdtype(out.dtype, np.integer) and value > np.iinfo(out.dtype).max:
            raise InvalidArgumentError(f"value={value} does not fit the label's {out.dtype}")
    out[mask] = value
    return out


def paint_anchors(session: AnchorSession, anchors, label, *, value=1, closed=True,
                  snap_radius=0.0) -> np.ndarray:
    """Trace ``anchors``; write the filled contour (or the open path) into ``label``."""
    path = trace_anchors(session, anchors, closed=closed, snap_radius=snap_radius)
    if closed:
        mask = session.mask()
    else:
        mask = np.zeros(session.shape, dtype=bool)
        mask[tuple(path.T)] = True
    return write_label(mask, label, value)
