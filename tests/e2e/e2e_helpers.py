"""Helpers and fixtures of the browser tests: `segloop serve` in a subprocess, headless Chromium.

Not a conftest.py (the repository has one, tests/conftest.py): test modules import
what they use from here by name, fixtures included.

- :class:`ServeProcess`: ``segloop serve DATA`` in a subprocess on a free loopback
  port with a temporary workspace (the dataset is only read), as ``segloop bench server``
  runs it (:class:`segloop.bench.server_load.ServerProcess`), plus :meth:`~ServeProcess.api`.
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
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import shared
from segloop.bench.server_load import ServerProcess

CHROMIUM = Path(os.environ.get("SEGLOOP_CHROMIUM", "/usr/bin/chromium"))
DATASET = "cxr_lungs"
USERS = {"ann": "annotator", "bob": "annotator", "root": "admin"}
BUSY_IDLE = "() => window.segloop && window.segloop.state && window.segloop.state.busy === 0"


class ServeProcess(ServerProcess):
    """``segloop serve`` on a shared dataset (read only; temporary workspace), as the
    benchmark runs it: users ann and bob (annotators) and root (admin).

    Adds ``dataset`` (the folder served) and :meth:`api` to
    :class:`segloop.bench.server_load.ServerProcess` (``url``, ``tokens``, ``workspace``).
    """

    def __init__(self, data: Path):
        super().__init__(Path(data), users=[u for u, r in USERS.items() if r == "annotator"])
        self.dataset = self.data

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
    with ServeProcess(data) as proc:
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
