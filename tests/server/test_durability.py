"""The label store is durable and safe: concurrent saves, kill -9 of the server, reconciliation.

* 8 threads save to one image (two raters, four threads each), retrying on 409
  with the new base: versions 1..N without gaps, every acknowledged save holds
  what was sent, the raters never mix.
* ``segloop serve`` (the real command line, a subprocess on a free loopback
  port) is killed with SIGKILL while two clients stream saves, at three seeded
  moments, and restarted on the same workspace: every acknowledged save is
  there with its content, every file matches its row, no orphan file, no row
  without file, and the start-up reconciliation report says so.
* :meth:`LabelStore.reconcile` on damage made by hand.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from server_helpers import auth, make_dataset

from segloop.io import read_image
from segloop.server.datastore import Datastore
from segloop.server.db import LabelVersion, connect, migrate, session_factory
from segloop.server.masks import MaskPayload, decode_mask, encode_mask
from segloop.server.storage import LabelStore, file_sha256

IMAGE, SHAPE = "sub-01_T2w", (24, 48, 40)


def content(rater: str, k: int) -> np.ndarray:
    """The k-th label rater ``rater`` saves (distinct for every (rater, k))."""
    rng = np.random.default_rng([sum(map(ord, rater)), k])
    mask = (rng.random(SHAPE) < 0.05).astype(np.uint8)
    mask[k % SHAPE[0], :4, :4] = 1 + k % 250
    return mask


def decoded(body: dict) -> np.ndarray:
    return decode_mask(MaskPayload(**body["mask"]), max_voxels=10**7)


# ----------------------------------------------------------------------------- concurrency
def test_concurrent_saves_lose_nothing(served):
    client, tokens = served
    per_thread, acked, problems = 4, {"ann": {}, "bob": {}}, []
    conflicts = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        rater = ("ann", "bob")[i % 2]
        headers = auth(tokens[rater])
        barrier.wait()
        base = 0
        for j in range(per_thread):
            k = i * 100 + j
            body = {"base_version": base, "mask": encode_mask(content(rater, k)).model_dump()}
            for _ in range(200):
                r = client.put(f"/api/labels/{IMAGE}/{rater}", json=body, headers=headers)
                if r.status_code == 201:
                    with lock:
                        acked[rater][r.json()["version"]] = k
                    base = r.json()["version"]
                    break
                if r.status_code != 409:
                    problems.append((r.status_code, r.text))
                    return
                with lock:
                    conflicts[0] += 1
                body["base_version"] = client.get(f"/api/labels/{IMAGE}",
                                                  headers=headers).json()["raters"][rater]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert problems == [] and not any(t.is_alive() for t in threads)
    assert conflicts[0] > 0  # the threads did collide
    rev = auth(tokens["rev"])
    for rater, saves in acked.items():
        n = 4 * per_thread
        assert sorted(saves) == list(range(1, n + 1))  # every save acknowledged once, no gap
        listed = client.get(f"/api/labels/{IMAGE}/{rater}/versions", headers=rev).json()
        assert [v["version"] for v in listed] == list(range(1, n + 1))
        assert {v["author"] for v in listed} == {rater} and {v["rater"] for v in listed} == \
            {rater}
        for version, k in saves.items():
            r = client.get(f"/api/labels/{IMAGE}/{rater}?version={version}", headers=rev)
            assert np.array_equal(decoded(r.json()), content(rater, k)), (rater, version)
    st = client.app.state.segloop
    for rater in acked:
        current = read_image(st.labels.current_path(IMAGE, rater), kind="label").array
        assert np.array_equal(current, content(rater, acked[rater][4 * per_thread]))


# ----------------------------------------------------------------------------- kill -9
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "segloop.cli.main", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``segloop serve DATA --workspace WS --port P`` as a subprocess."""

    def __init__(self, data: Path, ws: Path, log: Path):
        self.data, self.ws, self.log = data, ws, log
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                _cli("serve", str(self.data), "--workspace", str(self.ws), "--port", str(port),
                     "--log-level", "warning"), stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("server did not start within 30 s")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Stream(threading.Thread):
    """Saves rater's labels back to back until the server goes away."""

    def __init__(self, url: str, token: str, rater: str, acked: dict, counter: list):
        super().__init__(daemon=True)
        self.url, self.token, self.rater = url, token, rater
        self.acked, self.counter, self.unexpected = acked, counter, []

    def run(self) -> None:
        path = f"/api/labels/{IMAGE}/{self.rater}"
        with httpx.Client(base_url=self.url, headers=auth(self.token), timeout=20) as c:
            try:
                base = c.get(f"/api/labels/{IMAGE}").json()["raters"].get(self.rater, 0)
                while True:
                    k = self.counter[0]
                    body = {"base_version": base, "mask": encode_mask(
                        content(self.rater, k)).model_dump(), "interactions": k}
                    r = c.put(path, json=body)
                    if r.status_code == 201:
                        base = r.json()["version"]
                        self.acked[base] = k
                        self.counter[0] += 1
                    elif r.status_code == 409:  # a save the client never heard of landed
                        base = c.get(f"/api/labels/{IMAGE}").json()["raters"][self.rater]
                    else:
                        self.unexpected.append((r.status_code, r.text))
                        return
            except httpx.TransportError:
                return  # the server was killed


def _check_workspace(ws: Path, data: Path, acked: dict[str, dict[int, int]]) -> None:
    """Every row has its intact file, every file its row; acknowledged saves hold their content."""
    engine = connect(f"sqlite:///{ws / 'segloop.db'}")
    store = LabelStore(Datastore(data), ws, session_factory(engine))
    with store.sessions() as db:
        rows = list(db.query(LabelVersion))
    engine.dispose()
    for row in rows:
        file = ws / row.path
        assert file.is_file() and file_sha256(file) == row.sha256, row.path
        read_image(file, kind="label")
    files = {str(p.relative_to(ws)) for p in (ws / "versions").rglob("*") if p.is_file()}
    assert files == {r.path for r in rows}  # no orphan file, no row without file
    for rater, saves in acked.items():
        mine = sorted((r for r in rows if r.rater == rater), key=lambda r: r.version)
        assert [r.version for r in mine] == list(range(1, len(mine) + 1))
        by_version = {r.version: r for r in mine}
        for version, k in saves.items():
            row = by_version[version]
            assert row.interactions == k and row.author == rater
            array = read_image(ws / row.path, kind="label").array
            assert np.array_equal(array, content(rater, k)), (rater, version)
        current = store.current_path(IMAGE, rater)
        assert file_sha256(current) == mine[-1].sha256


def test_kill_9_during_saves_loses_no_acknowledged_label(tmp_path):
    start = time.monotonic()
    data = make_dataset(tmp_path / "data")
    ws = tmp_path / "ws"
    tokens = {}
    for name in ("ann", "bob"):
        out = subprocess.run(_cli("users", "add", name, "--role", "annotator", "--data",
                                  str(data), "--workspace", str(ws)),
                             capture_output=True, text=True, check=True)
        tokens[name] = out.stdout.strip().splitlines()[-1]
    server = Served(data, ws, tmp_path / "server.log")
    acked: dict[str, dict[int, int]] = {"ann": {}, "bob": {}}
    counters = {"ann": [0], "bob": [0]}
    rng = random.Random(20260521)
    reports = []
    try:
        for round_ in range(3):
            server.start()
            if round_:
                reports.append(httpx.get(f"{server.url}/api/info", headers=auth(tokens["ann"]),
                                         timeout=10).json()["reconcile"])
            streams = [Stream(server.url, tokens[r], r, acked[r], counters[r])
                       for r in ("ann", "bob")]
            for s in streams:
                s.start()
            before = sum(len(a) for a in acked.values())
            deadline = time.monotonic() + 10
            while sum(len(a) for a in acked.values()) < before + 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.6))  # a seeded moment, mid-stream
            server.kill()
            for s in streams:
                s.join(20)
                assert not s.is_alive() and s.unexpected == []
        server.start()
        info = httpx.get(f"{server.url}/api/info", headers=auth(tokens["bob"]), timeout=10)
        reports.append(info.json()["reconcile"])
        with httpx.Client(base_url=server.url, headers=auth(tokens["ann"]), timeout=10) as c:
            for version, k in acked["ann"].items():  # readable through the API after restarts
                r = c.get(f"/api/labels/{IMAGE}/ann?version={version}")
                assert np.array_equal(decoded(r.json()), content("ann", k))
    finally:
        server.stop()
    assert min(len(a) for a in acked.values()) >= 3  # saves were acknowledged in every run
    for report in reports:  # a process kill loses no committed file, alters none
        assert report["missing_files"] == [] and report["altered_files"] == []
        assert all(p.startswith("versions/") for p in report["removed_orphans"])
        assert all(p.startswith("derivatives/labels-") for p in report["rewritten_current"])
    _check_workspace(ws, data, acked)
    print(f"\nkill -9 x3: {sum(len(a) for a in acked.values())} acknowledged saves; "
          f"reconcile reports: {json.dumps(reports)}; {time.monotonic() - start:.1f} s")
    assert time.monotonic() - start < 60


# ----------------------------------------------------------------------------- reconcile
@pytest.fixture
def store(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    yield LabelStore(Datastore(make_dataset(tmp_path / "data")), tmp_path / "ws",
                     session_factory(engine))
    engine.dispose()


def test_reconcile_repairs_what_a_crash_leaves(store):
    ws = store.workspace
    v1 = store.save(IMAGE, "ann", content("ann", 1), base_version=0, author="ann")
    v2 = store.save(IMAGE, "ann", content("ann", 2), base_version=1, author="ann")
    b1 = store.save(IMAGE, "bob", content("bob", 1), base_version=0, author="bob")
    clean = {"removed_orphans": [], "missing_files": [], "altered_files": [],
             "rewritten_current": []}
    assert store.reconcile() == clean
    # a version written but never committed, and a writer's temporary file
    orphan = (ws / v2.path).with_name("v0003-deadbeef.nii.gz")
    orphan.write_bytes((ws / v2.path).read_bytes())
    temp = (ws / v2.path).with_name(".v0003-cafe.nii.gz.x1.tmp.nii.gz")
    temp.write_bytes(b"half")
    # ann's current file is stale (the crash came before it was replaced), with a stray temp
    current = store.current_path(IMAGE, "ann")
    current.write_bytes((ws / v1.path).read_bytes())
    stray = current.with_name(f".{current.name}.0123abcd.tmp")
    stray.write_bytes(b"partial")
    # bob's current file is missing
    store.current_path(IMAGE, "bob").unlink()
    report = store.reconcile()
    assert report == {
        "removed_orphans": sorted([str(orphan.relative_to(ws)), str(temp.relative_to(ws))]),
        "missing_files": [], "altered_files": [],
        "rewritten_current": [str(current.relative_to(ws)),
                              str(store.current_path(IMAGE, "bob").relative_to(ws))]}
    assert not orphan.exists() and not temp.exists() and not stray.exists()
    assert file_sha256(current) == v2.sha256
    assert file_sha256(store.current_path(IMAGE, "bob")) == b1.sha256
    assert store.reconcile() == clean
    # a version file lost or changed by hand: reported, never "repaired" from other data
    (ws / v1.path).unlink()
    with open(ws / b1.path, "ab") as fh:
        fh.write(b"\0")
    report = store.reconcile()
    assert report == {**clean, "missing_files": [v1.path], "altered_files": [b1.path]}
    assert file_sha256(store.current_path(IMAGE, "bob")) == b1.sha256  # current kept
    # the latest version's file lost: reported; the current file, its only copy, is kept
    (ws / v2.path).unlink()
    report = store.reconcile()
    assert report["missing_files"] == [v1.path, v2.path] and report["rewritten_current"] == []
    assert file_sha256(current) == v2.sha256


def test_reconcile_keeps_the_pixel_size_of_png_labels(tmp_path):
    data = make_dataset(tmp_path / "data")
    sidecar = {"PixelSize": [0.1, 0.1], "PixelSizeUnits": "um"}
    (data / "sub-03" / "micr" / "sub-03_sample-a_SEM.json").write_text(json.dumps(sidecar))
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    store = LabelStore(Datastore(data), tmp_path / "ws", session_factory(engine))
    flat = "sub-03_sample-a_SEM"
    mask = np.zeros((64, 56), np.uint8)
    mask[5:20, 8:30] = 1
    store.save(flat, "ann", mask, base_version=0, author="ann")
    assert store.reconcile()["removed_orphans"] == []  # the version's sidecar is kept
    for label in (store.read(flat, "ann"), read_image(store.current_path(flat, "ann"),
                                                      kind="label")):
        assert np.allclose(label.spacing, (1e-4, 1e-4)) and np.array_equal(label.array, mask)
    store.current_path(flat, "ann").with_suffix(".json").unlink()
    assert store.reconcile()["rewritten_current"] == [
        "derivatives/labels-ann/sub-03/micr/sub-03_sample-a_SEM_seg-manual.png"]
    assert np.allclose(read_image(store.current_path(flat, "ann")).spacing, (1e-4, 1e-4))
    engine.dispose()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
