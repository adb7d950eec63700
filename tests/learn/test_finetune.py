"""BIFSeg: the CRF on probabilities, the loss weights, the session on phantoms, its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segloop.data.phantoms import ball, disk
from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.learn.config import load_config
from segloop.learn.finetune import FinetuneSession
from segloop.learn.finetune_weights import (
    ProbabilityCut,
    class_log_probs,
    geodesic_distance,
    geodesic_speed,
    pixel_weights,
)
from segloop.learn.inference import ArrayPredictor
from segloop.learn.networks import build_network
from segloop.learn.predict import load_model
from segloop.simulate.scribbles import first_scribbles, next_scribble


def _dice(a, b) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def _phantom(centre, radius, level, seed, shape=(48, 48)):
    """A disk of intensity ``level`` on -1, Gaussian noise 0.3; (truth, (1, H, W) image)."""
    truth = disk(shape, centre, radius)
    noise = np.random.default_rng(seed).normal(0, 0.3, shape)
    return truth, (np.where(truth, level, -1.0) + noise)[None].astype(np.float32)


def _config(dims=2, **model):
    return load_config({"data": {"path": "x", "dims": dims},
                        "model": {"channels": [8, 16], "num_res_units": 0, **model}})


@pytest.fixture(scope="module")
def poor_model():
    """A tiny U-Net trained 8 steps on one bright disk: it misses most of a dimmer one."""
    torch.manual_seed(0)
    cfg = _config()
    net = build_network(cfg, in_channels=1)
    truth, image = _phantom((20, 26), 9, 1.0, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.from_numpy(image[None]), torch.from_numpy(truth[None].astype(np.int64))
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(net.logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ArrayPredictor(net.eval(), cfg, in_channels=1, device="cpu")


@pytest.fixture(scope="module")
def dim_disk():
    return _phantom((26, 22), 12, -0.6, 2)


def _scribbled(session, truth):
    fg, bg = first_scribbles(truth, margin=3)
    session.add_scribbles(fg.as_strokes(), foreground=True)
    session.add_scribbles(bg.as_strokes(), foreground=False)
    return session


# ------------------------------------------------------------------------ weights
def test_pixel_weights_exact_values_on_a_row():
    label = np.array([[1, 1, 1, 1, 0, 0, 0, 0]], bool)
    prob = np.array([[0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.35, 0.1]])
    fg = np.zeros((1, 8), bool)
    fg[0, 0] = True
    bg = np.zeros((1, 8), bool)
    bg[0, 5] = True
    # index 3: labelled object 2 voxels from the background scribble (< 2.5): 0;
    # index 6: p = 0.35, within 0.2 of 0.5: 0; scribbles: 5; others 1
    w = pixel_weights(label, prob, fg, bg, weight=5.0, near=2.5, band=0.2)
    assert w.dtype == np.float32
    assert w.tolist() == [[5.0, 1.0, 1.0, 0.0, 1.0, 5.0, 0.0, 1.0]]
    # flipped: background within 2.5 of the foreground scribble (1, 2) and object within
    # 2.5 of the background scribble (4, 6, 7) are uncertain
    assert pixel_weights(~label, prob, fg, bg, near=2.5, band=0.0).tolist() == [
        [5.0, 0.0, 0.0, 1.0, 0.0, 5.0, 0.0, 0.0]]
    assert pixel_weights(label, prob, fg, bg, near=0.0, band=0.0, weight=2.0).tolist() == [
        [2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0]]


def test_geodesic_closeness_does_not_cross_an_edge():
    image = np.zeros((7, 20, 1))
    image[:, 10:] = 4.0  # an edge between x = 9 and 10
    bg = np.zeros((7, 20), bool)
    bg[:, 16] = True
    label = np.zeros((7, 20), bool)
    label[:, :14] = True  # the cut put the object up to x = 13, across the edge
    prob = np.full((7, 20), 0.9)
    none = np.zeros((7, 20), bool)
    euclid = pixel_weights(label, prob, none, bg, near=8.0, band=0.0)
    assert euclid[3].tolist() == [1] * 9 + [0] * 5 + [1, 1, 5, 1, 1, 1]  # x = 9..13 (d 7..3)
    speed = geodesic_speed(image, spacing=(1, 1))
    d = geodesic_distance(bg, speed=speed)
    assert d[3, 16] == 0 and d[3, 15] == pytest.approx(1.0) and d[3, 9] > 50  # behind the edge
    geo = pixel_weights(label, prob, none, bg, near=8.0, band=0.0, speed=speed)
    assert geo[3].tolist() == [1] * 12 + [0] * 2 + [1, 1, 5, 1, 1, 1]  # x = 12, 13 only


def test_pixel_weights_reject_mismatched_shapes_and_negative_values():
    a = np.zeros((3, 3), bool)
    with pytest.raises(InvalidArgumentError, match=r"probability has shape \(2, 3\)"):
        pixel_weights(a, np.zeros((2, 3)), a, a)
    with pytest.raises(InvalidArgumentError, match="near must be a number >= 0"):
        pixel_weights(a, np.zeros((3, 3)), a, a, near=-1)


def test_the_crf_follows_confident_probabilities_and_obeys_scribbles():
    image = np.zeros((1, 8, 1))
    prob = np.array([[0.99, 0.99, 0.99, 0.99, 0.01, 0.01, 0.01, 0.01]])
    crf = ProbabilityCut(image, spacing=(1, 1), lam=1.0)
    assert crf.cut(prob).astype(int).tolist() == [[1, 1, 1, 1, 0, 0, 0, 0]]
    fg = np.zeros((1, 8), bool)
    fg[0, 6] = True  # a hard constraint against a confident network
    assert crf.cut(prob, fg, None).astype(int).tolist() == [[1, 1, 1, 1, 0, 0, 1, 0]]
    assert crf.cut(prob, fg, None, connected=True).astype(int).tolist() == [
        [0, 0, 0, 0, 0, 0, 1, 0]]
    boxed = ProbabilityCut(image, spacing=(1, 1), lam=1.0, box=((0, 2), (1, 6)))
    assert boxed.cut(prob).astype(int).tolist() == [[0, 0, 1, 1, 0, 0, 0, 0]]


def test_class_log_probs_of_each_activation():
    logits = torch.tensor([0.0, 1.0, -1.0]).view(1, 3, 1, 1)
    p = torch.softmax(logits, dim=1)[0, :, 0, 0]
    lp, l1mp = class_log_probs(logits, activation="softmax", label=2)
    assert float(lp.exp()) == pytest.approx(float(p[2]))
    assert float(l1mp.exp()) == pytest.approx(float(p[0] + p[1]))
    lp, l1mp = class_log_probs(logits, activation="sigmoid", label=2)
    assert float(lp.exp()) == pytest.approx(float(torch.sigmoid(torch.tensor(1.0))))
    assert float(lp.exp() + l1mp.exp()) == pytest.approx(1.0)
    lp, _ = class_log_probs(torch.tensor([2.0, 4.0]).view(1, 1, 1, 2), activation="normrelu",
                            label=1)
    assert lp.exp().flatten().tolist() == pytest.approx([0.5, 1 - 1e-6])


# ------------------------------------------------------------------------ session
def test_scribbles_and_finetuning_raise_dice_over_a_poor_model(poor_model, dim_disk):
    truth, image = dim_disk
    before = {k: v.clone() for k, v in poor_model.network.state_dict().items()}
    tuned = _scribbled(FinetuneSession(poor_model, image, steps=10), truth)
    initial = _dice(tuned.initial()[1], truth)
    p0 = float(tuned.probability[truth].mean())
    mask = tuned.update()
    crf = _scribbled(FinetuneSession(poor_model, image, steps=10), truth).update(finetune=False)
    assert initial < 0.8
    assert _dice(mask, truth) > initial + 0.15
    assert _dice(mask, truth) >= _dice(crf, truth)
    assert float(tuned.probability[truth].mean()) > p0 + 0.02  # the network learnt the object
    (losses,) = tuned.losses
    assert len(losses) == 10 and losses[-1] < 0.8 * losses[0]  # 0.156 -> 0.119
    s = next_scribble(mask, truth)
    tuned.add_scribbles(s.as_strokes(), foreground=s.foreground)
    assert _dice(tuned.update(), truth) >= _dice(mask, truth) - 0.01
    assert tuned.updates == 2 and len(tuned.seconds) == 2
    # the shared model is untouched; the session's copy moved
    after = poor_model.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(before[k], v) for k, v in tuned.network.state_dict().items())


def test_sessions_are_deterministic(poor_model, dim_disk):
    truth, image = dim_disk
    a = _scribbled(FinetuneSession(poor_model, image, steps=3), truth).update()
    b = _scribbled(FinetuneSession(poor_model, image, steps=3), truth).update()
    assert np.array_equal(a, b)


def test_given_outputs_are_used_as_they_are_and_left_unchanged(poor_model, dim_disk):
    truth, image = dim_disk
    outputs = poor_model.infer(image, tta=False)
    kept = outputs.copy()
    given = _scribbled(FinetuneSession(poor_model, image, steps=3, outputs=outputs), truth)
    own = _scribbled(FinetuneSession(poor_model, image, steps=3), truth)
    assert np.array_equal(given.update(), own.update())
    assert np.array_equal(outputs, kept)  # the session trained its copy, not the caller's array


def test_save_refuses_to_overwrite_and_keeps_a_version(poor_model, dim_disk, tmp_path):
    truth, image = dim_disk
    session = _scribbled(FinetuneSession(poor_model, image, steps=2), truth)
    session.update()
    path = tmp_path / "tuned.pt"
    path.write_bytes(b"the shared model")
    with pytest.raises(OutputExistsError, match="tuned.pt: exists"):
        session.save(path)
    assert path.read_bytes() == b"the shared model"
    session.save(path, overwrite=True)
    assert (tmp_path / "tuned.pt.~1~").read_bytes() == b"the shared model"
    reloaded = load_model(path, device="cpu")
    probs = reloaded.infer(image, tta=False)
    assert np.allclose(probs[1], session.probability, atol=1e-5)


def test_a_box_start_keeps_the_outside_background(poor_model, dim_disk):
    truth, image = dim_disk
    session = FinetuneSession(poor_model, image, steps=5)
    mask = session.start_box([12, 8], [40, 36])
    assert not mask[:12].any() and not mask[41:].any() and not mask[:, :8].any()
    assert session.probability[:12].max() == 0.0
    fg, _ = first_scribbles(truth, margin=3)
    session.add_scribbles(fg.as_strokes(), foreground=True)  # a box needs no background
    tuned = session.update()
    assert not tuned[:12].any() and not tuned[:, 37:].any()
    assert _dice(tuned, truth) > max(_dice(mask, truth), 0.8)
    with pytest.raises(InvalidArgumentError, match=r"foreground scribble point \[2, 2\] lies "
                                                   r"outside the box \[12, 8\]...\[40, 36\]"):
        session.add_scribbles([[2, 2]], foreground=True)


def test_a_3d_model_fine_tunes_a_region_around_the_scribbles():
    torch.manual_seed(0)
    cfg = _config(dims=3)
    predictor = ArrayPredictor(build_network(cfg, in_channels=1), cfg, in_channels=1,
                               device="cpu")
    truth = ball((16, 40, 40), (8, 12, 12), 5)
    image = np.where(truth, 1.0, -1.0)[None].astype(np.float32)
    session = FinetuneSession(predictor, image, steps=2, margin=3)
    initial = session.initial()[1]
    fg, bg = first_scribbles(truth, margin=2)
    session.add_scribbles(fg.as_strokes(), foreground=True)
    session.add_scribbles(bg.as_strokes(), foreground=False)
    mask = session.update()
    region = session._region()
    assert [(r.start, r.stop) for r in region] == [(5, 12), (2, 23), (2, 23)]
    outside = np.ones(truth.shape, bool)
    outside[region] = False
    assert np.array_equal(mask[outside], initial[outside])  # untouched beyond the region
    assert mask[fg.strokes[0][:, 0], fg.strokes[0][:, 1], fg.strokes[0][:, 2]].all()


def test_a_2d_model_on_a_volume_works_on_whole_slices(poor_model):
    truth2, image2 = _phantom((26, 22), 12, -0.6, 2)
    volume = np.stack([image2[0]] * 6)[None]  # (1, 6, 48, 48), slices along axis 0
    truth = np.stack([truth2] * 6)
    truth[:2] = False
    session = FinetuneSession(poor_model, volume, slice_axis=0, steps=2, margin=1)
    fg, bg = first_scribbles(truth, margin=3)
    session.add_scribbles(fg.as_strokes(), foreground=True)
    session.add_scribbles(bg.as_strokes(), foreground=False)
    mask = session.update()
    lo = int(np.vstack(fg.strokes + bg.strokes)[:, 0].min())
    assert [(r.start, r.stop) for r in session._region()][1:] == [(0, 48), (0, 48)]
    assert session._region()[0].start == max(lo - 1, 0)
    assert mask.shape == truth.shape and mask[truth].mean() > 0.5


# ------------------------------------------------------------------------- errors
def test_bad_scribbles_are_clear_one_line_errors(poor_model, dim_disk):
    truth, image = dim_disk
    s = FinetuneSession(poor_model, image, steps=1)
    with pytest.raises(InvalidArgumentError, match="no scribbles yet"):
        s.update()
    with pytest.raises(InvalidArgumentError, match=r"point \[3.0, 60.0\] lies outside the "
                                                   r"image of shape \(48, 48\)"):
        s.add_scribbles([[3, 4], [3, 60]], foreground=True)
    with pytest.raises(InvalidArgumentError, match="scribble has no point"):
        s.add_scribbles([], foreground=True)
    with pytest.raises(InvalidArgumentError, match="scribble has no point"):
        s.add_scribbles(np.zeros((48, 48), bool), foreground=False)
    with pytest.raises(InvalidArgumentError, match="foreground must be true or false"):
        s.add_scribbles([[3, 4]], foreground="yes")
    s.add_scribbles([[20, 20], [30, 20]], foreground=True)
    with pytest.raises(InvalidArgumentError, match="all scribbles are foreground: the cut "
                                                   "needs a background scribble too"):
        s.update()
    with pytest.raises(InvalidArgumentError, match="covers the whole image"):
        s.start_box([0, 0], [47, 47])


def test_bad_models_and_images_are_refused(poor_model, dim_disk):
    _, image = dim_disk
    with pytest.raises(InvalidArgumentError, match=r"label=2: the model has 1 class "
                                                   r"\(1 foreground\)"):
        FinetuneSession(poor_model, image, label=2)
    with pytest.raises(InvalidArgumentError, match="image has 2 channels"):
        FinetuneSession(poor_model, np.concatenate([image, image]))
    with pytest.raises(InvalidArgumentError, match="steps must be an integer >= 0"):
        FinetuneSession(poor_model, image, steps=1.5)
    with pytest.raises(InvalidArgumentError, match=r"outputs must have shape \(2, 48, 48\)"):
        FinetuneSession(poor_model, image, outputs=np.zeros((3, 48, 48)))


def _film_model():
    """A FiLM U-Net on ``contrast`` (a, b) whose generator is far from zero."""
    from segloop.learn.metadata import build_spec

    cfg = load_config({"data": {"path": "x"}, "model": {
        "channels": [8, 16], "num_res_units": 0, "film": {"fields": ["contrast"], "drop": 0}}})
    spec = build_spec(cfg.model.film, {"1": {"contrast": "a"}, "2": {"contrast": "b"}})
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=1, metadata=spec)
    with torch.no_grad():
        for p in net.film.parameters():
            p.copy_(torch.randn(p.shape) * 0.5)
    return ArrayPredictor(net.eval(), cfg, in_channels=1, device="cpu")


def test_a_film_model_is_conditioned_on_the_image_metadata(dim_disk, tmp_path):
    truth, image = dim_disk
    model = _film_model()
    given = FinetuneSession(model, image, steps=2, meta={"contrast": "b"})
    expected = model.infer(image, tta=False, meta={"contrast": "b"})[1]
    np.testing.assert_allclose(given.probability, expected, atol=1e-6)
    missing = FinetuneSession(model, image, steps=2).probability  # the documented fallback
    assert np.abs(missing - given.probability).max() > 0.01
    generator = model.network.film.net[0].weight.detach().clone()  # columns: a, b, missing
    _scribbled(given, truth).update()
    tuned = given.network.film.net[0].weight.detach()
    assert not torch.equal(tuned[:, 1], generator[:, 1])  # trained with contrast b bound
    assert torch.equal(tuned[:, 0], generator[:, 0]) and torch.equal(tuned[:, 2], generator[:, 2])
    reloaded = load_model(given.save(tmp_path / "tuned.pt"), device="cpu")  # with its encoding
    probs = reloaded.infer(image, tta=False, meta={"contrast": "b"})
    np.testing.assert_allclose(probs[1], given.probability, atol=1e-5)


def test_cascades_and_exported_models_cannot_be_fine_tuned(poor_model, dim_disk):
    from onnx import TensorProto, helper

    from segloop.learn.cascade import CascadePredictor
    from segloop.learn.onnx_model import OnnxPredictor, OnnxSegmenter, ort_session
    from segloop.learn.predict import Predictor

    _, image = dim_disk
    segment = load_config({"data": {"path": "x"}, "model": {"channels": [8, 16]},
                           "cascade": {"locate": "stage1.pt"}})
    cascade = CascadePredictor(Predictor(poor_model.network, poor_model.config, in_channels=1),
                               Predictor(poor_model.network, segment, in_channels=1),
                               source="cascade.pt")
    with pytest.raises(InvalidArgumentError, match="cascade.pt: .*this model is a cascade"):
        FinetuneSession(cascade, image)
    graph = helper.make_graph(  # logits: background 0, foreground the image
        [helper.make_node("Mul", ["image", "zero"], ["background"]),
         helper.make_node("Concat", ["background", "image"], ["logits"], axis=1)], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 1, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 2, "h", "w"])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    network = OnnxSegmenter(ort_session(model.SerializeToString()), activation="softmax")
    exported = OnnxPredictor(network, poor_model.config, in_channels=1, device="cpu",
                             source="model.onnx")
    assert exported.infer(image, tta=False).shape == (2, 48, 48)  # it predicts
    with pytest.raises(InvalidArgumentError, match="model.onnx: the model has no trainable "
                                                   "weights"):
        FinetuneSession(exported, image)
