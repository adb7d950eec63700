"""Interactive tool sessions (livewire) kept between requests: ids, owners, expiry.

A session object of :mod:`segloop.tools` (e.g.
:class:`~segloop.tools.LivewireSession`, which holds the shortest-path trees
of its anchors) lives in a :class:`ToolSessions` registry under a random id.
It belongs to the user who opened it: anyone else gets the same 404 as for
an unknown id, so ids cannot be probed.  A session idle for longer than
``ttl`` seconds expires (purged lazily, on the next access to the
registry); a user holds at most ``per_user`` sessions (opening one more
drops that user's least recently used one), and the registry at most
``max_weight`` in all (a session's weight is its pixel count: a livewire
session holds ~300 bytes per pixel, ~75 MB on a 512 x 512 slice), the least
recently used sessions of anyone going first.  Each entry has its own lock:
requests on one session run one at a time, requests on different sessions
in parallel.

Examples
--------
>>> now = [0.0]
>>> reg = ToolSessions(ttl=10, per_user=2, clock=lambda: now[0])
>>> sid = reg.open("ann", object(), {"image_id": "a"})
>>> reg.get("ann", sid).meta["image_id"]
'a'
>>> now[0] = 11.0
>>> try:
...     reg.get("ann", sid)
... except ApiError as err:
...     print(err.status)
404
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segloop.server.errors import ApiError

__all__ = ["Entry", "ToolSessions"]


@dataclass
class Entry:
    """One open session: its owner, the tool's session object, what it was opened on."""

    id: str
    user: str
    session: Any
    meta: dict[str, Any]
    last_used: float
    weight: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ToolSessions:
    """Open sessions by id (see the module docstring).

    Parameters
    ----------
    ttl : float
        Seconds of inactivity after which a session expires.
    per_user : int
        Sessions one user may hold; the least recently used goes first.
    max_weight : int
        Total weight (pixels) of the sessions held (a memory bound); the least
        recently used go first.
    clock : callable
        Monotonic time in seconds (tests pass their own).
    """

    def __init__(self, *, ttl: float, per_user: int = 8, max_weight: int = 8 * 512 * 512,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = float(ttl)
        self.per_user = per_user
        self.max_weight = max_weight
        self.clock = clock
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self.clock())
            return len(self._entries)

    def _purge(self, now: float) -> None:
        for sid in [s for s, e in self._entries.items() if now - e.last_used > self.ttl]:
            del self._entries[sid]

    def open(self, user: str, session: Any, meta: dict[str, Any], *, weight: int = 1) -> str:
        """Register ``session`` (of ``weight`` pixels) for ``user``; its new id.

        Raises
        ------
        ApiError
            413 when ``weight`` alone exceeds ``max_weight``.
        """
        if weight > self.max_weight:
            raise ApiError(413, f"a session of {weight} pixels exceeds the limit of "
                           f"{self.max_weight}")
        sid = secrets.token_urlsafe(12)
        with self._lock:
            now = self.clock()
            self._purge(now)
            oldest = sorted(self._entries.values(), key=lambda e: e.last_used)
            mine = [e for e in oldest if e.user == user]
            for entry in mine[:max(0, len(mine) - self.per_user + 1)]:
                del self._entries[entry.id]
            total = sum(e.weight for e in self._entries.values())
            for entry in oldest:
                if total + weight <= self.max_weight:
                    break
                if self._entries.pop(entry.id, None) is not None:
                    total -= entry.weight
            self._entries[sid] = Entry(sid, user, session, dict(meta), now, weight)
        return sid

    def get(self, user: str, sid: str) -> Entry:
        """``user``'s session ``sid`` (idle time restarts); 404: unknown, expired, not theirs."""
        with self._lock:
            now = self.clock()
            self._purge(now)
            entry = self._entries.get(sid)
            if entry is None or entry.user != user:
                raise ApiError(404, f"no tool session {sid!r} (unknown, closed, or expired after "
                               f"{self.ttl:g} s idle)")
            entry.last_used = now
            return entry

    def close(self, user: str, sid: str) -> None:
        """Remove ``user``'s session ``sid``; 404 as for :meth:`get`."""
        entry = self.get(user, sid)
        with self._lock:
            self._entries.pop(entry.id, None)

    def expires_in(self, entry: Entry) -> float:
        """Seconds until ``entry`` expires if left idle."""
        return max(0.0, self.ttl - (self.clock() - entry.last_used))
