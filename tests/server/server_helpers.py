"""Helpers of the server tests: a small dataset, an app, users and their tokens.

Fixtures using them are in server_fixtures.py (``served``), a plugin of
tests/conftest.py; test modules import helpers with
``from server_helpers import auth, make_app, ...``.
The database is SQLite in the test's workspace, or the PostgreSQL database
given to :func:`make_app` (``db_url=``, or the ``SEGLOOP_TEST_DB_URL``
environment variable): the ``served`` fixture runs every test that uses it on
both, the PostgreSQL one on a fresh database of the session's cluster
(pg_helpers.py) when PostgreSQL is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from segloop.data import phantom_2d, phantom_3d
from segloop.io import Image, write_image
from segloop.server.app import create_app
from segloop.server.auth import add_user
from segloop.server.settings import ServerSettings

USERS = {"ann": "annotator", "bob": "annotator", "rev": "reviewer", "root": "admin"}


def make_dataset(root: Path) -> Path:
    """A BIDS folder: two 3D MRI-like phantoms (anisotropic) and one 2D PNG image."""
    (root / "dataset_description.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    for i, sub in enumerate(("01", "02")):
        ph = phantom_3d((24, 48, 40), seed=i)
        write_image(Image(ph.image.astype(np.float32), spacing=(2.0, 0.8, 0.8)),
                    root / f"sub-{sub}" / "anat" / f"sub-{sub}_T2w.nii.gz")
    ph = phantom_2d((64, 56), seed=5)
    img = np.clip(ph.image * 60 + 80, 0, 255).astype(np.uint8)
    write_image(Image(img), root / "sub-03" / "micr" / "sub-03_sample-a_SEM.png")
    return root


def env_db_url() -> str | None:
    """The test database: SQLite in the workspace (None) or SEGLOOP_TEST_DB_URL's PostgreSQL."""
    return os.environ.get("SEGLOOP_TEST_DB_URL") or None


def make_app(tmp_path: Path, *, db_url: str | None = None, **options):
    """A fresh app on a fresh dataset and workspace, with the USERS added; (app, tokens).

    ``db_url`` (default: ``SEGLOOP_TEST_DB_URL``, else SQLite in the workspace)
    must name an empty database or one made by an earlier app of this test.
    """
    data = make_dataset(tmp_path / "data")
    url = db_url or env_db_url()
    settings = ServerSettings.create(data, workspace=tmp_path / "ws", db_url=url, **options)
    app = create_app(settings)
    tokens = {}
    with app.state.segloop.sessions() as db:
        for name, role in USERS.items():
            tokens[name] = add_user(db, name, role)
    return app, tokens


def auth(token: str) -> dict[str, str]:
    """The Authorization header of ``token``."""
    return {"Authorization": f"Bearer {token}"}
