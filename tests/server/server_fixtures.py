"""Fixtures of the server tests, a pytest plugin loaded by tests/conftest.py.

Helpers are in server_helpers.py and pg_helpers.py.

Every test using ``served`` runs twice: on SQLite (in the test's workspace)
and on a fresh database of a real PostgreSQL cluster started once per session
on loopback (skipped, with the reason, when PostgreSQL is not installed).
``SEGLOOP_TEST_DATABASES=sqlite`` runs only the SQLite half (a quick local run).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pg_helpers import DATABASES, PgCluster, database_name, unavailable
from server_helpers import make_app


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL cluster on 127.0.0.1 for the whole session (skip when not installed)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster):
    """The URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    name = database_name()
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture(params=DATABASES)
def database(request):
    """The database an app uses: None (SQLite in its workspace) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


@pytest.fixture
def served(tmp_path, database):
    """(TestClient, tokens by user name), on SQLite and on PostgreSQL."""
    app, tokens = make_app(tmp_path, db_url=database)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, tokens
    app.state.segloop.engine.dispose()


@pytest.fixture(scope="module")
def served_once(tmp_path_factory):
    """One app (SQLite) for a whole test module: for requests that never change its rows."""
    app, tokens = make_app(tmp_path_factory.mktemp("served_once"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, tokens
    app.state.segloop.engine.dispose()
