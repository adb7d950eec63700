"""The server on a real PostgreSQL: users and roles, migrations, the label store, concurrent saves.

Every test of tests/server that uses the ``served`` fixture also runs on
PostgreSQL (server_fixtures.py); these ones check what depends on the database
itself: the dialect in use, migrations of an old schema, the unique key that
turns a lost race into a 409, and many saves at once.  The cluster is started
by pg_helpers.py on loopback (skipped, with the reason, when PostgreSQL is not
installed: ``apt-get install postgresql``).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import auth, make_app, make_dataset

from segloop.server.datastore import Datastore
from segloop.server.db import connect, migrate, schema_version, session_factory
from segloop.server.errors import ApiError
from segloop.server.settings import ServerSettings
from segloop.server.storage import LabelStore

IMAGE = "sub-01_T2w"
SHAPE = (24, 48, 40)


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def pg_store(tmp_path, pg_url):
    """A LabelStore of the test dataset on a fresh PostgreSQL database."""
    engine = connect(_psycopg(pg_url))
    migrate(engine)
    store = LabelStore(Datastore(make_dataset(tmp_path / "data")), tmp_path / "ws",
                       session_factory(engine))
    yield store
    engine.dispose()


def _mask(value: int, z: int = 5) -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    mask[z, 10:20, 10:20] = value
    return mask


def test_core_on_postgresql(tmp_path, pg_url):
    app, tokens = make_app(tmp_path, db_url=pg_url)
    assert app.state.segloop.engine.dialect.name == "postgresql"
    assert app.state.segloop.settings.db_url.startswith("postgresql+psycopg://")
    with TestClient(app, raise_server_exceptions=False) as client:
        info = client.get("/api/info", headers=auth(tokens["rev"])).json()
        assert (info["user"], info["role"], info["images"]) == ("rev", "reviewer", 3)
        assert client.get("/api/info").status_code == 401
        assert client.get("/api/users", headers=auth(tokens["bob"])).status_code == 403
        r = client.post("/api/users", json={"name": "cy", "role": "reviewer"},
                        headers=auth(tokens["root"]))
        assert r.status_code == 201
        assert client.get("/api/info", headers=auth(r.json()["token"])).json()["role"] == \
            "reviewer"
        names = [u["name"] for u in client.get("/api/users", headers=auth(tokens["root"])).json()]
        assert names == ["ann", "bob", "cy", "rev", "root"]
    app.state.segloop.engine.dispose()


def test_migrations_keep_old_data_on_postgresql(pg_url):
    from sqlalchemy import text

    engine = connect(_psycopg(pg_url))
    assert migrate(engine, target=1) == [1] and schema_version(engine) == 1
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (name, role, token_hash, created_at) VALUES "
                          "('ann', 'annotator', 'h', '2026-01-01 00:00:00+00')"))
    assert migrate(engine) == [2] and schema_version(engine) == 2 and migrate(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users")).scalar() == "ann"
        assert conn.execute(text("SELECT count(comment) FROM label_versions")).scalar() == 0
    engine.dispose()


def test_settings_accept_postgresql_urls(tmp_path, pg_url):
    data = make_dataset(tmp_path / "d")
    s = ServerSettings.create(data, workspace=tmp_path / "ws", db_url=pg_url)
    assert s.db_url == _psycopg(pg_url)


def test_save_conflict_versions_revert_on_postgresql(pg_store):
    store = pg_store
    v1 = store.save(IMAGE, "ann", _mask(1), base_version=0, author="ann", tools=["graphcut"])
    v2 = store.save(IMAGE, "ann", _mask(2), base_version=1, author="ann", interactions=3)
    assert (v1.version, v2.version, v2.base_version) == (1, 2, 1)
    with pytest.raises(ApiError) as err:
        store.save(IMAGE, "ann", _mask(3), base_version=1, author="ann")
    assert err.value.status == 409 and "latest version 2" in err.value.message
    other = store.save(IMAGE, "bob", _mask(7), base_version=0, author="bob")
    assert other.version == 1  # a second rater's label is kept apart
    v3 = store.revert(IMAGE, "ann", 1, base_version=2, author="ann")
    assert (v3.version, v3.action) == (3, "revert")
    assert [v.version for v in store.versions(IMAGE, "ann")] == [1, 2, 3]
    assert store.versions(IMAGE, "ann")[0].to_dict()["tools"] == ["graphcut"]
    assert np.array_equal(store.read(IMAGE, "ann").array, _mask(1))
    assert np.array_equal(store.read(IMAGE, "ann", 2).array, _mask(2))
    assert np.array_equal(store.read(IMAGE, "bob").array, _mask(7))
    assert store.raters(IMAGE) == {"ann": 3, "bob": 1}
    assert store.status() == {IMAGE: {"ann": 3, "bob": 1}}
    from segloop.io import read_image

    current = read_image(store.current_path(IMAGE, "ann"), kind="label").array
    assert np.array_equal(current, _mask(1))
    assert store.reconcile() == {"removed_orphans": [], "missing_files": [], "altered_files": [],
                                 "rewritten_current": []}


def _race(n: int, job) -> list:
    """Run ``job(i)`` in n threads released together; the results (or exceptions)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = job(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_eight_concurrent_saves_on_postgresql(pg_store):
    store = pg_store
    # eight saves of one label on the same base: exactly one lands, seven get 409
    results = _race(8, lambda i: store.save(IMAGE, "ann", _mask(i + 1), base_version=0,
                                            author="ann"))
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and won[0].version == 1
    assert len(lost) == 7 and all(isinstance(e, ApiError) and e.status == 409 for e in lost)
    winner = results.index(won[0]) + 1
    assert np.array_equal(store.read(IMAGE, "ann").array, _mask(winner))
    assert store.reconcile()["removed_orphans"] == []  # the losers' files were removed
    # eight raters at once: every save lands, each with its own content
    raters = [f"r{i}" for i in range(8)]
    results = _race(8, lambda i: store.save(IMAGE, raters[i], _mask(i + 1, z=i), base_version=0,
                                            author=raters[i]))
    assert all(not isinstance(r, Exception) and r.version == 1 for r in results), results
    for i, rater in enumerate(raters):
        assert np.array_equal(store.read(IMAGE, rater).array, _mask(i + 1, z=i))
    # one rater saving 8 versions in a row from 8 threads, each retrying on 409: no lost update
    def chain(i):
        while True:
            latest = store.latest(IMAGE, "bob")
            try:
                return store.save(IMAGE, "bob", _mask(i + 1, z=i), author="bob",
                                  base_version=latest.version if latest else 0).version
            except ApiError as err:
                if err.status != 409:
                    raise

    versions = _race(8, chain)
    assert sorted(versions) == list(range(1, 9))
    for i, version in enumerate(versions):
        assert np.array_equal(store.read(IMAGE, "bob", version).array, _mask(i + 1, z=i))
