"""Fixtures of the server tests (helpers in server_helpers.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from server_helpers import make_app


@pytest.fixture
def served(tmp_path):
    """(TestClient, tokens by user name)."""
    app, tokens = make_app(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, tokens
    app.state.segloop.engine.dispose()
