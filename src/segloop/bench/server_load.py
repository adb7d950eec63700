"""The moving parts of ``segloop bench server``: the server process, the plan, one client.

:class:`ServerProcess` runs ``segloop serve`` in a subprocess on a free
loopback port with a temporary workspace (never beside the dataset) and
users added beforehand (``root``, an admin, and the names given, annotators).
:func:`plan_calls` lists the tool calls the clients make; :func:`client_loop`
is one simulated annotator (see :mod:`segloop.bench.server`).

Examples
--------
>>> sig = signature("c3", 7)
>>> len(sig), sig[-2:]
(4, [0, 7])
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segloop.errors import SegloopError

__all__ = ["ServerProcess", "client_loop", "digest", "plan_calls", "signature"]

_MAIN = "import sys; from segloop.cli.main import main; sys.exit(main(sys.argv[1:]))"


def digest(array: np.ndarray) -> str:
    """SHA-256 of a label map's values and shape (the dtype does not count)."""
    array = np.asarray(array)
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.uint16).tobytes()
                          + str(array.shape).encode()).hexdigest()


def signature(rater: str, seq: int) -> list[int]:
    """Four label values naming a rater and its save number (written in the first voxels)."""
    tag = hashlib.sha1(rater.encode()).digest()
    return [tag[0], tag[1], (seq >> 8) & 255, seq & 255]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``segloop serve DATA`` in a subprocess (a context manager); ``url`` and ``tokens``."""

    def __init__(self, data: Path, *, users: list[str], db_url: str | None = None):
        self.data = Path(data).resolve()
        self.root = Path(tempfile.mkdtemp(prefix="segloop-bench-server-"))
        self.workspace = self.root / "ws"
        self.db_url = db_url
        self.db = "postgresql" if db_url and db_url.startswith("postgresql") else "sqlite"
        self.users = users
        self.tokens: dict[str, str] = {}
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / "server.log"
        self._datastore = None

    def __enter__(self) -> ServerProcess:
        try:
            self._add_users()
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _add_users(self) -> None:
        from segloop.server.auth import add_user
        from segloop.server.db import connect, migrate, session_factory
        from segloop.server.settings import ServerSettings

        settings = ServerSettings.create(self.data, workspace=self.workspace, db_url=self.db_url)
        settings.workspace.mkdir(parents=True, exist_ok=True)
        engine = connect(settings.db_url)
        migrate(engine)
        with session_factory(engine)() as db:
            self.tokens["root"] = add_user(db, "root", "admin")
            for name in self.users:
                self.tokens[name] = add_user(db, name, "annotator")
        engine.dispose()

    def _start(self, timeout: float = 120.0) -> None:
        import httpx

        port = _free_port()
        cmd = [sys.executable, "-c", _MAIN, "serve", str(self.data), "--workspace",
               str(self.workspace), "--port", str(port), "--log-level", "warning"]
        if self.db_url:
            cmd += ["--db", self.db_url]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SegloopError(f"segloop serve exited ({self.proc.returncode}): "
                                   f"{self.log_path.read_text()[-1500:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SegloopError(f"segloop serve did not answer within {timeout:g} s")

    def workspace_label(self, image_id: str, rater: str) -> Path | None:
        """The rater's current label file of ``image_id`` (None if there is none)."""
        from segloop.server.datastore import Datastore

        if self._datastore is None:
            self._datastore = Datastore(self.data)
        path = self.workspace / self._datastore.label_path(image_id, rater, "seg-manual")
        return path if path.is_file() else None

    def error_lines(self) -> list[str]:
        """Lines of the server's log that report an error."""
        if not self.log_path.is_file():
            return []
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if "error" in line.lower() or "traceback" in line.lower()]

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove the temporary folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        shutil.rmtree(self.root, ignore_errors=True)


def plan_calls(server: ServerProcess, tools, images: int) -> list[dict]:
    """Each tool on ``images`` images spread evenly over the dataset (first to last).

    On the middle slice (axis 0) of a volume, on the whole of a 2D image.
    """
    import httpx

    listed = httpx.get(server.url + "/api/images", timeout=60,
                       headers={"Authorization": f"Bearer {server.tokens['root']}"}).json()
    picks = sorted({int(i) for i in np.linspace(0, len(listed) - 1, min(images, len(listed)))
                    .round()}) if listed else []
    plan = []
    for item in (listed[i] for i in picks):
        shape = item["shape"][: item["ndim"]]
        ref = {"axis": 0, "index": shape[0] // 2} if item["ndim"] == 3 else None
        h, w = shape[-2:]
        cy, cx = h // 2, w // 2
        params = {
            "threshold": {},
            "regiongrow": {"seeds": [[cy, cx]]},
            "graphcut": {"foreground": [[max(cy - 2, 0), cx], [min(cy + 2, h - 1), cx]],
                         "background": [[[0, 0], [0, w - 1]], [[h - 1, 0], [h - 1, w - 1]]]},
        }
        plan += [{"image_id": item["id"], "shape": shape, "slice": ref, "tool": tool,
                  "params": params[tool]} for tool in tools]
    if not plan:
        raise SegloopError(f"no image to work on in {server.data}")
    return plan


def _label(call: dict, mask: np.ndarray, rater: str, seq: int) -> np.ndarray:
    """The label saved after ``call``: its result in its slice, and a signature."""
    full = np.zeros(call["shape"], np.uint8)
    if call["slice"] is None:
        full[...] = mask
    else:
        full[call["slice"]["index"]] = mask
    full.reshape(-1)[:4] = signature(rater, seq)
    return full


def client_loop(*, url: str, token: str, rater: str, plan: list[dict], deadline: float,
                save_every: int, think_ms: float, seed: int, offset: int, records: list,
                acked: dict, max_calls: int | None = None) -> None:
    """One simulated annotator until ``deadline`` (``time.monotonic``); appends to ``records``.

    Each record: ``kind`` (tool, save), ``tool``, ``image_id``, ``status``
    (-1: no answer), ``ms``.  Acknowledged saves go to ``acked[(image, rater, version)] = digest``.
    """
    import httpx

    from segloop.server.masks import MaskPayload, decode_mask, encode_mask

    rng = np.random.default_rng(seed)
    base: dict[str, int] = {}
    seq = calls = 0
    with httpx.Client(base_url=url, timeout=120,
                      headers={"Authorization": f"Bearer {token}"}) as http:

        def timed(kind, call, method, path, **kw):
            t0 = time.perf_counter()
            try:
                r = http.request(method, path, **kw)
                status = r.status_code
            except httpx.HTTPError:
                r, status = None, -1
            records.append({"kind": kind, "tool": call["tool"], "image_id": call["image_id"],
                            "status": status, "ms": 1000 * (time.perf_counter() - t0)})
            return r

        while time.monotonic() < deadline and (max_calls is None or calls < max_calls):
            call = plan[(offset + calls) % len(plan)]
            calls += 1
            r = timed("tool", call, "POST", f"/api/tools/{call['tool']}/apply",
                      json={"image_id": call["image_id"], "slice": call["slice"],
                            "params": call["params"]})
            if r is not None and r.status_code == 200 and calls % save_every == 0:
                seq += 1
                mask = decode_mask(MaskPayload(**r.json()["mask"]), max_voxels=2**34)
                label = _label(call, mask, rater, seq)
                image_id = call["image_id"]
                for _ in range(5):  # a 409 (another save of this rater landed): reload, retry
                    if image_id not in base:
                        got = http.get(f"/api/labels/{image_id}").json()["raters"]
                        base[image_id] = got.get(rater, 0)
                    s = timed("save", call, "PUT", f"/api/labels/{image_id}/{rater}",
                              json={"base_version": base[image_id], "tools": [call["tool"]],
                                    "mask": encode_mask(label).model_dump(), "interactions": 1})
                    if s is not None and s.status_code == 201:
                        base[image_id] = s.json()["version"]
                        acked[(image_id, rater, base[image_id])] = digest(label)
                        break
                    base.pop(image_id, None)
                    if s is None or s.status_code != 409:
                        break
            if think_ms:
                pause = think_ms / 1000 * rng.uniform(0.5, 1.5)
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
