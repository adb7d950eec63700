"""Where the server keeps its state, and the limits it enforces.

:class:`ServerSettings` is built once by ``segloop serve`` (or a test) and
shared by every part of the server.  The *workspace* holds what the server
writes: the database (SQLite by default), the label files of every rater and
their versions.  By default it is the folder ``<dataset>.segloop`` beside the
dataset folder, so the dataset itself is never written to.

Examples
--------
>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp()) / "data"; root.mkdir()
>>> s = ServerSettings.create(root)
>>> s.workspace.name, s.db_url.startswith("sqlite:///")
('data.segloop', True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from segloop.errors import FileMissingError, InvalidArgumentError

__all__ = ["ServerSettings"]


@dataclass(frozen=True)
class ServerSettings:
    """The server's configuration.

    Parameters
    ----------
    dataset : pathlib.Path
        The dataset folder (any layout :func:`segloop.io.open_dataset` reads).
    workspace : pathlib.Path
        Folder of the database, label files and versions (created).
    db_url : str
        SQLAlchemy URL: ``sqlite:///WORKSPACE/segloop.db`` or ``postgresql://...``.
    model : pathlib.Path, optional
        A checkpoint of ``segloop train`` for pre-annotation and fine-tuning.
    max_body_bytes : int
        Largest request body accepted (413 above).
    max_voxels : int
        Largest decoded mask / volume handled in one request.
    session_seconds : float
        Idle time after which an interactive tool session (livewire) expires.
    label_suffix : str
        The label name written for each rater (BIDS ``seg-manual``).
    """

    dataset: Path
    workspace: Path
    db_url: str
    model: Path | None = None
    max_body_bytes: int = 64 * 2**20
    max_voxels: int = 512 * 512 * 512
    session_seconds: float = 600.0
    label_suffix: str = "seg-manual"
    extra: dict = field(default_factory=dict)

    @classmethod
    def create(cls, dataset: str | os.PathLike, *, workspace: str | os.PathLike | None = None,
               db_url: str | None = None, model: str | os.PathLike | None = None,
               **options) -> ServerSettings:
        """Settings with the defaults filled in; paths checked.

        Raises
        ------
        FileMissingError
            The dataset folder or the model file does not exist.
        InvalidArgumentError
            A database URL that is neither SQLite nor PostgreSQL.
        """
        root = Path(dataset).resolve()
        if not root.is_dir():
            raise FileMissingError("no such dataset folder", path=root)
        ws = Path(workspace).resolve() if workspace else root.with_name(root.name + ".segloop")
        url = db_url or f"sqlite:///{ws / 'segloop.db'}"
        if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise InvalidArgumentError(f"--db {url!r}: expected sqlite:///FILE or "
                                       "postgresql://USER@HOST:PORT/NAME")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        ckpt = None
        if model is not None:
            ckpt = Path(model).resolve()
            if not ckpt.is_file():
                raise FileMissingError("no such model checkpoint", path=ckpt)
        return cls(dataset=root, workspace=ws, db_url=url, model=ckpt, **options)
