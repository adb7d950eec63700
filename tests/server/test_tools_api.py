"""/api/tools: every tool through the API, livewire sessions, and hostile tool requests."""

import json
import threading

import numpy as np
import pytest
from server_helpers import auth

from segloop.data import phantom_2d, phantom_3d
from segloop.metrics import dice
from segloop.server.masks import MaskPayload, decode_mask, encode_mask
from segloop.tools.apply import apply_tool
from segloop.tools.contour import mask_contour

VOL = "sub-01_T2w"
PNG = "sub-03_sample-a_SEM"
TRUTH3 = phantom_3d((24, 48, 40), seed=0).label == 1  # a blob around (8, 21, 23)
TRUTH2 = phantom_2d((64, 56), seed=5).label == 1  # a disc around (13, 16), radius 9


def _contour_anchors(truth, n=6):
    contour = mask_contour(truth)
    return [list(map(int, contour[i])) for i in np.linspace(0, len(contour) - 1, n + 1)[:-1]
            .astype(int)]


def _apply(client, token, tool, body, status=200):
    r = client.post(f"/api/tools/{tool}/apply", json=body, headers=auth(token))
    assert r.status_code == status, r.json()
    return r.json()


def _mask(answer):
    return decode_mask(MaskPayload(**answer["mask"]), max_voxels=10**7)


def test_tool_list(served):
    client, tokens = served
    tools = client.get("/api/tools", headers=auth(tokens["ann"])).json()
    assert [t["name"] for t in tools][:2] == ["livewire", "geodesic"] and len(tools) == 11
    by_name = {t["name"]: t for t in tools}
    assert by_name["livewire"]["ndims"] == [2] and by_name["interpolate"]["needs_label"]
    assert "foreground" in by_name["graphcut"]["params"]
    assert by_name["graphcut"]["required"] == ["foreground", "background"]


def test_whole_volume_tools_match_the_library(served):
    client, tokens = served
    image = client.app.state.segloop.datastore.image(VOL)
    th = _apply(client, tokens["ann"], "threshold", {"image_id": VOL, "params": {"low": "otsu"}})
    expected = apply_tool("threshold", image, None, {"low": "otsu"})
    assert th["slice"] is None and th["mask"]["shape"] == [24, 48, 40]
    assert np.array_equal(_mask(th), expected) and th["voxels"] == int(expected.sum())
    rg = _apply(client, tokens["bob"], "regiongrow",
                {"image_id": VOL, "params": {"seeds": [[8, 21, 23]], "tolerance": 0.15}})
    assert dice(_mask(rg) > 0, TRUTH3) >= 0.9 and rg["ms"] > 0


def test_slice_tools(served):
    client, tokens = served
    gc = _apply(client, tokens["ann"], "graphcut", {
        "image_id": VOL, "slice": {"axis": 0, "index": 8},
        "params": {"foreground": [[20, 22], [22, 24]], "background": [[5, 30], [40, 30]]}})
    assert gc["slice"] == {"axis": 0, "index": 8} and gc["mask"]["shape"] == [48, 40]
    assert dice(_mask(gc) > 0, TRUTH3[8]) >= 0.95
    poly = _apply(client, tokens["ann"], "polygon", {
        "image_id": VOL, "slice": {"axis": 1, "index": 20},
        "params": {"vertices": [[2, 3], [2, 12], [9, 12], [9, 3]], "value": 4}})
    m = _mask(poly)
    assert m.shape == (24, 40) and set(np.unique(m)) == {0, 4} and poly["voxels"] == 80
    assert (m[2:10, 3:13] == 4).all()
    brush = _apply(client, tokens["ann"], "brush", {
        "image_id": PNG, "slice": {"axis": 0, "index": 0},  # a 2D image's one slice
        "params": {"points": [[30, 30], [30, 40]], "radius_mm": 3}})
    expected = apply_tool("brush", client.app.state.segloop.datastore.image(PNG), None,
                          {"points": [[30, 30], [30, 40]], "radius_mm": 3})
    assert brush["slice"] is None and np.array_equal(_mask(brush), expected)


def test_point_and_contour_tools_on_a_2d_image(served):
    client, tokens = served
    anchors = _contour_anchors(TRUTH2)
    for tool in ("livewire", "geodesic"):
        out = _apply(client, tokens["ann"], tool, {"image_id": PNG, "params": {"anchors": anchors}})
        assert dice(_mask(out) > 0, TRUTH2) >= 0.9, tool
    bc = _apply(client, tokens["ann"], "boxclicks",
                {"image_id": PNG, "params": {"box": [[5, 7], [21, 25]]}})
    assert dice(_mask(bc) > 0, TRUTH2) >= 0.95


def test_label_sources_payload_and_mine(served):
    client, tokens = served
    st = client.app.state.segloop
    two = np.zeros((64, 56), np.uint8)
    two[5:15, 5:15] = 1
    two[40:43, 40:43] = 1
    body = {"image_id": PNG, "params": {"operation": "keep_largest"},
            "label": {"source": "payload", "payload": encode_mask(two).model_dump()}}
    kept = _mask(_apply(client, tokens["ann"], "islands", body))
    assert kept.sum() == 100 and kept[5:15, 5:15].all()
    grown = _apply(client, tokens["ann"], "smooth", {
        "image_id": PNG, "params": {"operation": "grow", "size_mm": 1},
        "label": {"source": "payload", "payload": encode_mask(two).model_dump()}})
    expected = apply_tool("smooth", st.datastore.image(PNG), two,
                          {"operation": "grow", "size_mm": 1})
    assert np.array_equal(_mask(grown), expected) and grown["voxels"] == 100 + 40 + 9 + 12
    # "mine": zeros before the first save, then the caller's latest version
    empty = _apply(client, tokens["ann"], "islands", {
        "image_id": PNG, "params": {"operation": "keep_largest"}, "label": {"source": "mine"}})
    assert empty["voxels"] == 0
    st.labels.save(PNG, "ann", two, base_version=0, author="ann")
    mine = _apply(client, tokens["ann"], "islands", {
        "image_id": PNG, "params": {"operation": "keep_largest"}, "label": {"source": "mine"}})
    assert mine["voxels"] == 100
    bobs = _apply(client, tokens["bob"], "islands", {
        "image_id": PNG, "params": {"operation": "keep_largest"}, "label": {"source": "mine"}})
    assert bobs["voxels"] == 0  # bob's own label: none yet


def test_interpolate_a_volume_and_a_slice_payload(served):
    client, tokens = served
    label = np.zeros((24, 48, 40), np.uint8)
    label[4, 10:20, 10:20] = 1
    label[10, 10:20, 10:20] = 1
    out = _apply(client, tokens["ann"], "interpolate", {
        "image_id": VOL, "params": {"axis": 0},
        "label": {"source": "payload", "payload": encode_mask(label).model_dump()}})
    m = _mask(out)
    assert all(np.array_equal(m[z], label[4]) for z in range(4, 11)) and m[:4].sum() == 0
    # a slice-shaped payload is that slice of the label
    plane = np.zeros((48, 40), np.uint8)
    plane[0:30, 0:30] = 1
    plane[40:42, 35:37] = 1
    kept = _apply(client, tokens["ann"], "islands", {
        "image_id": VOL, "slice": {"axis": 0, "index": 3}, "params": {"operation": "remove_small",
                                                                    "min_voxels": 10},
        "label": {"source": "payload", "payload": encode_mask(plane).model_dump()}})
    assert kept["voxels"] == 900


def test_livewire_session_flow(served):
    client, tokens = served
    h = auth(tokens["ann"])
    r = client.post("/api/tools/livewire/sessions", json={"image_id": PNG}, headers=h)
    assert r.status_code == 200 and r.json()["expires_in_s"] == 600
    assert r.json()["shape"] == [64, 56]
    sid = r.json()["session_id"]
    anchors = _contour_anchors(TRUTH2)
    first = client.post(f"/api/tools/livewire/sessions/{sid}/anchors", json={"point": anchors[0]},
                        headers=h).json()
    assert first["path"] == [anchors[0]]
    preview = client.get(f"/api/tools/livewire/sessions/{sid}/preview?y={anchors[1][0]}"
                         f"&x={anchors[1][1]}", headers=h).json()["path"]
    assert preview[0] == anchors[0] and preview[-1] == anchors[1]
    for a in anchors[1:]:
        seg = client.post(f"/api/tools/livewire/sessions/{sid}/anchors", json={"point": a},
                          headers=h).json()
        assert seg["path"][-1] == a
    assert len(seg["anchors"]) == 6
    closed = client.post(f"/api/tools/livewire/sessions/{sid}/close", headers=h).json()
    mask = _mask(closed)
    assert mask.shape == (64, 56) and dice(mask > 0, TRUTH2) >= 0.9
    lib = apply_tool("livewire", client.app.state.segloop.datastore.image(PNG), None,
                     {"anchors": anchors})
    assert np.array_equal(mask, lib)  # the same contour as the one-shot tool
    assert client.post(f"/api/tools/livewire/sessions/{sid}/undo", headers=h).status_code == 200
    # another user's session is not found; deleted sessions neither
    other = client.get(f"/api/tools/livewire/sessions/{sid}/preview?y=1&x=1",
                       headers=auth(tokens["bob"]))
    assert other.status_code == 404 and "no tool session" in other.json()["error"]
    assert client.delete(f"/api/tools/livewire/sessions/{sid}",
                         headers=auth(tokens["root"])).status_code == 404
    assert client.delete(f"/api/tools/livewire/sessions/{sid}", headers=h).status_code == 200
    assert client.post(f"/api/tools/livewire/sessions/{sid}/close", headers=h).status_code == 404


def test_livewire_session_on_a_volume_slice_expiry_and_limit(served):
    client, tokens = served
    h = auth(tokens["ann"])
    reg = client.app.state.segloop.extras["tool_sessions"]
    now = [1000.0]
    reg.clock = lambda: now[0]
    body = {"image_id": VOL, "slice": {"axis": 0, "index": 8}, "params": {"sigma": 1.5}}
    sid = client.post("/api/tools/livewire/sessions", json=body, headers=h).json()["session_id"]
    seg = client.post(f"/api/tools/livewire/sessions/{sid}/anchors", json={"point": [17, 23]},
                      headers=h)
    assert seg.status_code == 200
    now[0] += 599  # still alive: each access restarts the idle time
    assert client.get(f"/api/tools/livewire/sessions/{sid}/preview?y=21&x=27",
                      headers=h).status_code == 200
    now[0] += 601
    r = client.get(f"/api/tools/livewire/sessions/{sid}/preview?y=21&x=27", headers=h)
    assert r.status_code == 404 and "expired after 600 s idle" in r.json()["error"]
    sids = []
    for _ in range(9):  # 8 per user: the least recently used is dropped
        now[0] += 1
        sids.append(client.post("/api/tools/livewire/sessions", json=body,
                                headers=h).json()["session_id"])
    codes = [client.get(f"/api/tools/livewire/sessions/{s}/preview?y=1&x=1",
                        headers=h).status_code for s in sids]
    assert codes == [404] + [400] * 8  # alive, but no anchor placed yet
    assert len(reg) == 8
    r = client.post("/api/tools/livewire/sessions", json={"image_id": VOL}, headers=h)
    assert r.status_code == 422 and "a slice of a volume" in r.json()["error"]


def test_sessions_are_bounded_in_pixels(served):
    client, tokens = served
    reg = client.app.state.segloop.extras["tool_sessions"]
    reg.max_weight = 2 * 64 * 56  # room for two sessions on the 2D image

    def open_one(user):
        r = client.post("/api/tools/livewire/sessions", json={"image_id": PNG},
                        headers=auth(tokens[user]))
        return r.status_code, r.json()

    first = open_one("ann")[1]["session_id"]
    open_one("bob")
    open_one("rev")  # the least recently used of anyone (ann's) makes room
    assert len(reg) == 2 and client.post(f"/api/tools/livewire/sessions/{first}/close",
                                         headers=auth(tokens["ann"])).status_code == 404
    reg.max_weight = 1000
    status, body = open_one("ann")
    assert status == 413 and body["error"] == ("a slice of 3584 pixels is too large for a "
                                               "livewire session (limit 1000)")


def test_concurrent_tool_calls(served):
    client, tokens = served
    results, errors = [], []

    def call():
        try:
            r = client.post("/api/tools/regiongrow/apply", headers=auth(tokens["ann"]), json={
                "image_id": VOL, "params": {"seeds": [[8, 21, 23]], "tolerance": 0.15}})
            results.append(r.json()["voxels"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1 and len(results) == 4


_BIG_STROKE = [[i % 48, i % 40] for i in range(30_000)]


@pytest.mark.parametrize(
    ("tool", "body", "status", "message"),
    [
        ("regiongrow", '{"image_id": "sub-01_T2w", "params": {"seeds": [[NaN, 1, 2]]}}', 422,
         "params.seeds: nan is not a finite number"),
        ("graphcut", {"image_id": VOL, "params": {"foreground": [[1, 2]], "background": [[1, 1,
                                                                                          1]]}},
         422, "params.foreground: point [1, 2] has 2 coordinates; points here are [z, y, x]"),
        ("regiongrow", {"image_id": VOL, "params": {"seeds": [[1, 2, 99]]}}, 422,
         "x=99 is outside 0..39"),
        ("brush", {"image_id": VOL, "slice": {"axis": 0, "index": 10**9}, "params": {}}, 422,
         "slice index 1000000000 on axis 0 is outside 0..23"),
        ("brush", {"image_id": VOL, "slice": {"axis": 0, "index": 10**30}, "params": {}}, 422,
         "invalid request: body.slice.index"),
        ("brush", {"image_id": VOL, "slice": {"axis": 3, "index": 0}, "params": {}}, 422,
         "invalid request: body.slice.axis"),
        ("brush", {"image_id": PNG, "slice": {"axis": 1, "index": 0}, "params": {}}, 422,
         "a 2D image has one slice"),
        ("nope", {"image_id": VOL}, 404, "no tool 'nope'; tools: livewire, geodesic"),
        ("threshold", {"image_id": "sub-99"}, 404, "no image 'sub-99' in this dataset"),
        ("threshold", {"image_id": "../sub-01/anat/sub-01_T2w.nii.gz"}, 404, "no image '../sub"),
        ("graphcut", {"image_id": PNG, "params": {"foreground": _BIG_STROKE, "background": []}},
         413, "exceed the limit of 262144"),
        ("threshold", {"image_id": PNG, "params": {f"k{i}": i for i in range(40)}}, 422,
         "invalid request: body.params"),
        ("threshold", {"image_id": PNG, "params": {"bogus": 1}}, 400, "has no parameter 'bogus'"),
        ("threshold", {"image_id": PNG, "params": {"value": 70000}}, 422,
         "params.value: a label value is an integer in 0..65535"),
        ("livewire", {"image_id": VOL, "params": {"anchors": [[1, 1, 1], [1, 5, 5], [5, 5, 1]]}},
         400, "works on 2D images and this image is 3D"),
        ("islands", {"image_id": PNG, "params": {"operation": "keep_largest"}}, 400,
         "edits a label map"),
        ("islands", {"image_id": PNG, "params": {"operation": "keep_largest"},
                     "label": {"source": "payload"}}, 422, "label.payload is missing"),
        ("islands", {"image_id": PNG, "params": {"operation": "keep_largest"},
                     "label": {"source": "payload", "payload": {"shape": [3, 3], "data": ""}}},
         422, "label.payload shape [3, 3] is neither the image's [64, 56]"),
        ("islands", {"image_id": PNG, "params": {"operation": "keep_largest"},
                     "label": {"source": "theirs"}}, 422, "invalid request: body.label.source"),
        ("graphcut", {"image_id": PNG, "params": {"foreground": [[1, 1]], "background": [[3, 3]],
                                                  "lam": 10**30}}, 422,
         "params.lam: an integer of 100 bits is too large"),
        ("regiongrow", {"image_id": PNG, "params": {"seeds": "all"}}, 422,
         'expected a point [y, x] or a list of points, got "all"'),
    ],
)
def test_hostile_tool_requests(served_once, tool, body, status, message):
    client, tokens = served_once
    kwargs = {"content": body, "headers": {**auth(tokens["ann"]),
                                           "Content-Type": "application/json"}} \
        if isinstance(body, str) else {"json": body, "headers": auth(tokens["ann"])}
    if tool == "islands" and body.get("label", {}).get("payload", {}).get("shape") == [3, 3]:
        body["label"]["payload"] = encode_mask(np.zeros((3, 3), np.uint8)).model_dump()
    r = client.post(f"/api/tools/{tool}/apply", **kwargs)
    assert r.status_code == status and message in r.json()["error"], r.json()
    assert set(r.json()) >= {"error", "status"}
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "message"),
    [
        ("post", "/api/tools/livewire/sessions", {"image_id": PNG, "params": {"window": 3}}, 422,
         "a livewire session takes intensity_window, sigma, snap_radius"),
        ("post", "/api/tools/livewire/sessions", {"image_id": PNG, "params": {"sigma": "x"}},
         422, "params.sigma"),
        ("post", "/api/tools/livewire/sessions", {"image_id": "..", "params": {}}, 404,
         "no image '..'"),
        ("post", "/api/tools/livewire/sessions/{sid}/anchors", {"point": [3, 300]}, 422,
         "params.point: point [3.0, 300.0]: x=300.0 is outside 0..55"),
        ("post", "/api/tools/livewire/sessions/{sid}/anchors", '{"point": [NaN, 3]}', 422,
         "params.point: point [nan, 3.0]: y=nan is not a finite number"),
        ("post", "/api/tools/livewire/sessions", {"image_id": PNG, "params": {"sigma": 2**70}},
         422, "an integer of 71 bits is too large"),
        ("post", "/api/tools/livewire/sessions/{sid}/anchors", {"point": [3]}, 422,
         "invalid request: body.point"),
        ("get", "/api/tools/livewire/sessions/{sid}/preview?y=1&x=99999", None, 422,
         "x=99999 is outside 0..55"),
        ("get", "/api/tools/livewire/sessions/{sid}/preview?y=1&x=1", None, 400,
         "place an anchor first"),
        ("post", "/api/tools/livewire/sessions/{sid}/close", None, 400,
         "closing needs at least 2 anchors"),
        ("post", "/api/tools/livewire/sessions/nope/close", None, 404, "no tool session 'nope'"),
    ],
)
def test_hostile_session_requests(served_once, method, url, body, status, message):
    client, tokens = served_once
    h = auth(tokens["ann"])
    sid = client.post("/api/tools/livewire/sessions", json={"image_id": PNG},
                      headers=h).json()["session_id"]
    if isinstance(body, str):  # raw JSON (NaN is not JSON, but Python's parser takes it)
        kwargs = {"content": body, "headers": {**h, "Content-Type": "application/json"}}
    else:
        kwargs = {"headers": h, **({"json": body} if body is not None else {})}
    r = getattr(client, method)(url.replace("{sid}", sid), **kwargs)
    assert r.status_code == status and message in r.json()["error"], r.json()
    assert json.dumps(r.json())
