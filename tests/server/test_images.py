"""/api/images: the list with raters, metadata, slices as PNG, volumes as raw bytes."""

import gzip
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from server_helpers import auth, make_app

from segloop.data import phantom_3d

VOL = "sub-01_T2w"
PNG = "sub-03_sample-a_SEM"


def _save(client, rater, image_id, value=1):
    st = client.app.state.segloop
    shape = st.datastore.image(image_id).shape
    latest = st.labels.latest(image_id, rater)
    st.labels.save(image_id, rater, np.full(shape, value, np.uint8),
                   base_version=latest.version if latest else 0, author=rater)


def test_list_with_raters_seen_by_role(served):
    client, tokens = served
    _save(client, "ann", VOL)
    _save(client, "ann", VOL)
    _save(client, "bob", VOL)
    rows = client.get("/api/images", headers=auth(tokens["ann"])).json()
    assert [r["id"] for r in rows] == [VOL, "sub-02_T2w", PNG]
    first = rows[0]
    assert first["shape"] == [24, 48, 40] and first["spacing"] == [2.0, 0.8, 0.8]
    assert first["ndim"] == 3 and first["channels"] == 1 and first["subject"] == "01"
    assert first["contrast"] == "T2w"
    assert first["raters"] == {"ann": 2} and first["my_version"] == 2  # bob's entry hidden
    assert rows[2]["shape"] == [64, 56] and rows[2]["ndim"] == 2 and rows[2]["my_version"] == 0
    rev = client.get("/api/images", headers=auth(tokens["rev"])).json()
    assert rev[0]["raters"] == {"ann": 2, "bob": 1} and rev[0]["my_version"] == 0
    bob = client.get("/api/images?limit=1&offset=0", headers=auth(tokens["bob"])).json()
    assert len(bob) == 1 and bob[0]["raters"] == {"bob": 1}
    page = client.get("/api/images?limit=2&offset=2", headers=auth(tokens["bob"])).json()
    assert [r["id"] for r in page] == [PNG]
    for bad in ("limit=0", "limit=100000", "offset=-1", "limit=x"):
        r = client.get(f"/api/images?{bad}", headers=auth(tokens["ann"]))
        assert r.status_code == 422 and r.json()["error"].startswith("invalid request: query")
    assert client.get("/api/images").status_code == 401


def test_metadata_geometry_and_cached_percentiles(served):
    client, tokens = served
    meta = client.get(f"/api/images/{VOL}", headers=auth(tokens["ann"])).json()
    assert meta["shape"] == [24, 48, 40] and meta["dtype"] == "float32" and meta["ndim"] == 3
    assert len(meta["origin"]) == 3 and np.array(meta["direction"]).shape == (3, 3)
    truth = phantom_3d((24, 48, 40), seed=0).image.astype(np.float32)
    p1, p50, p99 = np.percentile(truth, [1, 50, 99])
    got = meta["intensity"]
    assert got["p1"] == pytest.approx(p1, rel=1e-5) and got["p99"] == pytest.approx(p99, rel=1e-5)
    assert got["p50"] == pytest.approx(p50, rel=1e-5) and got["p1"] < got["p50"] < got["p99"]
    assert meta["metadata"]["datatype"] == "anat" and meta["raters"] == {}
    st = client.app.state.segloop
    assert st.extras["image_stats"][VOL] is st.extras["image_stats"][VOL]
    st.extras["image_stats"][VOL] = {**got, "p50": -1.0}  # served from the cache
    again = client.get(f"/api/images/{VOL}", headers=auth(tokens["ann"])).json()
    assert again["intensity"]["p50"] == -1.0
    png = client.get(f"/api/images/{PNG}", headers=auth(tokens["rev"])).json()
    assert png["shape"] == [64, 56] and png["dtype"] == "uint8" and png["channels"] == 1
    assert json.dumps(png["metadata"])  # JSON-safe


def _png(response):
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(PILImage.open(io.BytesIO(response.content)))


def test_slice_png_with_window_and_level(served):
    client, tokens = served
    h = auth(tokens["ann"])
    st = client.app.state.segloop
    gray = st.datastore.gray(VOL)
    z = _png(client.get(f"/api/images/{VOL}/slice?axis=0&index=8", headers=h))
    assert z.shape == (48, 40) and z.dtype == np.uint8
    stats = client.get(f"/api/images/{VOL}", headers=h).json()["intensity"]
    expected = np.clip(np.rint((gray[8] - stats["p1"]) * 255 / (stats["p99"] - stats["p1"])),
                       0, 255)
    assert np.abs(z.astype(int) - expected).max() <= 1
    assert _png(client.get(f"/api/images/{VOL}/slice?axis=1&index=20", headers=h)).shape \
        == (24, 40)
    assert _png(client.get(f"/api/images/{VOL}/slice?axis=2&index=0", headers=h)).shape \
        == (24, 48)
    middle = _png(client.get(f"/api/images/{VOL}/slice", headers=h))  # axis 0, middle slice
    assert np.array_equal(middle, _png(client.get(f"/api/images/{VOL}/slice?index=12",
                                                  headers=h)))
    narrow = _png(client.get(f"/api/images/{VOL}/slice?axis=0&index=8&window=0.1&level=0.3",
                             headers=h))
    assert not np.array_equal(narrow, z)
    inside = (gray[8] > 0.26) & (gray[8] < 0.34)
    assert np.abs(narrow[inside].astype(int) - np.rint((gray[8][inside] - 0.25) * 2550)).max() \
        <= 1
    assert (narrow[gray[8] >= 0.36] == 255).all() and (narrow[gray[8] <= 0.24] == 0).all()
    big = _png(client.get(f"/api/images/{VOL}/slice?axis=0&index=8&size=96", headers=h))
    assert big.shape == (96, 80) and np.array_equal(big[::2, ::2], z)
    flat = _png(client.get(f"/api/images/{PNG}/slice", headers=h))
    assert flat.shape == (64, 56)
    assert np.array_equal(flat, _png(client.get(f"/api/images/{PNG}/slice?axis=0&index=0",
                                                headers=h)))


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        (f"/api/images/{VOL}/slice?axis=0&index=24", 422, "index=24 on axis 0 is outside 0..23"),
        (f"/api/images/{VOL}/slice?axis=0&index=99999999999999999999999", 422, "outside 0..23"),
        (f"/api/images/{VOL}/slice?axis=3&index=1", 422, "invalid request: query.axis"),
        (f"/api/images/{VOL}/slice?index=-1", 422, "invalid request: query.index"),
        (f"/api/images/{VOL}/slice?window=-2", 422, "invalid request: query.window"),
        (f"/api/images/{VOL}/slice?level=nan", 422, "window=None, level=nan: the window"),
        (f"/api/images/{VOL}/slice?size=100000", 422, "invalid request: query.size"),
        (f"/api/images/{VOL}/slice?window=1e-300", 422, "the window must be a width in"),
        (f"/api/images/{VOL}/volume?window=1e-20&level=1e30", 422, "too narrow to tell apart"),
        (f"/api/images/{VOL}/volume?level=-1e300", 422, "a centre within +-1e+30"),
        (f"/api/images/{PNG}/slice?axis=1&index=0", 422, "a 2D image has one slice"),
        (f"/api/images/{PNG}/slice?index=3", 422, "a 2D image has one slice"),
        ("/api/images/sub-99_T2w", 404, "no image 'sub-99_T2w' in this dataset"),
        ("/api/images/..%2F..%2Fetc%2Fpasswd/slice", 404, "Not Found"),  # no route
        ("/api/images/%2E%2E/slice", 404, "no image '..' in this dataset"),
        ("/api/images/..%5C..%5Cwin.ini", 404, "no image '..\\\\..\\\\win.ini'"),
        ("/api/images/..~sub-01~anat~sub-01_T2w.nii.gz/volume", 404, "no image"),
        (f"/api/images/{VOL}/volume?dtype=int64", 422, "invalid request: query.dtype"),
    ],
)
def test_hostile_image_requests(served_once, url, status, message):
    client, tokens = served_once
    r = client.get(url, headers=auth(tokens["ann"]))
    assert r.status_code == status and message in r.json()["error"], r.json()
    assert client.get("/health").status_code == 200


def test_volume_bytes_round_trip(served):
    client, tokens = served
    h = auth(tokens["ann"])
    gray = client.app.state.segloop.datastore.gray(VOL)
    r = client.get(f"/api/images/{VOL}/volume?dtype=float32", headers=h)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-encoding"] == "gzip"  # the test client accepts gzip
    shape = json.loads(r.headers["x-shape"])
    assert shape == [24, 48, 40] and r.headers["x-dtype"] == "float32"
    assert json.loads(r.headers["x-spacing"]) == [2.0, 0.8, 0.8]
    array = np.frombuffer(r.content, "<f4").reshape(shape)
    assert np.array_equal(array, gray)
    lo, hi = json.loads(r.headers["x-window"])
    r8 = client.get(f"/api/images/{VOL}/volume", headers={**h, "Accept-Encoding": "identity"})
    assert "content-encoding" not in r8.headers and r8.headers["x-dtype"] == "uint8"
    assert int(r8.headers["content-length"]) == 24 * 48 * 40
    u8 = np.frombuffer(r8.content, np.uint8).reshape(shape)
    expected = np.clip(np.rint((gray - lo) * 255 / (hi - lo)), 0, 255)
    assert np.abs(u8.astype(int) - expected).max() <= 1 and u8.max() == 255 and u8.min() == 0
    raw = client.get(f"/api/images/{PNG}/volume?dtype=int16", headers={**h,
                     "Accept-Encoding": "identity"})
    image = client.app.state.segloop.datastore.image(PNG).array
    assert np.array_equal(np.frombuffer(raw.content, "<i2").reshape(64, 56), image)
    zipped = client.get(f"/api/images/{VOL}/volume", headers=h, extensions={})
    assert zipped.content == r8.content  # httpx inflated it
    assert len(gzip.compress(r8.content, 1)) < len(r8.content)


def test_volume_above_the_voxel_limit_is_413(tmp_path):
    app, tokens = make_app(tmp_path, max_voxels=10_000)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get(f"/api/images/{VOL}/volume", headers=auth(tokens["ann"]))
        assert r.status_code == 413 and "46080 voxels" in r.json()["error"]
        assert client.get(f"/api/images/{PNG}/volume",
                          headers=auth(tokens["ann"])).status_code == 200  # 3584 voxels
    app.state.segloop.engine.dispose()


def test_an_unreadable_image_does_not_hide_the_others(tmp_path):
    app, tokens = make_app(tmp_path)
    (tmp_path / "data" / "sub-02" / "anat" / "sub-02_T2w.nii.gz").write_bytes(b"not nifti")
    with TestClient(app, raise_server_exceptions=False) as client:
        rows = client.get("/api/images", headers=auth(tokens["ann"])).json()
        assert [r["error"] is None for r in rows] == [True, False, True]
        assert rows[1]["shape"] == [] and rows[1]["error"]
        r = client.get("/api/images/sub-02_T2w/slice", headers=auth(tokens["ann"]))
        assert 400 <= r.status_code < 500 and r.json()["error"]
    app.state.segloop.engine.dispose()
