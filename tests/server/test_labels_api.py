"""``/api/labels``: round trips, files and geometry, versions, raters, access, hostile input."""

from __future__ import annotations

import base64
import gzip
import io
import zlib

import numpy as np
import pytest
from server_helpers import auth

from segloop.fusion import fuse, fuse_files
from segloop.io import Image, open_dataset, read_image, write_image
from segloop.server.masks import MaskPayload, decode_mask, encode_mask

VOL, FLAT = "sub-01_T2w", "sub-03_sample-a_SEM"
SHAPE, FLAT_SHAPE = (24, 48, 40), (64, 56)
CURRENT = "derivatives/labels-{}/sub-01/anat/sub-01_T2w_seg-manual.nii.gz"


def box(value=1, z=(5, 9), y=(10, 20), x=(10, 30), shape=SHAPE, dtype=np.uint8):
    mask = np.zeros(shape, dtype)
    mask[z[0]:z[1], y[0]:y[1], x[0]:x[1]] = value
    return mask


def put(client, token, array, base, image=VOL, rater="ann", **extra):
    body = {"base_version": base, "mask": encode_mask(array).model_dump(), **extra}
    return client.put(f"/api/labels/{image}/{rater}", json=body, headers=auth(token))


def got(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return decode_mask(MaskPayload(**response.json()["mask"]), max_voxels=10**7)


def test_save_and_read_a_volume(served, tmp_path):
    client, tokens = served
    label = box(2)
    label[10, 30:40, 5:9] = 1
    r = put(client, tokens["ann"], label, 0, tools=["graphcut", "brush"], interactions=7,
            seconds=12.5, comment="first pass")
    assert r.status_code == 201
    meta = r.json()
    assert (meta["version"], meta["base_version"], meta["author"], meta["action"]) == \
        (1, 0, "ann", "save")
    assert (meta["tools"], meta["interactions"], meta["seconds"], meta["comment"]) == \
        (["graphcut", "brush"], 7, 12.5, "first pass")
    r = client.get(f"/api/labels/{VOL}/ann", headers=auth(tokens["ann"]))
    back = got(r)
    assert back.dtype == np.uint8 and np.array_equal(back, label)
    assert r.json()["version"] == 1 and r.json()["meta"]["sha256"] == meta["sha256"]
    big = box(300, dtype=np.uint16)  # more than 255 labels: kept as uint16
    assert put(client, tokens["ann"], big, 1).status_code == 201
    back = got(client.get(f"/api/labels/{VOL}/ann", headers=auth(tokens["ann"])))
    assert back.dtype == np.uint16 and np.array_equal(back, big)
    # the current file: BIDS derivatives, the image's geometry, the latest content
    ws = client.app.state.segloop.settings.workspace
    image = read_image(client.app.state.segloop.settings.dataset / "sub-01/anat/sub-01_T2w.nii.gz")
    current = read_image(ws / CURRENT.format("ann"), kind="label")
    assert np.array_equal(current.array, big)
    assert np.allclose(current.spacing, (2.0, 0.8, 0.8)) and current.spacing == image.spacing
    assert np.allclose(current.origin, image.origin)
    assert np.allclose(current.direction, image.direction)
    # the file of version 1, as NIfTI
    r = client.get(f"/api/labels/{VOL}/ann?version=1&format=nifti", headers=auth(tokens["ann"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    (tmp_path / "v1.nii.gz").write_bytes(r.content)
    v1 = read_image(tmp_path / "v1.nii.gz", kind="label")
    assert np.array_equal(v1.array, label) and v1.spacing == image.spacing
    r = client.get(f"/api/labels/{VOL}/ann?format=png", headers=auth(tokens["ann"]))
    assert r.status_code == 400 and "volume" in r.json()["error"]


def test_save_and_read_a_2d_image(served, tmp_path):
    client, tokens = served
    label = np.zeros(FLAT_SHAPE, np.uint8)
    label[10:30, 5:40] = 1
    label[40:50, 20:25] = 3
    assert put(client, tokens["ann"], label, 0, image=FLAT).status_code == 201
    back = got(client.get(f"/api/labels/{FLAT}/ann", headers=auth(tokens["ann"])))
    assert back.dtype == np.uint8 and np.array_equal(back, label)
    ws = client.app.state.segloop.settings.workspace
    current = ws / "derivatives/labels-ann/sub-03/micr/sub-03_sample-a_SEM_seg-manual.png"
    assert np.array_equal(read_image(current, kind="label").array, label)
    for fmt, ext in (("png", ".png"), ("nifti", ".nii.gz")):  # nifti: converted
        r = client.get(f"/api/labels/{FLAT}/ann?format={fmt}", headers=auth(tokens["ann"]))
        assert r.status_code == 200
        (tmp_path / f"flat{ext}").write_bytes(r.content)
        assert np.array_equal(read_image(tmp_path / f"flat{ext}", kind="label").array, label)
    assert not list((ws / "tmp" / "labels").iterdir())  # conversion files removed
    r = put(client, tokens["ann"], label, 1, image=FLAT, rater="ann").json()
    assert r["version"] == 2


def test_current_files_are_read_by_fusion_and_bids(served, tmp_path):
    client, tokens = served
    a, b = box(1), box(1, z=(6, 10))
    assert put(client, tokens["ann"], a, 0).status_code == 201
    assert put(client, tokens["bob"], b, 0, rater="bob").status_code == 201
    ws = client.app.state.segloop.settings.workspace
    fused = fuse_files([ws / CURRENT.format("ann"), ws / CURRENT.format("bob")],
                       tmp_path / "fused.nii.gz", method="staple")
    expected = fuse({"ann": a, "bob": b}, "staple")
    assert np.array_equal(read_image(fused, kind="label").array, expected)
    r = client.get(f"/api/labels/{VOL}/consensus?method=staple", headers=auth(tokens["rev"]))
    assert np.array_equal(got(r), expected)
    # the workspace's derivatives beside the dataset's subjects: a BIDS dataset with raters
    data = client.app.state.segloop.settings.dataset
    view = tmp_path / "view"
    view.mkdir()
    for entry in [*data.iterdir(), ws / "derivatives"]:
        (view / entry.name).symlink_to(entry)
    case = next(c for c in open_dataset(view).cases if c.id == VOL)
    assert case.raters == {"seg-manual": {"ann": "seg-manual_rater-ann",
                                          "bob": "seg-manual_rater-bob"}}
    read = case.read_raters()
    assert np.array_equal(read["ann"].array, a) and np.array_equal(read["bob"].array, b)


def test_versions_and_revert(served):
    client, tokens = served
    for base, value in enumerate((1, 2, 3)):
        assert put(client, tokens["ann"], box(value), base, interactions=base).status_code == 201
    r = client.get(f"/api/labels/{VOL}/ann/versions", headers=auth(tokens["ann"]))
    assert [(v["version"], v["base_version"], v["interactions"]) for v in r.json()] == \
        [(1, 0, 0), (2, 1, 1), (3, 2, 2)]
    r = client.post(f"/api/labels/{VOL}/ann/revert", json={"to_version": 1, "base_version": 3},
                    headers=auth(tokens["ann"]))
    assert r.status_code == 201
    assert (r.json()["version"], r.json()["action"], r.json()["comment"]) == \
        (4, "revert", "revert to version 1")
    assert np.array_equal(got(client.get(f"/api/labels/{VOL}/ann",
                                         headers=auth(tokens["ann"]))), box(1))
    assert np.array_equal(got(client.get(f"/api/labels/{VOL}/ann?version=2",
                                         headers=auth(tokens["ann"]))), box(2))
    r = client.post(f"/api/labels/{VOL}/ann/revert", json={"to_version": 2, "base_version": 3},
                    headers=auth(tokens["ann"]))
    assert r.status_code == 409 and "latest version 4" in r.json()["error"]
    r = client.post(f"/api/labels/{VOL}/ann/revert", json={"to_version": 9, "base_version": 4},
                    headers=auth(tokens["ann"]))
    assert r.status_code == 404 and "version 9" in r.json()["error"]
    r = client.get(f"/api/labels/{VOL}/ann?version=9", headers=auth(tokens["ann"]))
    assert r.status_code == 404 and "versions 1..4" in r.json()["error"]
    r = client.get(f"/api/labels/{VOL}/bob", headers=auth(tokens["bob"]))
    assert r.status_code == 404 and r.json()["error"] == f"bob has no label of {VOL} yet"


def test_two_raters_are_kept_apart_and_stale_bases_refused(served):
    client, tokens = served
    assert put(client, tokens["ann"], box(1), 0).json()["version"] == 1
    assert put(client, tokens["bob"], box(5), 0, rater="bob").json()["version"] == 1
    r = put(client, tokens["ann"], box(2), 0)
    assert r.status_code == 409
    assert r.json()["error"] == (f"the label of {VOL} by ann changed: latest version 1, this "
                                 "save was built on version 0; reload and save again")
    assert put(client, tokens["ann"], box(2), 5).status_code == 409
    assert np.array_equal(got(client.get(f"/api/labels/{VOL}/ann",
                                         headers=auth(tokens["rev"]))), box(1))
    assert np.array_equal(got(client.get(f"/api/labels/{VOL}/bob",
                                         headers=auth(tokens["rev"]))), box(5))
    assert client.get(f"/api/labels/{VOL}", headers=auth(tokens["rev"])).json() == \
        {"image_id": VOL, "raters": {"ann": 1, "bob": 1}}
    assert client.get(f"/api/labels/{VOL}", headers=auth(tokens["ann"])).json() == \
        {"image_id": VOL, "raters": {"ann": 1}}
    everything = client.get("/api/labels", headers=auth(tokens["bob"])).json()
    assert everything == [{"image_id": VOL, "raters": {"bob": 1}},
                          {"image_id": "sub-02_T2w", "raters": {}},
                          {"image_id": FLAT, "raters": {}}]


def test_who_may_read_and_write(served):
    client, tokens = served
    assert put(client, tokens["bob"], box(1), 0, rater="bob").status_code == 201
    r = put(client, tokens["ann"], box(1), 1, rater="bob")
    assert r.status_code == 403 and r.json()["error"] == \
        "ann may not write bob's label (only their own)"
    for path in (f"/api/labels/{VOL}/bob", f"/api/labels/{VOL}/bob/versions",
                 f"/api/labels/{VOL}/bob?format=nifti", f"/api/labels/{VOL}/consensus"):
        r = client.get(path, headers=auth(tokens["ann"]))
        assert r.status_code == 403 and r.json()["status"] == 403, path
    r = client.post(f"/api/labels/{VOL}/bob/revert", json={"to_version": 1, "base_version": 1},
                    headers=auth(tokens["ann"]))
    assert r.status_code == 403
    assert client.get(f"/api/labels/{VOL}/bob", headers=auth(tokens["rev"])).status_code == 200
    assert put(client, tokens["rev"], box(1), 1, rater="bob").status_code == 403
    r = put(client, tokens["root"], box(4), 1, rater="bob")  # admins write any rater's label
    assert r.status_code == 201 and (r.json()["author"], r.json()["rater"]) == ("root", "bob")
    assert client.get(f"/api/labels/{VOL}/bob").status_code == 401


def _raw_put(client, token, text, image=VOL):
    return client.put(f"/api/labels/{image}/ann", content=text.encode(),
                      headers={**auth(token), "Content-Type": "application/json"})


def test_hostile_saves_are_4xx_json(served):
    client, tokens = served
    token = tokens["ann"]
    good = encode_mask(box(1)).model_dump()
    mask = MaskPayload(**good).model_dump_json()
    bomb = base64.b64encode(zlib.compress(bytes(64 * 2**20), 9)).decode()
    cases = [  # (response, status, words in the message)
        (put(client, token, box(1)[:, :, :39], 0), 422, "does not match"),
        (put(client, token, box(1), -1), 422, "base_version"),
        (client.put(f"/api/labels/{VOL}/ann", headers=auth(token), json={
            "base_version": 0, "mask": {**good, "data": "%%%not base64"}}), 422, "base64"),
        (client.put(f"/api/labels/{VOL}/ann", headers=auth(token), json={
            "base_version": 0, "mask": {**good, "data": bomb}}), 422, "bytes"),
        (client.put(f"/api/labels/{VOL}/ann", headers=auth(token), json={
            "base_version": 0, "mask": {**good, "shape": [2**40, 2**40]}}), 413, "limit"),
        (_raw_put(client, token, '{"base_version": 0, "seconds": NaN, "mask": ' + mask + "}"),
         422, "seconds"),
        (_raw_put(client, token, '{"base_version": 0, "seconds": 1e999, "mask": ' + mask + "}"),
         422, "seconds"),
        (_raw_put(client, token, '{"base_version": 0, "mask": '), 422, "json"),
        (put(client, token, box(1), 0, tools=["../../etc"]), 422, "tools"),
        (put(client, token, box(1), 0, tools=["brush"] * 65), 422, "tools"),
        (put(client, token, box(1), 0, comment="x" * 2001), 422, "comment"),
        (put(client, tokens["root"], box(1), 0, rater="a.b"), 422, "rater"),
        (put(client, token, box(1), 0, image="..~..~etc"), 404, "no image"),
        (put(client, token, box(1), 0, image="sub-01_T2w.nii.gz"), 404, "no image"),
        (client.get(f"/api/labels/{VOL}/ann?version=0", headers=auth(token)), 422, "version"),
        (client.get(f"/api/labels/{VOL}/ann?format=dicom", headers=auth(token)), 422,
         "format"),
    ]
    for i, (r, status, words) in enumerate(cases):
        assert r.status_code == status, (i, r.text)
        body = r.json()
        assert body["status"] == status and words in body["error"].lower(), (i, body)
        assert "Traceback" not in r.text
    assert client.get(f"/api/labels/{VOL}", headers=auth(token)).json()["raters"] == {}
    assert put(client, token, box(1), 0).status_code == 201  # still serving


def test_slice_saves_merge_into_the_base(served):
    client, tokens = served

    def put_slice(plane, base, axis, index, image=VOL):
        return client.put(f"/api/labels/{image}/ann/slice", headers=auth(tokens["ann"]), json={
            "base_version": base, "axis": axis, "index": index,
            "mask": encode_mask(plane).model_dump(), "tools": ["livewire"]})

    plane = np.zeros((48, 40), np.uint8)
    plane[5:15, 5:25] = 1
    assert put_slice(plane, 0, 0, 3).status_code == 201
    side = np.zeros((24, 48), np.uint8)
    side[2:6, 30:40] = 2
    assert put_slice(side, 1, 2, 17).json()["version"] == 2
    expected = np.zeros(SHAPE, np.uint8)
    expected[3] = plane
    expected[:, :, 17] = side
    back = got(client.get(f"/api/labels/{VOL}/ann", headers=auth(tokens["ann"])))
    assert np.array_equal(back, expected)
    assert put_slice(plane, 1, 0, 4).status_code == 409
    r = put_slice(plane, 2, 0, 24)
    assert r.status_code == 422 and "out of range 0..23" in r.json()["error"]
    r = put_slice(side, 2, 0, 4)
    assert r.status_code == 422 and "does not match" in r.json()["error"]
    r = put_slice(np.zeros(FLAT_SHAPE, np.uint8), 0, 0, 0, image=FLAT)
    assert r.status_code == 422 and "is 2D" in r.json()["error"]


def _nifti_bytes(tmp_path, image: Image) -> bytes:
    write_image(image, tmp_path / "up.nii.gz", overwrite=True)
    return (tmp_path / "up.nii.gz").read_bytes()


def test_uploads_must_lie_on_the_image_grid(served, tmp_path):
    import nibabel

    client, tokens = served
    st = client.app.state.segloop
    image = st.datastore.image(VOL)
    url = f"/api/labels/{VOL}/ann/upload"

    def upload(name, data, base=0, image_url=url):
        return client.post(f"{image_url}?base_version={base}", headers=auth(tokens["ann"]),
                           files={"file": (name, data, "application/octet-stream")})

    label = image.with_array(box(3), kind="label", channels=False)
    r = upload("mine.nii.gz", _nifti_bytes(tmp_path, label))
    assert r.status_code == 201 and r.json()["tools"] == ["upload"]
    assert np.array_equal(st.labels.read(VOL, "ann").array, box(3))
    moved = Image(box(1), spacing=(2.0, 0.8, 0.8), origin=(5.0, 0.0, 0.0), kind="label")
    r = upload("moved.nii.gz", _nifti_bytes(tmp_path, moved), base=1)
    assert r.status_code == 422 and "not on the grid" in r.json()["error"]
    assert "origin" in r.json()["error"]
    header = nibabel.Nifti1Header()  # a header promising 8e9 voxels, almost no data
    header.set_data_shape((2000, 2000, 2000))
    header.set_data_dtype(np.uint8)
    bomb = gzip.compress(header.binaryblock + bytes(4) + bytes(1000))
    r = upload("bomb.nii.gz", bomb, base=1)
    assert r.status_code == 422 and "[2000, 2000, 2000]" in r.json()["error"]
    r = upload("junk.nii.gz", b"not a nifti file at all", base=1)
    assert r.status_code == 422 and "not a readable nifti" in r.json()["error"]
    r = upload("label.txt", b"1,2,3", base=1)
    assert r.status_code == 422 and ".nii.gz, .nii or .png" in r.json()["error"]
    flat = np.zeros(FLAT_SHAPE, np.uint8)
    flat[3:9, 4:30] = 1
    png = io.BytesIO()
    from PIL import Image as PILImage

    PILImage.fromarray(flat).save(png, format="PNG")
    r = upload("flat.png", png.getvalue(), image_url=f"/api/labels/{FLAT}/ann/upload")
    assert r.status_code == 201
    assert np.array_equal(st.labels.read(FLAT, "ann").array, flat)
    r = upload("flat.png", png.getvalue(), base=1)  # a 2D file for a volume
    assert r.status_code == 422
    r = client.post(f"{url}?base_version=1", headers=auth(tokens["bob"]),
                    files={"file": ("x.nii.gz", _nifti_bytes(tmp_path, label))})
    assert r.status_code == 403
    assert upload("again.nii.gz", _nifti_bytes(tmp_path, label), base=0).status_code == 409
    assert not list((st.settings.workspace / "tmp" / "labels").iterdir())


def test_consensus_of_two_and_three_raters(served):
    client, tokens = served
    a, b, c = box(1), box(1, z=(6, 10)), box(1, y=(12, 22))
    assert put(client, tokens["ann"], a, 0).status_code == 201
    assert put(client, tokens["bob"], b, 0, rater="bob").status_code == 201
    rev = auth(tokens["rev"])
    r = client.get(f"/api/labels/{VOL}/consensus", headers=rev)
    assert r.json()["raters"] == ["ann", "bob"] and r.json()["versions"] == {"ann": 1, "bob": 1}
    assert np.array_equal(got(r), a & b)  # two raters, ties to background: both needed
    r = client.get(f"/api/labels/{VOL}/consensus?method=soft", headers=rev)
    assert r.json()["soft"] and r.json()["scale"] == 255
    soft = got(r)
    assert set(np.unique(soft).tolist()) == {0, 128, 255}
    assert np.array_equal(soft == 255, a & b) and np.array_equal(soft == 128, a ^ b)
    assert put(client, tokens["root"], c, 0, rater="root").status_code == 201
    r = client.get(f"/api/labels/{VOL}/consensus?method=majority", headers=rev)
    assert r.json()["raters"] == ["ann", "bob", "root"]
    assert np.array_equal(got(r), ((a.astype(int) + b + c) >= 2).astype(np.uint8))
    for method in ("staple", "weighted"):
        r = client.get(f"/api/labels/{VOL}/consensus?method={method}", headers=rev)
        assert np.array_equal(got(r), fuse({"ann": a, "bob": b, "root": c}, method)), method
    r = client.get(f"/api/labels/{VOL}/consensus?method=staple&raters=bob,root", headers=rev)
    assert r.json()["raters"] == ["bob", "root"]
    assert np.array_equal(got(r), fuse({"bob": b, "root": c}, "staple"))
    r = client.get(f"/api/labels/{VOL}/consensus?method=staple&raters=ann", headers=rev)
    assert r.status_code == 400 and "STAPLE needs at least 2 raters" in r.json()["error"]
    r = client.get(f"/api/labels/{VOL}/consensus?raters=ann,zed", headers=rev)
    assert r.status_code == 404 and "by zed" in r.json()["error"]
    r = client.get("/api/labels/sub-02_T2w/consensus", headers=rev)
    assert r.status_code == 404 and "no rater has labelled" in r.json()["error"]
    r = client.get(f"/api/labels/{VOL}/consensus?method=mean", headers=rev)
    assert r.status_code == 422


def test_consensus_of_one_label_value(served):
    client, tokens = served
    a = box(1)
    a[:, :, 30:35] = 2
    b = box(2, z=(6, 10))
    assert put(client, tokens["ann"], a, 0).status_code == 201
    assert put(client, tokens["bob"], b, 0, rater="bob").status_code == 201
    r = client.get(f"/api/labels/{VOL}/consensus?method=soft", headers=auth(tokens["rev"]))
    assert r.status_code == 400 and "0/1 masks" in r.json()["error"]
    r = client.get(f"/api/labels/{VOL}/consensus?method=soft&label=2",
                   headers=auth(tokens["rev"]))
    expected = fuse({"ann": a == 2, "bob": b == 2}, "soft")
    assert r.json()["label"] == 2
    assert np.array_equal(got(r), np.rint(expected * 255).astype(np.uint8))


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
