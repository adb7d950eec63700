"""Versioned label files per rater: save, revert, read, and start-up reconciliation.

Every save writes a new file ``versions/<image>/<rater>/v<NNNN>-<nonce><ext>``
(atomically: a temporary file in the same folder, fsync, rename; the nonce
keeps two concurrent saves of the same version from writing one file), then
commits its :class:`~segloop.server.db.LabelVersion` row; only then is the
rater's *current* file (the BIDS-derivatives / ``labels/<rater>/`` copy that
3D Slicer and :mod:`segloop.fusion` read) replaced, atomically too.  A save
names the version it was built on: when another save landed in between, the
row cannot be inserted (the ``(image, rater, version)`` key is taken) and the
save is refused with 409, its file removed.  Reverting is a save whose
content is an older version's.

:meth:`LabelStore.reconcile`, run at start-up, repairs what a crash can
leave: version files without a row (written, never committed) are removed,
current files that do not hold the latest committed version are rewritten,
and rows whose file is missing or altered are reported.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, write_image
>>> from segloop.server.datastore import Datastore
>>> from segloop.server.db import connect, migrate, session_factory
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> write_image(Image(np.zeros((4, 5), np.uint8)), root / "data" / "images" / "a.png")
>>> write_image(Image(np.zeros((4, 5), np.uint8), kind="label"), root / "data" / "labels" / "a.png")
>>> engine = connect(f"sqlite:///{root / 'db.sqlite'}"); _ = migrate(engine)
>>> store = LabelStore(Datastore(root / "data"), root / "ws", session_factory(engine))
>>> mask = np.zeros((4, 5), np.uint8); mask[1:3, 1:4] = 1
>>> v1 = store.save("a", "ann", mask, base_version=0, author="ann")
>>> v2 = store.save("a", "ann", mask * 0, base_version=1, author="ann")
>>> [v.version for v in store.versions("a", "ann")], int(store.read("a", "ann", 1).array.sum())
([1, 2], 6)
>>> try:
...     store.save("a", "ann", mask, base_version=1, author="ann")
... except ApiError as err:
...     print(err.status, err.message[:44])
409 the label of a by ann changed: latest versio
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from segloop.io import Image, read_image, write_image
from segloop.server.datastore import Datastore
from segloop.server.db import LabelVersion
from segloop.server.errors import ApiError

__all__ = ["LabelStore", "file_sha256"]

#: Largest label value accepted in a saved label map.
MAX_LABEL = 65535


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe(text: str) -> str:
    """A file-name-safe form of an image id (plus a hash, so that ids stay distinct)."""
    tag = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', text)[:80]}-{tag}"


def _sidecar(path: Path) -> Path:
    """The JSON sidecar beside a label file (a PNG's ``PixelSize`` is kept there)."""
    return path.with_name(path.name.split(".")[0] + ".json")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LabelStore:
    """Versioned labels of every rater, in files under ``workspace`` and rows in the database.

    Parameters
    ----------
    datastore : Datastore
        The images (for shapes, geometry and label locations).
    workspace : pathlib.Path
        Folder of the label files (created).
    sessions : sqlalchemy.orm.sessionmaker
        Database sessions.
    suffix : str
        Label name of the current files (BIDS ``seg-manual``).
    """

    def __init__(self, datastore: Datastore, workspace: Path, sessions: sessionmaker, *,
                 suffix: str = "seg-manual"):
        self.datastore = datastore
        self.workspace = Path(workspace)
        self.sessions = sessions
        self.suffix = suffix
        self._current_lock = threading.Lock()
        self.workspace.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths
    def current_path(self, image_id: str, rater: str) -> Path:
        """The rater's current label file of ``image_id`` (absolute)."""
        return self.workspace / self.datastore.label_path(image_id, rater, self.suffix)

    def _version_path(self, image_id: str, rater: str, version: int, ext: str) -> Path:
        folder = self.workspace / "versions" / _safe(image_id) / rater
        return folder / f"v{version:04d}-{secrets.token_hex(4)}{ext}"

    # ------------------------------------------------------------------ queries
    def latest(self, image_id: str, rater: str) -> LabelVersion | None:
        """The rater's latest version of ``image_id`` (None before the first save)."""
        with self.sessions() as db:
            return db.scalar(select(LabelVersion).where(
                LabelVersion.image_id == image_id, LabelVersion.rater == rater)
                .order_by(LabelVersion.version.desc()).limit(1))

    def versions(self, image_id: str, rater: str) -> list[LabelVersion]:
        """Every version of the rater's label of ``image_id``, oldest first."""
        with self.sessions() as db:
            return list(db.scalars(select(LabelVersion).where(
                LabelVersion.image_id == image_id, LabelVersion.rater == rater)
                .order_by(LabelVersion.version)))

    def raters(self, image_id: str) -> dict[str, int]:
        """Rater -> latest version number, for ``image_id``."""
        with self.sessions() as db:
            rows = db.execute(select(LabelVersion.rater, func.max(LabelVersion.version))
                              .where(LabelVersion.image_id == image_id)
                              .group_by(LabelVersion.rater))
            return {r: int(v) for r, v in rows}

    def status(self) -> dict[str, dict[str, int]]:
        """Image id -> {rater -> latest version} for every labelled image."""
        with self.sessions() as db:
            rows = db.execute(select(LabelVersion.image_id, LabelVersion.rater,
                                     func.max(LabelVersion.version))
                              .group_by(LabelVersion.image_id, LabelVersion.rater))
            out: dict[str, dict[str, int]] = {}
            for image_id, rater, version in rows:
                out.setdefault(image_id, {})[rater] = int(version)
            return out

    def read(self, image_id: str, rater: str, version: int | None = None) -> Image:
        """A version (default: the latest) of the rater's label as an Image; 404 if none."""
        row = self._row(image_id, rater, version)
        return read_image(self.workspace / row.path, kind="label")

    def _row(self, image_id: str, rater: str, version: int | None) -> LabelVersion:
        if version is None:
            row = self.latest(image_id, rater)
        else:
            with self.sessions() as db:
                row = db.scalar(select(LabelVersion).where(
                    LabelVersion.image_id == image_id, LabelVersion.rater == rater,
                    LabelVersion.version == version))
        if row is None:
            which = "any version" if version is None else f"version {version}"
            raise ApiError(404, f"no {which} of {rater}'s label of {image_id}")
        return row

    # ------------------------------------------------------------------ writing
    def _check(self, image_id: str, array: np.ndarray) -> tuple[Image, np.ndarray]:
        image = self.datastore.image(image_id)
        array = np.asarray(array)
        if array.shape != image.shape[: image.spatial_ndim]:
            raise ApiError(422, f"label shape {list(array.shape)} does not match image "
                           f"{image_id}'s {list(image.shape[: image.spatial_ndim])}")
        if array.dtype.kind not in "biu":
            raise ApiError(422, f"a label map holds integers, got {array.dtype}")
        if array.size and (int(array.min()) < 0 or int(array.max()) > MAX_LABEL):
            raise ApiError(422, f"label values must lie in 0..{MAX_LABEL}")
        dtype = np.uint8 if not array.size or int(array.max()) < 256 else np.uint16
        return image, array.astype(dtype)

    def save(self, image_id: str, rater: str, array: np.ndarray, *, base_version: int,
             author: str, action: str = "save", tools: list[str] | None = None,
             interactions: int = 0, seconds: float = 0.0,
             comment: str | None = None) -> LabelVersion:
        """Save a new version of the rater's label; 409 if ``base_version`` is not the latest.

        ``base_version`` is the version the label was built on (0: none yet).
        """
        image, array = self._check(image_id, array)
        latest = self.latest(image_id, rater)
        current = latest.version if latest else 0
        if base_version != current:
            raise self._conflict(image_id, rater, current, base_version)
        version = current + 1
        ext = "".join(self.current_path(image_id, rater).suffixes[-2:]) \
            if self.current_path(image_id, rater).name.endswith(".nii.gz") else ".png"
        path = self._version_path(image_id, rater, version, ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        label = image.with_array(array, kind="label", channels=False)
        write_image(label, path)  # temporary file, fsync, rename
        _fsync_dir(path.parent)
        row = LabelVersion(
            image_id=image_id, rater=rater, version=version,
            path=str(path.relative_to(self.workspace)), sha256=file_sha256(path), author=author,
            base_version=base_version, action=action, tools=json.dumps(list(tools or [])),
            interactions=int(interactions), seconds=float(seconds), comment=comment)
        try:
            with self.sessions() as db:
                db.add(row)
                db.commit()
        except IntegrityError:
            path.unlink(missing_ok=True)
            latest = self.latest(image_id, rater)
            raise self._conflict(image_id, rater, latest.version if latest else 0,
                                 base_version) from None
        self._write_current(row)
        return row

    def revert(self, image_id: str, rater: str, to_version: int, *, base_version: int,
               author: str) -> LabelVersion:
        """A new version holding version ``to_version``'s label (history is kept)."""
        old = self.read(image_id, rater, to_version)
        return self.save(image_id, rater, old.array, base_version=base_version, author=author,
                         action="revert", comment=f"revert to version {to_version}")

    def _conflict(self, image_id: str, rater: str, latest: int, base: int) -> ApiError:
        return ApiError(409, f"the label of {image_id} by {rater} changed: latest version "
                        f"{latest}, this save was built on version {base}; reload and save again")

    def _write_current(self, row: LabelVersion) -> None:
        """Replace the rater's current file by this version's, if it is still the latest."""
        with self._current_lock:
            latest = self.latest(row.image_id, row.rater)
            if latest is None or latest.version != row.version:
                return  # a newer save wrote (or will write) it
            target = self.current_path(row.image_id, row.rater)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = self.workspace / row.path
            if _sidecar(source).is_file():  # a PNG's pixel size: before the pixels
                self._replace(_sidecar(target), _sidecar(source).read_bytes())
            self._replace(target, source.read_bytes())

    @staticmethod
    def _replace(target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` atomically (temporary file, fsync, rename)."""
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)

    # ------------------------------------------------------------------ start-up
    def reconcile(self) -> dict[str, Any]:
        """Repair files and rows after a crash (module docstring); what was done."""
        with self.sessions() as db:
            rows = list(db.scalars(select(LabelVersion)))
        known = {r.path for r in rows}
        known |= {str(_sidecar(Path(p))) for p in known}  # PNG versions' PixelSize sidecars
        removed, missing, altered, rewritten = [], [], [], []
        versions = self.workspace / "versions"
        for path in sorted(versions.rglob("*")) if versions.is_dir() else []:
            if not path.is_file():
                continue
            rel = str(path.relative_to(self.workspace))
            if rel not in known:  # written, never committed (or a temporary file)
                path.unlink()
                removed.append(rel)
        latest: dict[tuple[str, str], LabelVersion] = {}
        intact: set[int] = set()
        for row in rows:
            key = (row.image_id, row.rater)
            if key not in latest or row.version > latest[key].version:
                latest[key] = row
            file = self.workspace / row.path
            if not file.is_file():
                missing.append(row.path)
            elif file_sha256(file) != row.sha256:
                altered.append(row.path)
            else:
                intact.add(row.id)
        for (image_id, rater), row in latest.items():
            if image_id not in self.datastore.ids():
                continue
            target = self.current_path(image_id, rater)
            for stray in target.parent.glob(f".{target.name.split('.')[0]}.*.tmp"):
                stray.unlink()
            if row.id not in intact:  # reported above; the current file may be its only copy
                continue
            sidecar = _sidecar(self.workspace / row.path)
            if not target.is_file() or file_sha256(target) != row.sha256 or (
                    sidecar.is_file() and (not _sidecar(target).is_file() or
                                           _sidecar(target).read_bytes() != sidecar.read_bytes())):
                self._write_current(row)
                rewritten.append(str(target.relative_to(self.workspace)))
        return {"removed_orphans": removed, "missing_files": missing, "altered_files": altered,
                "rewritten_current": rewritten}
