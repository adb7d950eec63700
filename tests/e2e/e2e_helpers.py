"""Helpers and fixtures of the browser tests: `segloop serve` in a subprocess, headless Chromium.

Not a conftest.py (the repository has one, tests/conftest.py): test modules import
what they use from here by name, fixtures included.

- :class:`ServeProcess`: a copy of a shared dataset in a temporary folder, users added
  with ``segloop users add`` (tokens read from its output), ``segloop serve COPY
  --workspace WS --port FREE`` started with ``python -m segloop.cli.main`` and waited
  for on ``/health``; stopped (SIGTERM, then SIGKILL) at the end.
- ``server`` (module scope): that process on ``cxr_lungs`` with users ann, bob
  (annotators) and root (admin).
- ``browser`` (module scope): Debian's Chromium (``/usr/bin/chromium``, or
  ``SEGLOOP_CHROMIUM``) driven by Playwright, headless; the tests are skipped with the
  reason when Playwright or Chromium is missing.
- ``page``: a fresh browser context and page per test (empty localStorage), its
  console errors and page errors collected in ``page.segloop_errors``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import shared

CHROMIUM = Path(os.environ.get("SEGLOOP_CHROMIUM", "/usr/bin/chromium"))
DATASET = "cxr_lungs"
USERS = {"ann": "annotator", "bob": "annotator", "root": "admin"}
BUSY_IDLE = "() => window.segloop && window.segloop.state && window.segloop.state.busy === 0"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def segloop_cmd(*args: str) -> list[str]:
    """The command line of ``segloop ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "segloop.cli.main", *args]


class ServeProcess:
    """``segloop serve`` on a copy of ``data`` in ``root`` (a context manager).

    Attributes: ``url``, ``tokens`` (by user name), ``dataset`` (the copy),
    ``workspace``, ``log_path``.
    """

    def __init__(self, data: Path, root: Path, users: dict[str, str] = USERS):
        self.root = Path(root)
        self.dataset = self.root / Path(data).name
        self.workspace = self.root / "ws"
        self.log_path = self.root / "server.log"
        self.source = Path(data)
        self.users = users
        self.tokens: dict[str, str] = {}
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServeProcess:
        try:
            shutil.copytree(self.source, self.dataset)
            for name, role in self.users.items():
                self.tokens[name] = self.add_user(name, role)
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_user(self, name: str, role: str) -> str:
        """``segloop users add NAME --role ROLE``; the token it prints."""
        out = subprocess.run(
            segloop_cmd("users", "add", name, "--role", role, "--data", str(self.dataset),
                        "--workspace", str(self.workspace)),
            capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"segloop users add {name} failed: {out.stderr[-1500:]}")
        return out.stdout.strip().splitlines()[-1].strip()

    def start(self, timeout: float = 90.0) -> None:
        """Start the server on a free port; wait until ``/health`` answers 200."""
        port = free_port()
        cmd = segloop_cmd("serve", str(self.dataset), "--workspace", str(self.workspace),
                          "--port", str(port), "--log-level", "warning")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"segloop serve exited ({self.proc.returncode}): "
                                   f"{self.log_path.read_text(errors='replace')[-1500:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"segloop serve did not answer within {timeout:g} s")

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc = None

    def api(self, method: str, path: str, user: str = "ann", body=None):
        """(status, JSON answer) of an API request made as ``user``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.tokens[user]}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.loads(e.read() or b"null")

    def label_file(self, image_id: str, rater: str) -> Path:
        """Where the server writes ``rater``'s current label of ``image_id`` (non-BIDS)."""
        return self.workspace / "labels" / rater / f"{image_id}.png"


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return (f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set "
                "SEGLOOP_CHROMIUM)")
    return None


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``segloop serve`` on a temporary copy of cxr_lungs, users ann, bob and root."""
    data = shared(DATASET)
    if not data.is_dir():
        pytest.skip(f"shared data not found: {data}")
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    with ServeProcess(data, tmp_path_factory.mktemp("e2e_server")) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's) driven by Playwright, for the whole module."""
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                               args=["--no-sandbox", "--disable-gpu",
                                     "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page (own context: empty localStorage) of 1200x900 CSS pixels."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg.segloop_errors = []
    pg.on("pageerror", lambda exc: pg.segloop_errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda msg: pg.segloop_errors.append(f"console: {msg.text}")
          if msg.type == "error" else None)
    try:
        yield pg
    finally:
        context.close()


# ------------------------------------------------------------------------------ page helpers
def idle(page, timeout: float = 20_000) -> None:
    """Wait until the page has no request in flight (``window.segloop.state.busy === 0``)."""
    page.wait_for_function(BUSY_IDLE, timeout=timeout)


def shot(page, tmp_path: Path, name: str) -> Path:
    """A screenshot of the page in the test's folder."""
    path = Path(tmp_path) / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def sign_in(page, server: ServeProcess, user: str = "ann", *, path: str = "/") -> None:
    """Open the page, type ``user``'s token into #token, click #signin, wait for the list."""
    page.goto(server.url + path)
    page.wait_for_function("() => window.segloop && window.segloop.ready")
    page.evaluate("() => Promise.resolve(window.segloop.ready).then(() => true)")
    page.fill("#token", server.tokens[user])
    page.click("#signin")
    page.wait_for_selector("#images li[data-image-id]")
    idle(page)


def open_image(page, image_id: str) -> None:
    """Click the image in #images and wait until it is shown and idle."""
    page.click(f'#images li[data-image-id="{image_id}"]')
    page.wait_for_function(
        "(id) => window.segloop.state.imageId === id && window.segloop.state.shape", arg=image_id)
    idle(page)


def to_page(page, y: float, x: float) -> tuple[float, float]:
    """Page coordinates (CSS px) of voxel (y, x) of the current slice."""
    box = page.locator("canvas#view").bounding_box()
    c = page.evaluate("([y, x]) => window.segloop.toCanvas(y, x)", [float(y), float(x)])
    return box["x"] + c["x"], box["y"] + c["y"]


def current_label(page) -> np.ndarray:
    """``window.segloop.label()`` as a NumPy array."""
    lab = page.evaluate(
        "() => { const l = window.segloop.label();"
        " return l ? {shape: Array.from(l.shape), data: Array.from(l.data)} : null; }")
    assert lab is not None, "window.segloop.label() returned nothing"
    return np.asarray(lab["data"], np.uint8).reshape(lab["shape"])


def dice(a, b) -> float:
    """Dice of two binary masks."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)
