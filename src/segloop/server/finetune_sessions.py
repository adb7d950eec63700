"""Scribble fine-tuning sessions of the server (BIFSeg on a copy of the served model).

:class:`FinetuneSessions` holds the scribble fine-tuning sessions (BIFSeg,
:class:`segloop.learn.finetune.FinetuneSession`): each trains its own copy of
the network on one image (or one slice of a volume), so the shared model is
never changed.  A session belongs to the user who started it (another user
gets 404), expires after ``settings.session_seconds`` without use, and a
user keeps at most :attr:`FinetuneSessions.per_user` of them (starting one
more ends the least recently used).  Scribbles are given on the image's grid;
when the model resamples or crops (``data.spacing``, ``data.crop_foreground``)
they are carried to the network's grid through world coordinates and the
segmentation is brought back (:func:`segloop.learn.preprocess.restore_geometry`).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from segloop.server.errors import ApiError

if TYPE_CHECKING:
    from segloop.server.models import ModelHub

__all__ = ["FinetuneSessions"]


class _View:
    """Where a session works (the image, or one slice of a volume) and the network's grid.

    ``array`` is the network's input of that view, ``shape`` the view's shape
    on the image's grid (what points and the returned mask refer to).
    """

    def __init__(self, image, array: np.ndarray, info: dict, where: tuple[int, int] | None):
        from segloop.io import Image

        self.info, self.where = info, where
        self.same = info["crop"] is None and not info["resampled"]
        unit = np.zeros((1,) * image.spatial_ndim, np.uint8)
        grid = info["grid"]
        self._src = Image(unit, spacing=image.spacing, origin=image.origin,
                          direction=image.direction)
        self._dst = Image(unit, spacing=grid["spacing"], origin=grid["origin"],
                          direction=grid["direction"])
        self.grid_shape = tuple(int(s) for s in grid["shape"])
        spacing = tuple(float(s) for s in grid["spacing"])
        if where is None:
            self.shape, self.array, self.spacing, self.index = tuple(image.shape), array, \
                spacing, None
            return
        axis, index = where
        lifted = np.zeros((1, image.spatial_ndim), np.int64)
        lifted[0, axis] = index
        self.index = int(self._to_grid(lifted)[0, axis])
        self.shape = tuple(s for a, s in enumerate(image.shape) if a != axis)
        self.array = np.take(array, self.index, axis=1 + axis)
        self.spacing = tuple(s for a, s in enumerate(spacing) if a != axis)

    def _to_grid(self, points: np.ndarray) -> np.ndarray:
        """``(n, nd)`` indices of the image's grid on the network's grid (nearest, clipped)."""
        if self.same:
            return points
        out = np.array([self._dst.world_to_index(self._src.index_to_world(p)) for p in points])
        return np.clip(np.rint(out).astype(np.int64), 0, np.array(self.grid_shape) - 1)

    def points(self, points: list[list[int]]) -> list[list[int]]:
        """A stroke of the view on the network's view."""
        pts = np.asarray(points, dtype=np.int64)
        if self.where is not None:
            pts = np.insert(pts, self.where[0], self.where[1], axis=1)
        out = self._to_grid(pts)
        if self.where is not None:
            out = np.delete(out, self.where[0], axis=1)
        return out.tolist()

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """A segmentation of the network's view back on the view's grid (``uint8``)."""
        m = np.asarray(mask, dtype=np.uint8)
        if self.same:
            return m
        from segloop.learn.preprocess import restore_geometry

        if self.where is None:
            return restore_geometry(m, self.info, 0)
        axis, index = self.where
        full = np.zeros(self.grid_shape, np.uint8)
        full[(slice(None),) * axis + (self.index,)] = m
        return np.take(restore_geometry(full, self.info, 0), index, axis=axis)


@dataclass
class _Entry:
    id: str
    user: str
    image_id: str
    label: int
    view: _View
    session: Any
    used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class FinetuneSessions:
    """Scribble fine-tuning sessions by id (see the module docstring).

    Parameters
    ----------
    hub : ModelHub
        The model each session copies.
    seconds : float
        Idle time after which a session ends.
    per_user, total : int
        Most sessions of one user (the oldest ends) and of the server (429).
    """

    def __init__(self, hub: ModelHub, *, seconds: float, per_user: int = 2, total: int = 16):
        self.hub, self.seconds, self.per_user, self.total = hub, seconds, per_user, total
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [s for s, e in self._entries.items() if now - e.used > self.seconds]:
            del self._entries[sid]

    def _room(self, user: str) -> None:
        self._expire()
        mine = sorted((e for e in self._entries.values() if e.user == user), key=lambda e: e.used)
        while mine and len(mine) >= self.per_user:
            del self._entries[mine.pop(0).id]
        if len(self._entries) >= self.total:
            raise ApiError(429, f"{self.total} fine-tuning sessions are open on this server; "
                           "end one (DELETE) or try again later")

    def start(self, user: str, image_id: str, where: tuple[int, int] | None,
              label: int = 1) -> tuple[_Entry, np.ndarray, float]:
        """A new session of ``user`` on ``image_id`` (a slice ``(axis, index)`` or all of it).

        Returns the session, the model's own segmentation of the class on the
        view, and the seconds it took.
        """
        from segloop.learn.finetune import FinetuneSession

        _, predictor = self.hub.predictor()
        image = self.hub.datastore.image(image_id)
        if where is not None:
            axis, index = where
            if image.spatial_ndim != 3:
                raise ApiError(422, f"slice: {image_id} is a 2D image; give slice null")
            if not (0 <= axis < 3 and 0 <= index < image.shape[axis]):
                raise ApiError(422, f"slice: index {index} along axis {axis} is outside "
                               f"{image_id}'s shape {list(image.shape)}")
            if predictor.dims == 3:
                raise ApiError(400, "the model is 3D: fine-tune the whole volume (slice null, "
                               "points [z, y, x])")
        with self._lock:
            self._room(user)
        start = time.perf_counter()
        with self.hub.lock:
            array, info = predictor.prepare(image)
            view = _View(image, array, info, where)
            axis = info.get("slice_axis") if view.array.ndim == 4 else None
            meta = predictor.meta_vector(image, self.hub.meta_values(predictor, image_id))
            session = FinetuneSession(predictor, view.array, label=label, slice_axis=axis,
                                      spacing=view.spacing, meta=meta)
        seconds = time.perf_counter() - start
        entry = _Entry(secrets.token_urlsafe(12), user, image_id, label, view, session,
                       time.monotonic())
        with self._lock:
            self._room(user)
            self._entries[entry.id] = entry
        return entry, view.mask(session.mask), seconds

    def get(self, user: str, sid: str) -> _Entry:
        """The session ``sid`` of ``user``; 404 for another user's, an ended or unknown one."""
        with self._lock:
            self._expire()
            entry = self._entries.get(sid)
        if entry is None or entry.user != user:
            raise ApiError(404, f"no fine-tuning session {sid!r} of yours (unknown, ended, or "
                           f"idle for more than {self.seconds:g} s)")
        return entry

    def scribble(self, user: str, sid: str, foreground: list, background: list, *,
                 finetune: bool = True) -> tuple[np.ndarray, float, int]:
        """Add strokes and segment again: ``(mask on the view, seconds, updates so far)``."""
        entry = self.get(user, sid)
        shape = entry.view.shape
        for name, stroke in (("foreground", foreground), ("background", background)):
            for point in stroke:
                if len(point) != len(shape) or any(
                        not 0 <= p < s for p, s in zip(point, shape, strict=True)):
                    raise ApiError(422, f"{name}: point {point} is not an index of the "
                                   f"session's {len(shape)}D view of shape {list(shape)}")
        with entry.lock:
            session = entry.session
            if foreground:
                session.add_scribbles(entry.view.points(foreground), foreground=True)
            if background:
                session.add_scribbles(entry.view.points(background), foreground=False)
            start = time.perf_counter()
            mask = session.update(finetune=finetune)
            seconds = time.perf_counter() - start
            entry.used = time.monotonic()
            return entry.view.mask(mask), seconds, session.updates

    def end(self, user: str, sid: str) -> None:
        """End the session ``sid`` of ``user`` (404 as :meth:`get`)."""
        self.get(user, sid)
        with self._lock:
            self._entries.pop(sid, None)

    def count(self, user: str | None = None) -> int:
        """Open sessions (of ``user``)."""
        with self._lock:
            self._expire()
            return sum(1 for e in self._entries.values() if user is None or e.user == user)
