"""The server's core: start-up, users and roles, errors as JSON, the access log, limits."""

import json
import logging

import pytest
from server_helpers import auth

from segloop.cli.main import main


def test_health_and_info(served):
    client, tokens = served
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/api/info", headers=auth(tokens["ann"])).json()
    assert info["layout"] == "bids" and info["images"] == 3 and info["role"] == "annotator"


def test_tokens_and_roles(served):
    client, tokens = served
    r = client.get("/api/info")
    assert r.status_code == 401 and "bearer token" in r.json()["error"]
    r = client.get("/api/info", headers=auth("not-a-token"))
    assert r.status_code == 401 and r.json() == {"error": "invalid or revoked token",
                                                 "status": 401}
    assert client.get("/api/users", headers=auth(tokens["ann"])).status_code == 403
    r = client.post("/api/users", json={"name": "cy", "role": "annotator"},
                    headers=auth(tokens["root"]))
    assert r.status_code == 201 and len(r.json()["token"]) > 40
    assert client.get("/api/info", headers=auth(r.json()["token"])).json()["user"] == "cy"
    r = client.post("/api/users", json={"name": "../x", "role": "annotator"},
                    headers=auth(tokens["root"]))
    assert r.status_code == 422 and r.json()["error"].startswith("invalid request: body.name")
    r = client.post("/api/users", json={"name": "cy", "role": "annotator"},
                    headers=auth(tokens["root"]))
    assert r.status_code == 400 and "exists already" in r.json()["error"]


def test_access_log_is_structured(served, caplog):
    client, tokens = served
    with caplog.at_level(logging.INFO, logger="segloop.server.access"):
        client.get("/api/info", headers=auth(tokens["rev"]))
    line = json.loads(caplog.records[-1].getMessage())
    assert line["user"] == "rev" and line["status"] == 200 and line["route"] == "/api/info"
    assert line["ms"] >= 0


def test_oversize_body_is_413(served):
    client, tokens = served
    big = b"x" * (65 * 2**20)
    r = client.post("/api/users", content=big, headers={**auth(tokens["root"]),
                                                        "Content-Type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["error"]


def test_users_cli(tmp_path, capsys):
    from server_helpers import make_dataset

    data = make_dataset(tmp_path / "d")
    ws = tmp_path / "ws"
    assert main(["users", "add", "ann", "--role", "reviewer", "--data", str(data),
                 "--workspace", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "shown once" in out and len(out.strip().splitlines()[-1]) > 40
    assert main(["users", "list", "--data", str(data), "--workspace", str(ws)]) == 0
    assert capsys.readouterr().out.strip() == "ann\treviewer"
    assert main(["users", "add", "ann", "--role", "admin", "--data", str(data),
                 "--workspace", str(ws)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["users", "add", "x/y", "--role", "admin", "--data", str(data),
                 "--workspace", str(ws)]) == 1
    assert not (data.parent / "d.segloop").exists()  # --workspace respected


def test_migrations_keep_old_data(tmp_path):
    from sqlalchemy import text

    from segloop.server.db import connect, migrate, schema_version

    engine = connect(f"sqlite:///{tmp_path / 'old.db'}")
    assert migrate(engine, target=1) == [1]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (name, role, token_hash, created_at) VALUES "
                          "('ann', 'annotator', 'h', '2026-01-01 00:00:00')"))
    assert migrate(engine) == [2] and schema_version(engine) == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users")).scalar() == "ann"
        conn.execute(text("SELECT comment FROM label_versions"))
    engine.dispose()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
