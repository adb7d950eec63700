"""A folder of preprocessed arrays, so that no run re-reads (or re-resamples) a case twice.

Each entry is one ``.npz`` file named ``<case>-<key>.npz``, where the key
(:func:`cache_key`) hashes everything that decides its content: the
preprocessing settings, and each source file's path, size and modification
time. Editing a file, or changing ``data.spacing``, gives a new key, so the old
entry is never used again (and is deleted when the new one is written). The
file also holds its key and a JSON header; an entry that cannot be read in
full, whose stored key differs, or that misses an array, is treated as absent
and rebuilt, never trusted. Writes are atomic (temporary file + rename), so an
interrupted run leaves no half-written entry.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> cache = ArrayCache(pathlib.Path(tempfile.mkdtemp()))
>>> key = cache_key({"spacing": None}, [])
>>> cache.load("case1", key) is None
True
>>> _ = cache.save("case1", key, {"image": np.ones((1, 2, 2), np.float32)}, {"note": "x"})
>>> arrays, meta = cache.load("case1", key)
>>> arrays["image"].shape, meta["note"], cache.stats
((1, 2, 2), 'x', {'hits': 1, 'misses': 1, 'rebuilt': 0})
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from segloop.io.files import write_errors

__all__ = ["CACHE_VERSION", "ArrayCache", "cache_key", "file_stamps"]

CACHE_VERSION = 1
"""Bumped whenever the preprocessing code changes what an entry holds."""

_META = "__meta__"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stamps(files: Iterable[os.PathLike | str]) -> list[list]:
    """``[absolute path, size, mtime_ns]`` of each file (``-1`` for a missing one)."""
    out = []
    for f in files:
        path = Path(f).absolute()
        try:
            st = path.stat()
            out.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([str(path), -1, -1])
    return out


def cache_key(settings: dict[str, Any], files: Iterable[os.PathLike | str], *,
              extra: Any = None) -> str:
    """A hash of the settings, the files' stamps and anything JSON-able in ``extra``.

    Examples
    --------
    >>> cache_key({"a": 1}, []) == cache_key({"a": 1}, []), cache_key({"a": 2}, [])[:0]
    (True, '')
    """
    payload = json.dumps({"version": CACHE_VERSION, "settings": settings,
                          "files": file_stamps(files), "extra": extra},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


class ArrayCache:
    """Named entries of numpy arrays plus a JSON header, keyed by :func:`cache_key`.

    Parameters
    ----------
    folder : pathlib.Path
        Created on the first write.

    Attributes
    ----------
    stats : dict
        ``hits``, ``misses`` (absent or unusable entries) and ``rebuilt`` (of the
        misses, entries that existed but were stale or corrupt).
    """

    def __init__(self, folder: os.PathLike | str):
        self.folder = Path(folder)
        self.stats = {"hits": 0, "misses": 0, "rebuilt": 0}

    def _stem(self, name: str) -> str:
        safe = _SAFE.sub("_", name)
        if safe != name:  # keep distinct names distinct after sanitising
            safe += "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
        return safe

    def path(self, name: str, key: str) -> Path:
        """The file of entry ``name`` with ``key``."""
        return self.folder / f"{self._stem(name)}-{key}.npz"

    def _others(self, name: str, keep: Path | None = None) -> list[Path]:
        stem = self._stem(name)
        pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{24}\.npz")
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.iterdir() if pattern.fullmatch(p.name) and p != keep]

    def load(self, name: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """The arrays and header of an entry, or None when absent, stale or corrupt."""
        path = self.path(name, key)
        if not path.is_file():
            self.stats["misses"] += 1
            if self._others(name):
                self.stats["rebuilt"] += 1  # stale entries: other keys of this name
            return None
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                meta = json.loads(bytes(npz[_META]).decode())
                if meta.get("key") != key or meta.get("name") != name:
                    raise ValueError("key mismatch")
                arrays = {k: np.ascontiguousarray(npz[k]) for k in meta["arrays"]}
        except Exception:  # whatever is wrong with an entry, it is rebuilt, never trusted
            self.stats["misses"] += 1
            self.stats["rebuilt"] += 1
            path.unlink(missing_ok=True)
            return None
        self.stats["hits"] += 1
        return arrays, meta["meta"]

    def save(self, name: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
        """Write an entry atomically and delete the stale entries of ``name``."""
        path = self.path(name, key)
        header = {"key": key, "name": name, "arrays": sorted(arrays), "meta": meta}
        blob = np.frombuffer(json.dumps(header, default=_jsonable).encode(), dtype=np.uint8)
        with write_errors(path):
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, **{_META: blob}, **arrays)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        for old in self._others(name, keep=path):
            old.unlink(missing_ok=True)
        return path


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
