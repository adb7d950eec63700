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

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.tools.contour import check_point, close_path, fill_contour, join_paths, snap_point

__all__ = ["AnchorSession", "PathTree", "check_anchors", "paint_anchors", "trace_anchors",
           "write_label"]


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
    """

    def __init__(self, pred: np.ndarray, shape: tuple[int, ...], *, reach: float | None = None,
                 complete: bool = True):
        pred = np.ascontiguousarray(pred, dtype=np.int32)
        self.shape = tuple(shape)
        self.reach, self.complete = reach, complete
        jumps = [pred]
        while True:  # 2**k-step tables until every pixel has reached its final ancestor
            nxt = np.take(jumps[-1], jumps[-1], mode="wrap")
            if np.array_equal(nxt, jumps[-1]):
                break
            jumps.append(nxt)
        self._jumps = jumps

    def path(self, target) -> np.ndarray:
        """The pixels from the root to ``target`` (inclusive), as ``(n, ndim)`` indices.

        ``target`` is an index tuple inside the grid. For a pixel the tree
        does not reach, the "path" is that pixel alone.
        """
        node = np.ravel_multi_index(tuple(int(v) for v in target), self.shape)
        chain = np.array([node], dtype=np.int32)
        for table in self._jumps:  # list doubling: chain holds 2**k ancestors after step k
            if table[chain[-1]] == chain[-1]:
                break
            chain = np.concatenate((chain, np.take(table, chain, mode="wrap")))
        n = int(np.argmax(chain == chain[-1])) + 1
        return np.stack(np.unravel_index(chain[n - 1::-1], self.shape), axis=1)


class AnchorSession:
    """Anchors joined by minimal paths: the interaction of livewire and geodesic tools.

    Subclasses set ``shape``, ``spacing`` and ``strength`` (edge strength,
    for snapping) and implement :meth:`_grow` (a :class:`PathTree` rooted at
    an anchor and grown up to a cost ``reach``, or over the whole image),
    :meth:`_window_reach` (the reach that covers every pixel within
    ``window`` pixels of an anchor) and :meth:`_line_reach` (an upper bound
    of the cost from an anchor to a pixel, e.g. along the straight line).

    A new anchor's tree is first grown over its window. When a path is asked
    for a pixel beyond, the tree is regrown far enough to reach it (at least
    twice as far as before, so a cursor moving away triggers few regrowths).
    Paths are exact shortest paths in every case. Trees of the most recent
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
    shape: tuple[int, ...]
    spacing: np.ndarray
    strength: np.ndarray

    def __init__(self, *, window: float | None = None):
        if window is not None and not (isinstance(window, numbers.Real) and window > 0):
            raise InvalidArgumentError(f"window must be a positive number or None, got {window!r}")
        self.window = window
        self.anchors: list[tuple[int, ...]] = []
        self.segments: list[np.ndarray] = []
        self.closed = False
        self._trees: dict[int, PathTree] = {}

    def _grow(self, anchor: tuple[int, ...], reach: float | None) -> PathTree:
        raise NotImplementedError  # pragma: no cover

    def _window_reach(self) -> float:
        raise NotImplementedError  # pragma: no cover

    def _line_reach(self, anchor: tuple[int, ...], target: tuple[int, ...]) -> float:
        raise NotImplementedError  # pragma: no cover

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
        if tuple(path[0]) != anchor and not tree.complete:  # beyond the tree grown so far
            reach = max(2.0 * tree.reach, self._line_reach(anchor, target))
            tree = self._keep(i, self._grow(anchor, reach))
            path = tree.path(target)
            if tuple(path[0]) != anchor and not tree.complete:
                path = self._keep(i, self._grow(anchor, None)).path(target)
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
        """Join the last anchor back to the first; return the closed contour."""
        if len(self.anchors) < 2:
            raise InvalidArgumentError(
                f"closing needs at least 2 anchors, got {len(self.anchors)}")
        if not self.closed:
            self.segments.append(self._path(len(self.anchors) - 1, self.anchors[0]))
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
        contour = self.close()
        if len(contour) < 3:
            raise InvalidArgumentError(
                f"the contour through anchors {self.anchors} encloses no area")
        return fill_contour(close_path(contour)[:-1], self.shape[:2])


def check_anchors(anchors, shape, *, closed: bool) -> list[tuple[int, ...]]:
    """Validate a list of anchors (at least 3 for a closed contour, 2 for a path).

    Examples
    --------
    >>> check_anchors([[1, 2], (3.2, 4)], (5, 5), closed=False)
    [(1, 2), (3, 4)]
    """
    try:
        pts = [check_point(a, shape, f"anchors[{i}]") for i, a in enumerate(anchors)]
    except TypeError:
        raise InvalidArgumentError(
            f"anchors must be a list of points in array order, got anchors={anchors!r}"
        ) from None
    least = 3 if closed else 2
    if len(pts) < least:
        raise InvalidArgumentError(
            f"a {'closed contour' if closed else 'path'} needs at least {least} anchors, "
            f"got anchors={anchors!r}")
    return pts


def trace_anchors(session: AnchorSession, anchors, *, closed: bool,
                  snap_radius: float = 0.0) -> np.ndarray:
    """Place every anchor in a fresh session (snapped first if asked); return the contour."""
    pts = check_anchors(anchors, session.shape, closed=closed)
    for p in pts:
        session.add_anchor(session.snap(p, snap_radius) if snap_radius else p)
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
