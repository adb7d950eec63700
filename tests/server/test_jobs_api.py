"""``/api/jobs``: training and prediction in the background, one training at a time, cancel,
admins only, and jobs a crash left running."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import auth, make_app

from segloop.data import phantom_2d
from segloop.io import Image, read_image, write_image
from segloop.server.app import create_app
from segloop.server.db import Job
from segloop.server.models import NO_MODEL


def write_pairs(root, n=6):
    for i in range(n):
        ph = phantom_2d((32, 32), seed=i, n_blobs=1, thin_structures=False)
        write_image(Image(np.clip(ph.image * 255, 0, 255).astype(np.uint8)),
                    root / "images" / f"c{i}.png")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    root / "labels" / f"c{i}.png")


def config(epochs=1, iterations=2):
    """A tiny training config on the workspace's ``pairs`` folder (relative: the workspace)."""
    return {"data": {"path": "pairs", "split": {"test": 1, "val": 1}},
            "model": {"channels": [4, 8], "num_res_units": 0},
            "augmentation": {"enabled": False},
            "training": {"epochs": epochs, "iterations_per_epoch": iterations, "batch_size": 2,
                         "threads": 1},
            "output": {"tensorboard": False, "dir": "/tmp/ignored"}}


@pytest.fixture
def jobbed(tmp_path, database):
    """(client, tokens, workspace) of a server without a model; phantom pairs in ws/pairs.

    On SQLite and on PostgreSQL (``database`` of server_fixtures.py).
    """
    app, tokens = make_app(tmp_path, db_url=database)
    ws = app.state.segloop.settings.workspace
    write_pairs(ws / "pairs")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, tokens, ws
    app.state.segloop.engine.dispose()


def wait(client, token, job_id, until=("done", "failed", "cancelled"), timeout=60.0,
         check=lambda job: True):
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
        if job["status"] in until and check(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def submit(client, token, **body):
    return client.post("/api/jobs", json=body, headers=auth(token))


def test_train_then_predict(jobbed):
    client, tokens, ws = jobbed
    root = tokens["root"]
    r = submit(client, root, kind="train", config=config(), overrides=["training.seed=3"])
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["user"] == "root"
    cfg = job["params"]["config"]
    assert cfg["output"]["dir"] == str(ws / "runs" / job["id"])  # the server decides
    assert cfg["data"]["path"] == str(ws / "pairs") and cfg["training"]["seed"] == 3
    done = wait(client, root, job["id"])
    assert done["status"] == "done", done
    assert done["progress"] == 1.0 and done["finished_at"] is not None
    result = done["result"]
    assert result["checkpoint"] == f"runs/{job['id']}/best.pt" and result["epochs"] == 1
    assert (ws / result["checkpoint"]).is_file() and 0 <= result["dice"] <= 1
    assert [j["id"] for j in client.get("/api/jobs", headers=auth(root)).json()] == [job["id"]]
    # serve the trained model, then predict every image in the background
    r = client.post("/api/models/load", json={"job_id": job["id"]}, headers=auth(root))
    assert r.status_code == 200 and r.json()["loaded"] is True
    r = submit(client, root, kind="predict")
    assert r.status_code == 202, r.text
    done = wait(client, root, r.json()["id"])
    assert done["status"] == "done" and done["progress"] == 1.0, done
    files = done["result"]["files"]
    st = client.app.state.segloop
    assert [f["image_id"] for f in files] == st.datastore.ids()
    for f in files:
        assert f["path"].startswith(f"predictions/{done['id']}/")
        label = read_image(ws / f["path"], kind="label")
        assert label.shape == st.datastore.image(f["image_id"]).shape
    assert st.labels.status() == {}  # model output never mixed with raters' labels


def test_one_training_at_a_time_and_cancel(jobbed):
    client, tokens, _ = jobbed
    root = tokens["root"]
    first = submit(client, root, kind="train", config=config(epochs=50, iterations=50)).json()
    wait(client, root, first["id"], until=("running",), check=lambda j: j["progress"] > 0)
    r = submit(client, root, kind="train", config=config())
    assert r.status_code == 409 and first["id"] in r.json()["error"]
    r = client.post(f"/api/jobs/{first['id']}/cancel", headers=auth(root))
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    done = wait(client, root, first["id"])
    assert done["status"] == "cancelled" and done["progress"] < 1, done
    r = client.post(f"/api/jobs/{first['id']}/cancel", headers=auth(root))
    assert r.status_code == 409 and "cancelled already" in r.json()["error"]
    second = submit(client, root, kind="train", config=config(epochs=50, iterations=50))
    assert second.status_code == 202
    client.post(f"/api/jobs/{second.json()['id']}/cancel", headers=auth(root))
    assert wait(client, root, second.json()["id"])["status"] == "cancelled"


def test_jobs_are_for_admins_and_checked(jobbed):
    client, tokens, ws = jobbed
    root = tokens["root"]
    for user in ("ann", "rev"):
        assert submit(client, tokens[user], kind="train", config=config()).status_code == 403
        assert client.get("/api/jobs", headers=auth(tokens[user])).status_code == 403
    r = submit(client, root, kind="train", config={"training": {"epoch": 3}})
    assert r.status_code == 400 and "training.epoch: unknown key" in r.json()["error"]
    r = submit(client, root, kind="train", config={"data": {"path": "/etc"}})
    assert r.status_code == 400 and "outside the dataset and the workspace" in r.json()["error"]
    r = submit(client, root, kind="train", config=config(), overrides=["data.path=../.."])
    assert r.status_code == 400
    r = submit(client, root, kind="train", config=config(), overrides=["nonsense"])
    assert r.status_code == 400
    for bad in ({"data": [1, 2]}, {"data": {"path": "a\u0000b"}}, {"model": {"channels": "x"}},
                {"data": {"path": 5}}, []):
        r = submit(client, root, kind="train", config=bad)
        assert r.status_code in (400, 422) and r.json()["error"], (bad, r.text)
    r = submit(client, root, kind="predict")
    assert r.status_code == 409 and r.json()["error"] == NO_MODEL
    r = submit(client, root, kind="sleep")
    assert r.status_code == 422
    assert client.get("/api/jobs/nope", headers=auth(root)).status_code == 404
    assert client.post("/api/jobs/nope/cancel", headers=auth(root)).status_code == 404
    assert not (ws / "runs").exists()  # nothing was started


def test_a_failing_job_says_why(jobbed):
    client, tokens, _ = jobbed
    root = tokens["root"]
    # the served dataset has no labels to train on
    cfg = {**config(), "data": {"split": {"test": 1, "val": 1}}}
    job = submit(client, root, kind="train", config=cfg).json()
    done = wait(client, root, job["id"])
    assert done["status"] == "failed" and done["message"].startswith("failed: "), done
    assert "internal error" not in done["message"]


def test_stopping_the_server_cancels_its_jobs(tmp_path):
    app, tokens = make_app(tmp_path)
    write_pairs(app.state.segloop.settings.workspace / "pairs")
    with TestClient(app, raise_server_exceptions=False) as client:
        job = submit(client, tokens["root"], kind="train", config=config(50, 50)).json()
        wait(client, tokens["root"], job["id"], until=("running",))
    with app.state.segloop.sessions() as db:  # the lifespan's end stopped the worker
        row = db.get(Job, job["id"])
    assert (row.status, row.message) == ("cancelled", "cancelled: the server stopped")
    assert not app.state.segloop.extras["jobs"]._threads["train"].is_alive()
    app.state.segloop.engine.dispose()


def test_restart_marks_unfinished_jobs_failed(tmp_path, database):
    app, tokens = make_app(tmp_path, db_url=database)
    st = app.state.segloop
    with st.sessions() as db:
        for job_id, status in (("a", "running"), ("b", "queued"), ("c", "done")):
            db.add(Job(id=job_id, kind="train", status=status, progress=0.5, message=status,
                       user="root", params="{}", result="{}"))
        db.commit()
    app.state.segloop.engine.dispose()
    again = create_app(st.settings)  # the same workspace and database: a restart
    assert sorted(again.state.segloop.extras["jobs_recovered"]) == ["a", "b"]
    with TestClient(again, raise_server_exceptions=False) as client:
        jobs = {j["id"]: j for j in client.get("/api/jobs", headers=auth(tokens["root"])).json()}
    assert (jobs["a"]["status"], jobs["a"]["message"]) == ("failed", "failed: server restarted")
    assert jobs["b"]["status"] == "failed" and jobs["c"]["status"] == "done"
    assert jobs["a"]["finished_at"] is not None and json.dumps(jobs["a"]["params"]) == "{}"
    again.state.segloop.engine.dispose()
