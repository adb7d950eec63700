"""Hostile requests: each a 4xx with a clear JSON message, and the server keeps serving.

Every request of :data:`CASES` is something a careless or malicious client
may send: no token or a forged one, another rater's label, admin routes,
path traversal in ids and names (``../``, percent-encoded, raw), unknown
images and tools, oversize bodies (declared and chunked), malformed JSON,
the wrong content type, masks of the wrong shape or not base64, a zip bomb,
NaN and infinite points, absurd slice indices, huge parameter objects,
decompression bombs in uploads, the wrong method, stale base versions...
Each must answer with the expected 4xx and a JSON body ``{"error": <a
message naming the problem>, "status": <the code>}``; ``/health`` is checked
after each, and an ordinary request at the end.  Nothing may be written
outside the workspace.  The app (SQLite and PostgreSQL) has a 1 MiB body
limit so that oversize bodies stay cheap.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pg_helpers import DATABASES, database_name
from server_helpers import auth, make_app

from segloop.server.masks import encode_mask

VOL, PNG = "sub-01_T2w", "sub-03_sample-a_SEM"
SHAPE = (24, 48, 40)
LIMIT = 2**20
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module", params=DATABASES)
def api(request, tmp_path_factory):
    """(client, tokens, root folder) of one app per database for the module.

    bob and ann have each saved a label of VOL (ann twice); root has opened a
    livewire session on the PNG image.
    """
    url, pg = None, None
    if request.param == "postgresql":
        pg = request.getfixturevalue("pg_cluster")
        name = database_name()
        url = pg.create_database(name)
    root = tmp_path_factory.mktemp("hostile")
    app, tokens = make_app(root, db_url=url, max_body_bytes=LIMIT)
    with TestClient(app, raise_server_exceptions=False) as client:
        for rater, versions in (("bob", 1), ("ann", 2)):
            for v in range(versions):
                r = client.put(f"/api/labels/{VOL}/{rater}", headers=auth(tokens[rater]),
                               json={"base_version": v, "mask": _payload(_box(v + 1))})
                assert r.status_code == 201, r.text
        r = client.post("/api/tools/livewire/sessions", headers=auth(tokens["root"]),
                        json={"image_id": PNG})
        assert r.status_code == 200, r.text
        tokens = {**tokens, "session": r.json()["session_id"]}
        yield client, tokens, root
    app.state.segloop.engine.dispose()
    if pg is not None:
        pg.drop_database(name)


def _box(value: int = 1, shape=SHAPE) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[5:9, 10:20, 10:30] = value
    return mask


def _payload(array: np.ndarray) -> dict:
    return encode_mask(array).model_dump()


def _zip_bomb() -> dict:
    """A payload declaring the image's shape whose data inflates to 64 MiB of zeros."""
    data = zlib.compress(b"\0" * (64 * 2**20), 9)  # ~64 KiB on the wire
    return {"shape": list(SHAPE), "dtype": "uint8", "encoding": "zlib-b64",
            "data": base64.b64encode(data).decode()}


def _png_bomb(side: int) -> bytes:
    """A PNG of a few bytes whose header declares ``side`` x ``side`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (side + 1) * 4, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def _chunks(total: int, size: int = 65536):
    """A body sent with Transfer-Encoding: chunked (no Content-Length)."""
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


def _raw_get(app, raw_path: bytes, token: str) -> tuple[int, dict]:
    """GET ``raw_path`` exactly as given (no client-side ``..`` normalisation), via ASGI."""
    messages: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        messages.append(message)

    path, _, query = raw_path.partition(b"?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path.decode("latin-1"), "raw_path": path,
             "query_string": query, "root_path": "", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 1234),
             "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())]}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, json.loads(body)


@dataclass
class Case:
    """A hostile request: who sends it, what, and the answer expected."""

    name: str
    send: Any  # (client, tokens) -> response, or (status, body) for raw ASGI requests
    status: int
    says: str  # a fragment the error message must hold (case-insensitive)


def _tool(tool: str, token: str, body: Any = None, **kw):
    return lambda c, t: c.post(f"/api/tools/{tool}/apply", headers=auth(t[token]),
                               json=body, **kw)


def _put(rater: str, token: str, body: Any = None, **kw):
    return lambda c, t: c.put(f"/api/labels/{VOL}/{rater}", headers=auth(t[token]), json=body,
                              **kw)


_SAVE = {"base_version": 2, "mask": _payload(_box(3))}
_GROW = {"image_id": VOL, "slice": {"axis": 0, "index": 6}}

CASES = [
    # --- who you are, what you may do
    Case("missing token", lambda c, t: c.get("/api/images"), 401, "missing bearer token"),
    Case("invalid token", lambda c, t: c.get("/api/images", headers=auth("forged-" * 8)),
         401, "invalid or revoked token"),
    Case("token of 100 kB", lambda c, t: c.get("/api/images", headers=auth("x" * 100_000)),
         401, "invalid or revoked token"),
    Case("basic auth instead of bearer", lambda c, t: c.get(
        "/api/images", headers={"Authorization": "Basic YW5uOmFubg=="}), 401, "bearer token"),
    Case("annotator reads another rater's label", lambda c, t: c.get(
        f"/api/labels/{VOL}/bob", headers=auth(t["ann"])), 403, "only their own"),
    Case("annotator lists another rater's versions", lambda c, t: c.get(
        f"/api/labels/{VOL}/bob/versions", headers=auth(t["ann"])), 403, "only their own"),
    Case("annotator writes another rater's label", _put("bob", "ann", _SAVE), 403,
         "may not write bob's label"),
    Case("reviewer writes another rater's label", _put("ann", "rev", _SAVE), 403,
         "may not write ann's label"),
    Case("annotator reverts another rater's label", lambda c, t: c.post(
        f"/api/labels/{VOL}/bob/revert", headers=auth(t["ann"]),
        json={"to_version": 1, "base_version": 1}), 403, "may not write"),
    Case("annotator asks for the consensus", lambda c, t: c.get(
        f"/api/labels/{VOL}/consensus", headers=auth(t["ann"])), 403, "reviewer role"),
    Case("annotator lists users", lambda c, t: c.get("/api/users", headers=auth(t["ann"])),
         403, "admin role"),
    Case("annotator makes itself admin", lambda c, t: c.post(
        "/api/users", headers=auth(t["ann"]), json={"name": "evil", "role": "admin"}),
         403, "admin role"),
    Case("annotator starts a training job", lambda c, t: c.post(
        "/api/jobs", headers=auth(t["ann"]), json={"kind": "train"}), 403, "admin role"),
    Case("another user's livewire session", lambda c, t: c.post(
        f"/api/tools/livewire/sessions/{t['session']}/anchors", headers=auth(t["ann"]),
        json={"point": [3, 3]}), 404, "session"),
    # --- traversal and unknown things
    Case("../ in an image id (encoded /)", lambda c, t: c.get(
        "/api/images/..%2F..%2F..%2Fetc%2Fpasswd", headers=auth(t["ann"])), 404, "not found"),
    Case("%2e%2e%2f in an image id", lambda c, t: c.get(
        "/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd/slice", headers=auth(t["ann"])), 404,
         "not found"),
    Case("..~ in an image id (the nested-dataset separator)", lambda c, t: c.get(
        "/api/images/..~..~..~etc~passwd", headers=auth(t["ann"])), 404, "no image"),
    Case("raw ../ in an image id", lambda c, t: _raw_get(
        c.app, b"/api/images/../../../../etc/passwd", t["ann"]), 404, "not found"),
    Case("raw .. as the image id", lambda c, t: _raw_get(
        c.app, b"/api/images/../slice", t["ann"]), 404, "no image '..'"),
    Case("../ in an image id of a tool call", _tool(
        "threshold", "ann", {"image_id": "../../../etc/passwd"}), 404, "no image"),
    Case("NUL byte in an image id", lambda c, t: c.get(
        "/api/images/sub-01_T2w%00.nii.gz", headers=auth(t["ann"])), 404, "no image"),
    Case("%2e%2e as a rater name", lambda c, t: c.put(
        f"/api/labels/{VOL}/%2e%2e", headers=auth(t["root"]), json=_SAVE), 422,
         "invalid request: path.rater"),
    Case("../ in a rater name", lambda c, t: c.put(
        f"/api/labels/{VOL}/..%2F..%2Fann", headers=auth(t["root"]), json=_SAVE), 404,
         "not found"),
    Case("rater name with a dot", lambda c, t: c.get(
        f"/api/labels/{VOL}/ann.nii.gz", headers=auth(t["root"])), 422, "path.rater"),
    Case("unknown image", lambda c, t: c.get("/api/images/sub-99_T2w",
                                             headers=auth(t["ann"])), 404, "no image"),
    Case("unknown tool", _tool("rm -rf", "ann", _GROW), 404, "no tool"),
    Case("unknown version", lambda c, t: c.get(f"/api/labels/{VOL}/ann?version=99",
                                               headers=auth(t["ann"])), 404, "no version 99"),
    Case("revert to a version that never was", lambda c, t: c.post(
        f"/api/labels/{VOL}/ann/revert", headers=auth(t["ann"]),
        json={"to_version": 7, "base_version": 2}), 404, "version 7"),
    Case("wrong method", lambda c, t: c.delete("/api/images", headers=auth(t["ann"])), 405,
         "method not allowed"),
    Case("upload filename with ../", lambda c, t: c.post(
        f"/api/labels/{VOL}/ann/upload?base_version=2", headers=auth(t["ann"]),
        files={"file": ("../../../../escaped.nii.gz", b"not a nifti", "application/gzip")}),
         422, "not a readable nifti"),
    # --- bodies
    Case("oversize body (declared)", lambda c, t: c.put(
        f"/api/labels/{VOL}/ann", headers={**auth(t["ann"]), **JSON},
        content=b"{" + b" " * (LIMIT + 10) + b"}"), 413, "exceeds the limit"),
    Case("oversize body (chunked)", lambda c, t: c.put(
        f"/api/labels/{VOL}/ann", headers={**auth(t["ann"]), **JSON},
        content=_chunks(2 * LIMIT)), 413, "exceeds the limit"),
    Case("lying Content-Length", lambda c, t: c.post(
        "/api/tools/threshold/apply", headers={**auth(t["ann"]), **JSON,
                                               "Content-Length": "-5"}, content=b"{}"),
         400, "content-length"),
    Case("malformed JSON", lambda c, t: c.put(
        f"/api/labels/{VOL}/ann", headers={**auth(t["ann"]), **JSON},
        content=b'{"base_version": 2, "mask": {"shape": [24, 48'), 422, "json"),
    Case("JSON nested 100000 deep", lambda c, t: c.post(
        "/api/tools/threshold/apply", headers={**auth(t["ann"]), **JSON},
        content=b'{"image_id": "sub-01_T2w", "params": {"low": ' + b"[" * 100_000
        + b"]" * 100_000 + b"}}"), 400, "error parsing the body"),
    Case("invalid UTF-8 in JSON", lambda c, t: c.post(
        "/api/tools/threshold/apply", headers={**auth(t["ann"]), **JSON},
        content=b'{"image_id": "\xff\xfe"}'), 400, "error parsing the body"),
    Case("wrong content type", lambda c, t: c.put(
        f"/api/labels/{VOL}/ann", headers={**auth(t["ann"]), "Content-Type": "text/plain"},
        content=json.dumps(_SAVE)), 422, "invalid request: body"),
    Case("a JSON list instead of an object", _put("ann", "ann", [1, 2, 3]), 422,
         "invalid request: body"),
    Case("missing base version", _put("ann", "ann", {"mask": _payload(_box())}), 422,
         "body.base_version"),
    Case("negative base version", _put("ann", "ann", {"base_version": -1,
                                                      "mask": _payload(_box())}), 422,
         "body.base_version"),
    Case("mask of the wrong shape", _put("ann", "ann", {
        "base_version": 2, "mask": _payload(np.ones((48, 40), np.uint8))}), 422,
         "does not match"),
    Case("mask of a huge declared shape", _put("ann", "ann", {
        "base_version": 2, "mask": {"shape": [100000, 100000, 100000], "data": ""}}), 413,
         "exceeds the limit"),
    Case("mask with a zero-size axis", _put("ann", "ann", {
        "base_version": 2, "mask": {"shape": [0, 48, 40], "data": ""}}), 422, ">= 1"),
    Case("mask data not base64", _put("ann", "ann", {
        "base_version": 2, "mask": {"shape": list(SHAPE), "data": "@@@not base64!!"}}), 422,
         "not valid base64"),
    Case("mask data not zlib", _put("ann", "ann", {
        "base_version": 2, "mask": {"shape": list(SHAPE),
                                    "data": base64.b64encode(b"garbage" * 10).decode()}}), 422,
         "not a valid zlib stream"),
    Case("mask zip bomb", _put("ann", "ann", {"base_version": 2, "mask": _zip_bomb()}), 422,
         "bytes"),
    Case("mask with too few bytes", _put("ann", "ann", {
        "base_version": 2, "mask": {"shape": list(SHAPE), "encoding": "b64",
                                    "data": base64.b64encode(b"\1" * 100).decode()}}), 422,
         "needs 46080"),
    Case("mask of an unknown dtype", _put("ann", "ann", {
        "base_version": 2, "mask": {**_payload(_box()), "dtype": "float64"}}), 422,
         "body.mask.dtype"),
    Case("PNG upload declaring 9000 x 9000 pixels", lambda c, t: c.post(
        f"/api/labels/{PNG}/ann/upload?base_version=0", headers=auth(t["ann"]),
        files={"file": ("bomb.png", _png_bomb(9000), "image/png")}), 422,
         "holds [9000, 9000] voxels"),
    Case("PNG upload declaring 60000 x 60000 pixels", lambda c, t: c.post(
        f"/api/labels/{PNG}/ann/upload?base_version=0", headers=auth(t["ann"]),
        files={"file": ("bomb.png", _png_bomb(60000), "image/png")}), 422,
         "not a readable png"),
    Case("stale base version", _put("ann", "ann", {"base_version": 1,
                                                   "mask": _payload(_box(5))}), 409,
         "latest version 2"),
    Case("base version from the future", _put("ann", "ann", {"base_version": 9,
                                                             "mask": _payload(_box(5))}), 409,
         "built on version 9"),
    # --- tool parameters
    Case("NaN point", lambda c, t: c.post(
        "/api/tools/regiongrow/apply", headers={**auth(t["ann"]), **JSON},
        content=b'{"image_id": "sub-01_T2w", "params": {"seeds": [[NaN, 3, 4]]}}'), 422,
         "not a finite number"),
    Case("infinite threshold", lambda c, t: c.post(
        "/api/tools/threshold/apply", headers={**auth(t["ann"]), **JSON},
        content=b'{"image_id": "sub-01_T2w", "params": {"low": -Infinity}}'), 422,
         "not a finite number"),
    Case("1e999 (overflows to inf)", lambda c, t: c.post(
        "/api/tools/threshold/apply", headers={**auth(t["ann"]), **JSON},
        content=b'{"image_id": "sub-01_T2w", "params": {"high": 1e999}}'), 422,
         "not a finite number"),
    Case("point outside the image", _tool("regiongrow", "ann", {
        **_GROW, "params": {"seeds": [[10, 4000]]}}), 422, "outside"),
    Case("point with a 5000-digit coordinate", lambda c, t: c.post(
        "/api/tools/regiongrow/apply", headers={**auth(t["ann"]), **JSON},
        content=b'{"image_id": "sub-01_T2w", "params": {"seeds": [[' + b"9" * 5000
        + b', 3, 4]]}}'), 400, "error parsing the body"),
    Case("point with 3 coordinates on a slice", _tool("regiongrow", "ann", {
        **_GROW, "params": {"seeds": [[1, 2, 3]]}}), 422, "coordinates"),
    Case("huge slice index", _tool("threshold", "ann", {
        "image_id": VOL, "slice": {"axis": 0, "index": 10**30}}), 422, "body.slice.index"),
    Case("slice index past the end", _tool("threshold", "ann", {
        "image_id": VOL, "slice": {"axis": 0, "index": 24}}), 422, "outside 0..23"),
    Case("negative slice index", _tool("threshold", "ann", {
        "image_id": VOL, "slice": {"axis": 0, "index": -1}}), 422, "body.slice.index"),
    Case("axis 7", _tool("threshold", "ann", {
        "image_id": VOL, "slice": {"axis": 7, "index": 1}}), 422, "body.slice.axis"),
    Case("slice of a 2D image", _tool("threshold", "ann", {
        "image_id": PNG, "slice": {"axis": 0, "index": 3}}), 422, "a 2D image has one slice"),
    Case("huge slice index in an image slice", lambda c, t: c.get(
        f"/api/images/{VOL}/slice?axis=0&index=99999999999999999999", headers=auth(t["ann"])),
         422, "index"),
    Case("params with 1000 keys", _tool("threshold", "ann", {
        "image_id": VOL, "params": {f"k{i}": i for i in range(1000)}}), 422, "body.params"),
    Case("params of 600 kB", _tool("threshold", "ann", {
        "image_id": VOL, "params": {"low": 0, "note": "x" * 600_000}}), 413,
         "exceed the limit"),
    Case("25000 seed points", _tool("regiongrow", "ann", {
        **_GROW, "params": {"seeds": [[1, 1]] * 25_000}}), 413, "25000 points"),
    Case("label value 70000", _tool("brush", "ann", {
        **_GROW, "params": {"points": [[3, 3]], "value": 70_000}}), 422, "params.value"),
    Case("unknown tool parameter", _tool("threshold", "ann", {
        "image_id": VOL, "params": {"low": 0, "rm_rf": True}}), 400, "rm_rf"),
    Case("livewire on a whole volume", lambda c, t: c.post(
        "/api/tools/livewire/sessions", headers=auth(t["ann"]), json={"image_id": VOL}), 422,
         "slice"),
    Case("limit of a billion images", lambda c, t: c.get(
        "/api/images?limit=1000000000", headers=auth(t["ann"])), 422, "query.limit"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request_is_a_clear_4xx(api, case):
    client, tokens, _ = api
    answer = case.send(client, tokens)
    status, body = answer if isinstance(answer, tuple) else (answer.status_code, answer.json())
    assert status == case.status, body
    assert set(body) >= {"error", "status"} and body["status"] == status, body
    assert isinstance(body["error"], str) and case.says.lower() in body["error"].lower(), body
    assert "Traceback" not in body["error"] and "/work/" not in body["error"]
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_server_keeps_serving_and_nothing_escaped(api):
    client, tokens, root = api
    assert len(CASES) >= 20
    r = client.get(f"/api/labels/{VOL}/ann", headers=auth(tokens["ann"]))
    assert r.status_code == 200 and r.json()["version"] == 2  # no hostile save landed
    r = client.get(f"/api/labels/{VOL}/ann/versions", headers=auth(tokens["ann"]))
    assert [v["version"] for v in r.json()] == [1, 2]
    r = client.post("/api/tools/threshold/apply", headers=auth(tokens["ann"]),
                    json={"image_id": VOL, "slice": {"axis": 0, "index": 6},
                          "params": {"low": 0.5}})
    assert r.status_code == 200 and r.json()["mask"]["shape"] == [48, 40]
    assert not list(root.parent.rglob("escaped*"))  # the upload's name never names a file
    assert not [p for p in (root / "ws" / "tmp").rglob("*") if p.is_file()]  # no leftovers
