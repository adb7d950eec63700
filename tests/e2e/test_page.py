"""The annotation page in a real browser (headless Chromium + Playwright), issue 6 item 4.

`segloop serve` runs on a temporary copy of ../shared/data/cxr_lungs (chest X-rays,
512x512, manual lung masks); every test gets a fresh page and follows the DOM contract
of the page (ids, data attributes and the ``window.segloop`` test hooks). The tools are
driven with the mouse at voxels placed by ``window.segloop.toCanvas`` and the labels the
page holds are scored against the manual mask of one lung (its larger connected
component). Screenshots of the key steps go to each test's tmp_path.

Images: "1" boxclicks/save/reload, "2" livewire/undo/redo, "3" second rater,
"4" stale save (each test works on its own image: the server lives for the module).
"""

from __future__ import annotations

import re

import e2e_helpers
import numpy as np
from e2e_helpers import current_label, dice, idle, open_image, shot, sign_in, to_page
from scipy import ndimage

from segloop.io import read_image
from segloop.io.dataset import open_dataset
from segloop.server.masks import encode_mask
from segloop.tools.contour import mask_contour

# the fixtures of e2e_helpers (module-scoped server and browser, a fresh page per test)
server = e2e_helpers.server
browser = e2e_helpers.browser
page = e2e_helpers.page


# the shortcuts of the DOM contract: key -> what #help must say it does (letters only)
SHORTCUTS = {"b": "boxclicks", "l": "livewire", "g": "geodesic", "c": "graphcut",
             "f": "finetune", "p": "brush", "e": "eraser", "o": "polygon", "t": "threshold",
             "r": "regiongrow", "i": "interpolate", "k": "islands", "n": "nextimage",
             "ctrl+s": "save", "ctrl+z": "undo", "ctrl+shift+z": "redo", "escape": "cancel"}


def lung(server, image_id: str) -> np.ndarray:
    """The larger lung (largest connected component) of the image's manual mask."""
    case = open_dataset(server.dataset)[image_id]
    labels, _ = ndimage.label(case.read_label().array > 0)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def no_page_errors(page) -> None:
    """No uncaught exception or unhandled rejection in the page."""
    errors = [e for e in page.segloop_errors if e.startswith("pageerror")]
    assert not errors, errors


def select_tool(page, name: str) -> None:
    page.click(f'button[data-tool="{name}"]')
    page.wait_for_function("(t) => window.segloop.state.tool === t", arg=name)


def box_and_click(page, mask: np.ndarray) -> None:
    """Boxclicks: drag the mask's bounding box, then one positive click deep inside it."""
    ys, xs = np.nonzero(mask)
    x0, y0 = to_page(page, ys.min(), xs.min())
    x1, y1 = to_page(page, ys.max(), xs.max())
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    idle(page)
    depth = ndimage.distance_transform_edt(mask)
    cy, cx = np.unravel_index(int(np.argmax(depth)), mask.shape)
    page.mouse.click(*to_page(page, cy, cx))
    idle(page)


def save(page) -> None:
    page.click("#save")
    idle(page)


# ------------------------------------------------------------------------------ sign-in
def test_sign_in_lists_images(page, server, tmp_path):
    sign_in(page, server)
    shot(page, tmp_path, "signed-in")
    status, rows = server.api("GET", "/api/images")
    assert status == 200
    items = page.locator("#images li[data-image-id]")
    ids = [items.nth(i).get_attribute("data-image-id") for i in range(items.count())]
    assert ids == [r["id"] for r in rows] == ["1", "2", "3", "4"]
    for i, image_id in enumerate(ids):
        assert image_id in items.nth(i).inner_text()
    assert page.evaluate("() => localStorage.getItem('segloop.token')") == server.tokens["ann"]
    assert page.evaluate("() => window.segloop.state.user") == "ann"
    no_page_errors(page)


def test_bad_token_shows_message_and_page_stays_usable(page, server, tmp_path):
    page.goto(server.url + "/")
    page.wait_for_function("() => window.segloop && window.segloop.ready")
    page.fill("#token", "not-a-valid-token")
    page.click("#signin")
    message = page.locator("#message")
    message.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#message').innerText.trim() !== ''")
    assert message.get_attribute("role") == "alert"
    shot(page, tmp_path, "bad-token")
    assert page.locator("#images li[data-image-id]").count() == 0
    sign_in(page, server)  # still usable: the right token works
    assert page.locator("#images li[data-image-id]").count() == 4
    no_page_errors(page)


def test_open_image_shows_it(page, server, tmp_path):
    sign_in(page, server)
    open_image(page, "1")
    shot(page, tmp_path, "opened")
    state = page.evaluate("() => window.segloop.state")
    assert state["imageId"] == "1" and list(state["shape"]) == [512, 512]
    assert page.locator("canvas#view").is_visible()
    # the canvas is drawn: not a blank canvas
    drawn = page.evaluate("""() => { const c = document.querySelector('canvas#view');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] || d[i+1] || d[i+2]) n++;
        return n / (d.length / 4); }""")
    assert drawn > 0.2, f"only {drawn:.0%} of the canvas is drawn"
    # the coordinate hooks are inverse of each other
    yx = page.evaluate("() => { const p = window.segloop.toCanvas(200, 300);"
                       " return window.segloop.toVoxel(p.x, p.y); }")
    assert [round(v) for v in yx] == [200, 300]
    no_page_errors(page)


# ------------------------------------------------------------------------------ tools
def test_boxclicks_save_and_reload(page, server, tmp_path):
    truth = lung(server, "1")
    sign_in(page, server)
    open_image(page, "1")
    select_tool(page, "boxclicks")
    box_and_click(page, truth)
    shot(page, tmp_path, "boxclicks")
    label = current_label(page)
    assert label.shape == truth.shape
    assert dice(label, truth) >= 0.85, dice(label, truth)
    assert page.evaluate("() => window.segloop.state.dirty") is True

    save(page)
    shot(page, tmp_path, "saved")
    assert page.evaluate("() => window.segloop.state.version") == 1
    assert "v1" in page.locator("#status").inner_text()
    saved = read_image(server.workspace_label("1", "ann")).array
    np.testing.assert_array_equal(saved, label)
    status, out = server.api("GET", "/api/labels/1/ann")
    assert status == 200 and out["version"] == 1

    page.reload()  # the token is remembered: signed in again
    page.wait_for_selector("#images li[data-image-id]")
    idle(page)
    assert "v1" in page.locator('#images li[data-image-id="1"]').inner_text()
    open_image(page, "1")
    page.wait_for_function("() => window.segloop.state.version === 1")
    shot(page, tmp_path, "reloaded")
    assert "v1" in page.locator("#status").inner_text()
    np.testing.assert_array_equal(current_label(page), saved)
    no_page_errors(page)


def test_livewire_then_undo_redo(page, server, tmp_path):
    truth = lung(server, "2")
    contour = mask_contour(truth)
    anchors = contour[np.linspace(0, len(contour), 6, endpoint=False).astype(int)]
    sign_in(page, server)
    open_image(page, "2")
    before = current_label(page)
    select_tool(page, "livewire")
    for y, x in anchors:
        page.mouse.move(*to_page(page, y, x), steps=3)
        page.mouse.click(*to_page(page, y, x))
        idle(page)
    shot(page, tmp_path, "livewire-anchors")
    page.keyboard.press("Enter")
    idle(page)
    shot(page, tmp_path, "livewire-closed")
    after = current_label(page)
    assert dice(after, truth) >= 0.85, dice(after, truth)

    page.click("#undo")
    idle(page)
    np.testing.assert_array_equal(current_label(page), before, "undo")
    page.click("#redo")
    idle(page)
    np.testing.assert_array_equal(current_label(page), after, "redo")
    page.keyboard.press("Control+z")
    idle(page)
    np.testing.assert_array_equal(current_label(page), before, "ctrl+z")
    page.keyboard.press("Control+Shift+z")
    idle(page)
    np.testing.assert_array_equal(current_label(page), after, "ctrl+shift+z")
    no_page_errors(page)


# ------------------------------------------------------------------------------ workflow
def test_second_rater_does_not_see_first_raters_label(page, server, tmp_path):
    status, _ = server.api("PUT", "/api/labels/3/ann", body={
        "base_version": 0, "mask": encode_mask(lung(server, "3").astype(np.uint8)).model_dump()})
    assert status == 201
    sign_in(page, server, "bob")
    assert page.evaluate("() => window.segloop.state.user") == "bob"
    assert "v1" not in page.locator('#images li[data-image-id="3"]').inner_text()
    open_image(page, "3")
    shot(page, tmp_path, "bob")
    assert page.evaluate("() => window.segloop.state.version") == 0
    assert not current_label(page).any()
    no_page_errors(page)


def test_keyboard_shortcuts(page, server, tmp_path):
    sign_in(page, server)
    open_image(page, "2")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    help_box = page.locator("#help")
    page.keyboard.press("?")
    help_box.wait_for(state="visible")
    shot(page, tmp_path, "help")
    lines = help_box.inner_text().lower().splitlines()
    for key, action in SHORTCUTS.items():  # a line "KEY <sep> ...ACTION..." for each shortcut
        assert any(re.match(rf"{re.escape(key)}\b", line)
                   and action in re.sub(r"[^a-z]", "", line) for line in lines), \
            f"#help does not list {key!r} ({action})"
    page.keyboard.press("?")
    help_box.wait_for(state="hidden")
    page.keyboard.press("l")
    page.wait_for_selector('button[data-tool="livewire"].active')
    assert page.evaluate("() => window.segloop.state.tool") == "livewire"
    page.keyboard.press("b")
    page.wait_for_selector('button[data-tool="boxclicks"].active')
    assert page.locator("button[data-tool].active").count() == 1
    no_page_errors(page)


def test_stale_save_opens_conflict_then_keep_mine(page, server, tmp_path):
    truth = lung(server, "4")
    sign_in(page, server)
    open_image(page, "4")
    assert page.evaluate("() => window.segloop.state.version") == 0
    select_tool(page, "boxclicks")
    box_and_click(page, truth)
    mine = current_label(page)
    # meanwhile the same rater saves from elsewhere: the page's base version is stale
    other = np.zeros_like(mine)
    other[10:20, 10:20] = 1
    status, _ = server.api("PUT", "/api/labels/4/ann",
                           body={"base_version": 0, "mask": encode_mask(other).model_dump()})
    assert status == 201
    page.click("#save")
    page.locator("#conflict").wait_for(state="visible")
    idle(page)
    shot(page, tmp_path, "conflict")
    assert page.locator("#conflict-reload").is_visible()
    page.click("#conflict-keep")
    page.wait_for_function("() => window.segloop.state.version === 2")
    idle(page)
    page.locator("#conflict").wait_for(state="hidden")
    shot(page, tmp_path, "kept")
    np.testing.assert_array_equal(read_image(server.workspace_label("4", "ann")).array, mine)
    assert "v2" in page.locator("#status").inner_text()
    page.wait_for_selector('#versions li[data-version="2"] button[data-revert="2"]')
    assert page.locator('#versions li[data-version="1"]').count() == 1
    no_page_errors(page)


def test_next_image_opens_the_servers_next(page, server, tmp_path):
    status, nxt = server.api("GET", "/api/active/next", user="bob")
    assert status == 200 and nxt["image_id"] is not None
    sign_in(page, server, "bob")
    page.click("#next-image")
    page.wait_for_function("(id) => window.segloop.state.imageId === id", arg=nxt["image_id"])
    idle(page)
    shot(page, tmp_path, "next")
    no_page_errors(page)


def test_brush_then_eraser(page, server, tmp_path):
    sign_in(page, server)
    open_image(page, "2")
    select_tool(page, "brush")
    page.fill("#brush-size", "8")
    page.dispatch_event("#brush-size", "change")

    def stroke(y, x0, x1):
        page.mouse.move(*to_page(page, y, x0))
        page.mouse.down()
        for x in np.linspace(x0, x1, 12):
            page.mouse.move(*to_page(page, y, x))
        page.mouse.up()
        idle(page)

    stroke(250, 150, 250)
    shot(page, tmp_path, "brushed")
    painted = current_label(page)
    assert painted[250, 160:240].all(), "the brush stroke left gaps"
    rows = np.nonzero(painted.any(axis=1))[0]
    assert rows.min() >= 250 - 15 and rows.max() <= 250 + 15, (rows.min(), rows.max())
    select_tool(page, "eraser")
    stroke(250, 140, 260)
    shot(page, tmp_path, "erased")
    assert not current_label(page)[250, 150:250].any(), "the eraser left pixels on its path"
    no_page_errors(page)
