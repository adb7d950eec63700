"""``/api/models`` and ``/api/active``: pre-annotation, uncertainty, next image, fine-tuning."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.ndimage import distance_transform_edt
from server_helpers import auth, make_app

from segloop.data import phantom_2d
from segloop.io import Image, write_image
from segloop.server.masks import MaskPayload, decode_mask
from segloop.server.models import NO_MODEL, STRATEGIES, random_order

VOL, VOL2, FLAT = "sub-01_T2w", "sub-02_T2w", "sub-03_sample-a_SEM"
SHAPE, FLAT_SHAPE = (24, 48, 40), (64, 56)


def train_tiny(root: Path) -> Path:
    """A 2D U-Net (4-8 channels, dropout) trained 1 epoch on 6 PNG phantoms: its best.pt."""
    from segloop.learn.config import load_config
    from segloop.learn.train import train

    for i in range(6):
        ph = phantom_2d((32, 32), seed=i, n_blobs=1, thin_structures=False)
        write_image(Image(np.clip(ph.image * 255, 0, 255).astype(np.uint8)),
                    root / "images" / f"c{i}.png")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    root / "labels" / f"c{i}.png")
    cfg = load_config({
        "data": {"path": str(root), "split": {"test": 1, "val": 1}},
        "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.2},
        "augmentation": {"enabled": False}, "optim": {"lr": 0.01},
        "training": {"epochs": 1, "iterations_per_epoch": 3, "batch_size": 2, "threads": 1},
        "output": {"dir": str(root / "run"), "tensorboard": False}})
    train(cfg, log=lambda line: None)
    return root / "run" / "best.pt"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def modelled(tmp_path, checkpoint):
    """(client, tokens) of a server started with --model."""
    app, tokens = make_app(tmp_path, model=checkpoint)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, tokens
    app.state.segloop.engine.dispose()


def mask_of(payload: dict) -> np.ndarray:
    return decode_mask(MaskPayload(**payload), max_voxels=10**7)


def post(client, token, url, **body):
    return client.post(url, json=body, headers=auth(token))


def test_model_info_and_preannotate(modelled):
    client, tokens = modelled
    info = client.get("/api/models", headers=auth(tokens["ann"])).json()
    assert info == {"loaded": True, "model": "best.pt", "dims": 2, "classes": ["foreground"],
                    "activation": "softmax", "strategies": list(STRATEGIES)}
    r = post(client, tokens["ann"], "/api/models/preannotate", image_id=FLAT)
    assert r.status_code == 200, r.text
    first = r.json()
    flat = mask_of(first["mask"])
    assert flat.shape == FLAT_SHAPE and set(np.unique(flat)) <= {0, 1}
    assert first["classes"] == ["foreground"] and first["version"] is None
    assert first["cached"] is False and first["seconds"] > 0
    # saved: a version of the caller's own label, action preannotate, on its latest
    r = post(client, tokens["ann"], "/api/models/preannotate", image_id=FLAT, save=True)
    again = r.json()
    assert again["cached"] is True and np.array_equal(mask_of(again["mask"]), flat)
    v = again["version"]
    assert (v["rater"], v["author"], v["version"], v["base_version"], v["action"]) == \
        ("ann", "ann", 1, 0, "preannotate")
    assert v["tools"] == ["model"] and v["comment"] == "model best.pt"
    labels = client.app.state.segloop.labels
    assert np.array_equal(labels.read(FLAT, "ann").array, flat)
    r = post(client, tokens["ann"], "/api/models/preannotate", image_id=FLAT, save=True)
    assert (r.json()["version"]["version"], r.json()["version"]["base_version"]) == (2, 1)
    assert labels.raters(FLAT) == {"ann": 2}  # nobody else's label touched
    # a volume: a 2D model slice by slice, on the volume's grid
    vol = mask_of(post(client, tokens["bob"], "/api/models/preannotate", image_id=VOL)
                  .json()["mask"])
    assert vol.shape == SHAPE and vol.dtype == np.uint8
    r = post(client, tokens["ann"], "/api/models/preannotate", image_id="../sub-01_T2w")
    assert r.status_code == 404 and "no image" in r.json()["error"]


def test_uncertainty_maps_and_scores(modelled):
    client, tokens = modelled
    scores = {}
    for method in ("entropy", "mc_dropout", "tta"):
        r = post(client, tokens["ann"], "/api/models/uncertainty", image_id=FLAT, method=method)
        assert r.status_code == 200, r.text
        body = r.json()
        heat = mask_of(body["map"])
        assert heat.shape == FLAT_SHAPE and heat.dtype == np.uint8 and heat.max() > 0
        assert body["max_value"] == 1.0 and body["map_kind"] == "entropy"
        assert math.isfinite(body["score"]) and 0 < body["score"] <= 3.2
        scores[method] = body["score"]
    # the score is the strategy's: the same as in the ranking of the dataset
    for method, score in scores.items():
        items = client.get(f"/api/active/ranking?strategy={method}",
                           headers=auth(tokens["ann"])).json()["items"]
        assert {i["image_id"]: i["score"] for i in items}[FLAT] == pytest.approx(score)
    r = post(client, tokens["ann"], "/api/models/uncertainty", image_id=VOL, method="tta",
             map="variance")
    body = r.json()
    assert mask_of(body["map"]).shape == SHAPE and body["max_value"] == 0.25
    assert body["scale"] == "value = round(255 * min(variance / 0.25, 1))"
    r = post(client, tokens["ann"], "/api/models/uncertainty", image_id=FLAT, method="bald")
    assert r.status_code == 422


def test_active_next_skips_what_the_caller_labelled(modelled):
    client, tokens = modelled
    h = auth(tokens["bob"])
    ranking = client.get("/api/active/ranking?strategy=entropy", headers=h).json()
    items = ranking["items"]
    assert [i["rank"] for i in items] == [1, 2, 3] and ranking["skipped"] == {}
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    nxt = client.get("/api/active/next?strategy=entropy", headers=h).json()
    assert (nxt["image_id"], nxt["rank"], nxt["remaining"], nxt["total"]) == \
        (items[0]["image_id"], 1, 3, 3)
    assert client.get("/api/active/next", headers=h).json()["strategy"] == "entropy"  # default
    # bob labels the first image (a saved pre-annotation counts): the next one is the second
    post(client, tokens["bob"], "/api/models/preannotate", image_id=items[0]["image_id"],
         save=True)
    nxt = client.get("/api/active/next?strategy=entropy", headers=h).json()
    assert (nxt["image_id"], nxt["rank"], nxt["remaining"]) == (items[1]["image_id"], 2, 2)
    assert client.get("/api/active/ranking?strategy=entropy", headers=h).json()["items"][0][
        "labelled"] is True
    # ann labelled nothing: still the first
    assert client.get("/api/active/next?strategy=entropy", headers=auth(tokens["ann"])).json()[
        "image_id"] == items[0]["image_id"]
    # every strategy ranks every image, deterministically
    for strategy in STRATEGIES:
        one = client.get(f"/api/active/ranking?strategy={strategy}", headers=h).json()
        two = client.get(f"/api/active/ranking?strategy={strategy}", headers=h).json()
        assert sorted(i["image_id"] for i in one["items"]) == sorted([VOL, VOL2, FLAT])
        assert one["items"] == two["items"], strategy
    r = client.get("/api/active/next?strategy=bald", headers=h)
    assert r.status_code == 422


def test_random_order_is_the_library_strategy_seeded_by_the_user():
    from segloop.learn.data import Volume
    from segloop.learn.strategies import REGISTRY
    from segloop.learn.strategies import STRATEGIES as LIBRARY
    from segloop.server.models import user_seed

    assert STRATEGIES == LIBRARY
    ids = [f"i{k}" for k in range(7)]
    pool = [Volume(i, "", np.zeros((1, 2, 2), np.float32), None, (1.0, 1.0), "") for i in ids]
    for user in ("ann", "bob"):
        assert random_order(ids, user) == REGISTRY["random"](pool, None, [], user_seed(user))
    assert random_order(ids, "ann") != random_order(ids, "bob")


def test_finetune_session_follows_the_scribbles(modelled):
    client, tokens = modelled
    hub = client.app.state.segloop.extras
    r = post(client, tokens["ann"], "/api/models/finetune/sessions", image_id=FLAT)
    assert r.status_code == 201, r.text
    start = r.json()
    sid, initial = start["session_id"], mask_of(start["mask"])
    assert start["shape"] == list(FLAT_SHAPE) and initial.shape == FLAT_SHAPE
    shared = {k: v.clone() for k, v in hub["models"].predictor()[1].network.state_dict().items()}
    # a foreground stroke through the middle of a phantom blob, background along the border
    truth = phantom_2d(FLAT_SHAPE, seed=5).label > 0
    cy, cx = np.unravel_index(np.argmax(distance_transform_edt(truth)), FLAT_SHAPE)
    fg = [[int(cy), int(cx) - 1], [int(cy), int(cx) + 1]]
    bg = [[1, 1], [1, 54], [62, 54], [62, 1], [1, 1]]
    url = f"/api/models/finetune/sessions/{sid}/scribbles"
    r = post(client, tokens["ann"], url, foreground=fg, background=bg)
    assert r.status_code == 200, r.text
    first = mask_of(r.json()["mask"])
    assert r.json()["updates"] == 1 and first.shape == FLAT_SHAPE
    assert all(first[y, x] == 1 for y, x in fg) and first[1, 1] == 0 and first[62, 30] == 0
    # background on foreground the model kept: the mask changes there
    ys, xs = np.nonzero(first)
    far = np.hypot(ys - cy, xs - cx).argmax()
    spot = [int(ys[far]), int(xs[far])]
    r = post(client, tokens["ann"], url, background=[spot], finetune=False)
    second = mask_of(r.json()["mask"])
    assert second[tuple(spot)] == 0 and not np.array_equal(first, second)
    # the shared model is untouched
    after = hub["models"].predictor()[1].network.state_dict()
    assert all(np.array_equal(shared[k].numpy(), after[k].numpy()) for k in shared)
    # another user cannot reach it; bad points are refused
    assert post(client, tokens["bob"], url, foreground=fg).status_code == 404
    assert client.delete(f"/api/models/finetune/sessions/{sid}",
                         headers=auth(tokens["bob"])).status_code == 404
    for bad in ([[64, 1]], [[1, 2, 3]], [[-1, 0]]):
        r = post(client, tokens["ann"], url, foreground=bad)
        assert r.status_code == 422 and r.json()["status"] == 422, bad
    r = client.post(url, content=b'{"foreground": [[NaN, 1]]}',
                    headers={**auth(tokens["ann"]), "Content-Type": "application/json"})
    assert r.status_code == 422
    assert post(client, tokens["ann"], url).status_code == 422  # no stroke at all
    assert client.delete(f"/api/models/finetune/sessions/{sid}",
                         headers=auth(tokens["ann"])).json() == {"ended": sid}
    assert post(client, tokens["ann"], url, foreground=fg).status_code == 404


def test_finetune_on_a_slice_and_the_session_cap(modelled):
    client, tokens = modelled
    sessions = client.app.state.segloop.extras["models"].sessions
    r = post(client, tokens["ann"], "/api/models/finetune/sessions", image_id=VOL,
             slice={"axis": 0, "index": 12})
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    assert r.json()["shape"] == [48, 40] and mask_of(r.json()["mask"]).shape == (48, 40)
    r = post(client, tokens["ann"], f"/api/models/finetune/sessions/{sid}/scribbles",
             foreground=[[24, 20], [24, 22]], background=[[1, 1], [1, 38], [46, 38]])
    assert r.status_code == 200, r.text
    mask = mask_of(r.json()["mask"])
    assert mask.shape == (48, 40) and mask[24, 21] == 1 and mask[1, 1] == 0
    # the whole volume with a 2D model: [z, y, x] points, whole slices fine-tuned
    r = post(client, tokens["bob"], "/api/models/finetune/sessions", image_id=VOL)
    assert r.status_code == 201 and r.json()["shape"] == list(SHAPE)
    r = post(client, tokens["bob"], f"/api/models/finetune/sessions/{r.json()['session_id']}"
             "/scribbles", foreground=[[12, 24, 20], [12, 24, 22]],
             background=[[12, 1, 1], [12, 1, 38], [12, 46, 38]])
    assert r.status_code == 200, r.text
    mask = mask_of(r.json()["mask"])
    assert mask.shape == SHAPE and mask[12, 24, 21] == 1 and mask[12, 1, 1] == 0
    for body, status in (({"image_id": FLAT, "slice": {"axis": 0, "index": 0}}, 422),
                         ({"image_id": VOL, "slice": {"axis": 0, "index": 24}}, 422),
                         ({"image_id": VOL, "slice": {"axis": 3, "index": 0}}, 422),
                         ({"image_id": VOL, "label": 2}, 400),
                         ({"image_id": "nope"}, 404)):
        r = post(client, tokens["ann"], "/api/models/finetune/sessions", **body)
        assert r.status_code == status, (body, r.text)
    # two sessions per user: a third ends the least recently used
    ids = [post(client, tokens["ann"], "/api/models/finetune/sessions", image_id=FLAT)
           .json()["session_id"] for _ in range(2)]
    assert sessions.count("ann") == 2
    r = post(client, tokens["ann"], f"/api/models/finetune/sessions/{sid}/scribbles",
             foreground=[[24, 20]])
    assert r.status_code == 404 and "idle" in r.json()["error"]
    assert {e for e in ids} <= set(sessions._entries)


def test_a_changed_checkpoint_is_reloaded(modelled, checkpoint):
    client, tokens = modelled
    hub = client.app.state.segloop.extras.get("models")
    post(client, tokens["ann"], "/api/models/preannotate", image_id=FLAT)
    key = hub.predictor()[0]
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        r = post(client, tokens["ann"], "/api/models/preannotate", image_id=FLAT)
        assert r.json()["cached"] is False and hub.predictor()[0] != key
    finally:
        os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_view_maps_scribbles_through_a_resampling_model():
    """A model resampling to 1.6 mm in-plane: points go to its grid, masks come back."""
    from segloop.learn.config import load_config
    from segloop.learn.preprocess import preprocess_image
    from segloop.server.finetune_sessions import _View

    image = Image(np.zeros(SHAPE, np.float32), spacing=(2.0, 0.8, 0.8))
    cfg = load_config({"data": {"path": "x", "spacing": [1.6, 1.6]}}).data
    array, info = preprocess_image(image, cfg)
    assert array.shape == (1, 24, 24, 20)
    view = _View(image, array, info, (0, 12))
    assert (view.shape, view.array.shape, view.spacing, view.index) == \
        ((48, 40), (1, 24, 20), (1.6, 1.6), 12)
    assert view.points([[0, 0], [47, 39], [10, 21]]) == [[0, 0], [23, 19], [5, 10]]
    mask = np.zeros((24, 20), bool)
    mask[5:10, 5:10] = True
    back = view.mask(mask)
    assert back.shape == (48, 40) and back.dtype == np.uint8
    assert back[15, 15] == 1 and back[0, 0] == 0 and 80 <= back.sum() <= 120
    whole = _View(image, array, info, None)
    assert whole.points([[3, 47, 39]]) == [[3, 23, 19]]
    assert whole.mask(np.ones((24, 24, 20), bool)).shape == SHAPE


def test_without_a_model(served):
    client, tokens = served
    h = auth(tokens["ann"])
    assert client.get("/api/models", headers=h).json()["loaded"] is False
    for url, body in (("/api/models/preannotate", {"image_id": FLAT}),
                      ("/api/models/uncertainty", {"image_id": FLAT}),
                      ("/api/models/finetune/sessions", {"image_id": FLAT})):
        r = client.post(url, json=body, headers=h)
        assert r.status_code == 409 and r.json()["error"] == NO_MODEL, url
    r = client.get("/api/active/next?strategy=entropy", headers=h)
    assert r.status_code == 409 and NO_MODEL in r.json()["error"]
    nxt = client.get("/api/active/next", headers=h).json()
    expected = random_order([VOL, VOL2, FLAT], "ann")
    assert nxt["strategy"] == "random" and "seeded by the user name (ann)" in nxt["order"]
    assert (nxt["image_id"], nxt["rank"], nxt["model"]) == (expected[0][0], 1, None)
    items = client.get("/api/active/ranking", headers=h).json()["items"]
    assert [(i["image_id"], i["score"]) for i in items] == expected
    assert client.get("/api/active/next", headers=auth(tokens["bob"])).json()["image_id"] == \
        random_order([VOL, VOL2, FLAT], "bob")[0][0]
    assert client.get("/api/active/next").status_code == 401
