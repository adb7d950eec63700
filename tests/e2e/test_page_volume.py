"""A BRATS tumour annotated on two axial slices of a volume, interpolated between them and
saved -- only with the page, in headless Chromium (issue 6, "done when").

`segloop serve` runs on a temporary copy of ../shared/data/brats2013 (FLAIR volumes
155x240x240 with the manual tumour labels). Only the slices a check needs cross from the
page into Python (a whole volume as a JSON list takes Playwright minutes); about 18 s.
"""

from __future__ import annotations

import e2e_helpers
import numpy as np
import pytest
from e2e_helpers import ServeProcess, dice, idle, open_image, shot, sign_in
from scipy import ndimage
from test_page import box_and_click, no_page_errors, select_tool

from conftest import shared
from segloop.io import read_image
from segloop.io.dataset import open_dataset

browser = e2e_helpers.browser
page = e2e_helpers.page  # on the BRATS `server` below
CASE = "brats_2013_pat0003_1"


@pytest.fixture(scope="module")
def server():
    """``segloop serve`` on a temporary copy of brats2013 (users ann, bob, root)."""
    data = shared("brats2013")
    if not data.is_dir():
        pytest.skip(f"shared data not found: {data}")
    reason = e2e_helpers.browser_unavailable()
    if reason:
        pytest.skip(reason)
    with ServeProcess(data) as proc:
        yield proc


def _go_to_slice(page, index: int) -> None:
    """Scroll with the arrow keys until the axial slice ``index`` is shown."""
    page.click("canvas#view", position={"x": 5, "y": 5}, modifiers=[], button="left",
               trial=True)
    for _ in range(400):
        now = page.evaluate("() => window.segloop.state.index")
        if now == index:
            idle(page)
            return
        key = "ArrowUp" if now < index else "ArrowDown"
        page.keyboard.press(key)
        after = page.evaluate("() => window.segloop.state.index")
        if after != now and (after - now) * (index - now) < 0:  # arrows go the other way
            page.keyboard.press("ArrowDown" if key == "ArrowUp" else "ArrowUp")
            page.keyboard.press("ArrowDown" if key == "ArrowUp" else "ArrowUp")
    raise AssertionError(f"could not reach slice {index}")


def _slices(page, z0: int, z1: int) -> np.ndarray:
    """Slices ``z0..z1`` of the page's label (only those cross into Python: a whole volume as
    a JSON list of numbers takes Playwright minutes)."""
    lab = page.evaluate(
        "([z0, z1]) => { const l = window.segloop.label(); const n = l.shape[1] * l.shape[2];"
        " return {shape: Array.from(l.shape),"
        " data: Array.from(l.data.subarray(z0 * n, (z1 + 1) * n))}; }", [z0, z1])
    shape = lab["shape"]
    return np.asarray(lab["data"], np.uint8).reshape(z1 - z0 + 1, shape[1], shape[2])


def _labelled_voxels(page) -> int:
    return page.evaluate("() => window.segloop.label().data.reduce((a, v) => a + (v > 0), 0)")


def test_tumour_on_two_slices_interpolated_and_saved(page, server, tmp_path):
    truth = open_dataset(server.dataset)[CASE].read_label().array > 0
    areas = truth.sum(axis=(1, 2))
    zc = int(np.argmax(areas))
    z1, z2 = zc - 4, zc + 4
    sign_in(page, server)
    open_image(page, CASE)
    assert page.evaluate("() => window.segloop.state.shape") == list(truth.shape)
    select_tool(page, "boxclicks")
    drawn = {}
    for z in (z1, z2):
        _go_to_slice(page, z)
        labels, _ = ndimage.label(truth[z])
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        tumour = labels == int(np.argmax(sizes))
        box_and_click(page, tumour)
        drawn[z] = dice(_slices(page, z, z)[0], tumour)
        select_tool(page, "boxclicks")  # a new object session for the next slice
    shot(page, tmp_path, "two_slices")
    assert min(drawn.values()) >= 0.8, drawn
    assert not _slices(page, z1 + 1, z2 - 1).any()  # nothing between the drawn slices yet
    select_tool(page, "interpolate")
    page.click("#apply")
    idle(page)
    label = _slices(page, z1, z2)
    assert all(s.any() for s in label)
    assert dice(label[zc - z1], truth[zc]) >= 0.7
    shot(page, tmp_path, "interpolated")
    page.click("#save")
    idle(page)
    assert page.evaluate("() => window.segloop.state.version") == 1
    saved = read_image(server.workspace_label(CASE, "ann")).array > 0
    assert np.array_equal(saved[z1:z2 + 1], label > 0)
    assert int(saved.sum()) == int((label > 0).sum()) == _labelled_voxels(page)
    no_page_errors(page)
