"""ONNX export: float32 and int8 files, their metadata, and int8 agreeing with float32."""

import json

import numpy as np
import onnx
import pytest
import torch

from segloop.data import phantom_2d
from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.io import Image, write_image
from segloop.learn.checkpoint import load_checkpoint, restore_network, save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.data import Volume
from segloop.learn.export import export_model, to_onnx
from segloop.learn.metadata import build_spec
from segloop.learn.networks import build_network
from segloop.learn.onnx_calibration import calibration_inputs, compare_outputs
from segloop.learn.onnx_file import fingerprint, metadata_of
from segloop.learn.onnx_model import load_onnx_model, ort_session
from segloop.learn.onnx_quantize import quantize
from segloop.learn.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A [8, 16] U-Net trained a few steps on 2D phantoms (outputs far from 0.5)."""
    root = tmp_path_factory.mktemp("quant")
    for i in range(6):
        ph = phantom_2d((40, 40), seed=i, n_blobs=2, thin_structures=False)
        write_image(Image(ph.image), root / "data" / "images" / f"c{i}.nii.gz")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    root / "data" / "labels" / f"c{i}.nii.gz")
    cfg = load_config({"data": {"path": str(root / "data"), "split": {"test": 1, "val": 0}},
                       "model": {"channels": [8, 16], "dropout": 0.2},
                       "augmentation": {"enabled": False},
                       "training": {"epochs": 4, "iterations_per_epoch": 8, "batch_size": 4},
                       "output": {"dir": str(root / "run"), "tensorboard": False}})
    train(cfg, log=lambda line: None)
    return root, root / "run" / "best.pt"


@pytest.fixture(scope="module")
def exported(trained):
    """The float32 and the int8 (6 calibration samples) exports of the trained model."""
    root, ck = trained
    return {fmt: export_model(ck, root / f"{fmt}.onnx", format=fmt, calibration=6,
                              log=lambda line: None) for fmt in ("onnx", "int8")}


def test_float_export_reproduces_the_checkpoint_and_carries_its_metadata(trained, exported):
    _, ck = trained
    result = exported["onnx"]
    assert result.format == "onnx" and result.float_error < 1e-4 and result.check is None
    model = onnx.load(result.path)
    meta = metadata_of(model)
    assert meta["segloop_format"] == "segloop-onnx" and meta["format"] == "onnx"
    assert meta["in_channels"] == "1" and meta["meta_dim"] == "0" and meta["source"] == "best.pt"
    assert json.loads(meta["config"])["model"]["channels"] == [8, 16]
    assert json.loads(meta["preprocess"]) == load_checkpoint(ck)["preprocess"]
    assert meta["fingerprint"] == fingerprint(model)
    assert [i.name for i in model.graph.input] == ["image"]
    assert {n.op_type for n in model.graph.node} >= {"Conv", "LeakyRelu"}
    assert "PRelu" not in {n.op_type for n in model.graph.node}  # PReLU written as LeakyReLU
    # dynamic batch and spatial sizes: a batch of 3 at 24 x 56 gives the torch logits
    net = restore_network(load_checkpoint(ck))
    x = torch.randn(3, 1, 24, 56, generator=torch.Generator().manual_seed(1))
    out = ort_session(str(result.path)).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, net.logits(x).numpy(), atol=1e-4)


def test_int8_agrees_with_float32_within_bounds(exported):
    result = exported["int8"]
    check = result.check
    assert result.calibration == 6 and check["samples"] == 6
    assert check["agreement"] >= 0.97 and check["dice"] >= 0.9
    assert check["mean_abs_diff"] < 0.05
    model = onnx.load(result.path)
    ops = {n.op_type for n in model.graph.node}
    assert "QLinearConv" in ops and "Conv" in ops  # narrow convolutions stay float32
    assert result.excluded and all(n for n in result.excluded)
    recipe = json.loads(metadata_of(model)["export"])
    assert recipe["quantization"]["calibration"] == 6 and recipe["check"] == check
    assert result.bytes < exported["onnx"].bytes
    # on test images never seen in calibration, int8 and float32 predictions agree too
    q, f = load_onnx_model(result.path), load_onnx_model(exported["onnx"].path)
    assert q.format == "int8" and f.format == "onnx"
    for seed in (11, 12):
        image = Image(phantom_2d((40, 40), seed=seed, n_blobs=2, thin_structures=False).image)
        a, b = f.predict(image, soft=True), q.predict(image, soft=True)
        fg_a, fg_b = a.label.array > 0, b.label.array > 0
        dice = 2 * (fg_a & fg_b).sum() / max(fg_a.sum() + fg_b.sum(), 1)
        assert fg_a.sum() > 20 and dice >= 0.9
        assert np.abs(a.probabilities.array - b.probabilities.array).mean() < 0.05


def test_existing_output_needs_overwrite_and_is_kept(trained, tmp_path):
    _, ck = trained
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="m.onnx: exists; pass --overwrite"):
        export_model(ck, out, log=lambda line: None)
    assert out.read_bytes() == b"old"
    export_model(ck, out, overwrite=True, log=lambda line: None)
    assert (tmp_path / "m.onnx.~1~").read_bytes() == b"old"
    assert metadata_of(onnx.load(out))["format"] == "onnx"


def test_bad_arguments_are_refused(trained, tmp_path):
    _, ck = trained
    with pytest.raises(InvalidArgumentError, match="format must be one of onnx, int8"):
        export_model(ck, tmp_path / "m.onnx", format="fp16")
    with pytest.raises(InvalidArgumentError, match="method must be one of"):
        export_model(ck, tmp_path / "m.onnx", format="int8", method="mse")
    with pytest.raises(InvalidArgumentError, match="calibration: at least 1 sample"):
        export_model(ck, tmp_path / "m.onnx", format="int8", calibration=0,
                     log=lambda line: None)
    cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]},
                       "cascade": {"locate": "locate.pt"}})
    cascade = save_checkpoint(tmp_path / "c.pt", {"config": cfg, "in_channels": 1, "model":
                                                  build_network(cfg, in_channels=1).state_dict()})
    with pytest.raises(InvalidArgumentError, match="c.pt: a cascade's checkpoint runs two"):
        export_model(cascade, tmp_path / "c.onnx")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "c.onnx").exists()


def test_film_network_exports_with_a_meta_input(tmp_path):
    cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8],
                       "film": {"fields": ["contrast"]}}})
    spec = build_spec(cfg.model.film, {"a": {"contrast": "T1w"}, "b": {"contrast": "T2w"}})
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=1, metadata=spec).eval()
    with torch.no_grad():  # a trained-like generator: metadata changes the output
        for p in net.film.parameters():
            p.normal_(0, 0.5)
    model, error = to_onnx(net, cfg, in_channels=1)
    assert error < 1e-4 and [i.name for i in model.graph.input] == ["image", "meta"]
    session = ort_session(model.SerializeToString())
    x = torch.randn(2, 1, 16, 20, generator=torch.Generator().manual_seed(2))
    outs = []
    for contrast in ("T1w", "T2w"):
        meta = np.tile(net.meta_encoder.encode({"contrast": contrast}), (2, 1))
        out = session.run(None, {"image": x.numpy(), "meta": meta})[0]
        with torch.no_grad():
            np.testing.assert_allclose(out, net.logits(x, torch.from_numpy(meta)).numpy(),
                                       atol=1e-4)
        outs.append(out)
    assert np.abs(outs[0] - outs[1]).max() > 1e-2
    rng = np.random.default_rng(0)  # int8 with the meta input: calibrated and still conditioned
    feeds = [{"image": rng.standard_normal((1, 1, 16, 16)).astype(np.float32),
              "meta": net.meta_encoder.encode({"contrast": c})[None]} for c in ("T1w", "T2w")]
    q, _ = quantize(model, feeds, min_channels=1)
    assert [i.name for i in q.graph.input] == ["image", "meta"]
    session = ort_session(q.SerializeToString())
    outs = [session.run(None, feed)[0] for feed in feeds]
    refs = [ort_session(model.SerializeToString()).run(None, feed)[0] for feed in feeds]
    assert np.abs(outs[0] - outs[1]).max() > 1e-2
    assert compare_outputs(refs, outs, config=cfg)["agreement"] > 0.9


def test_calibration_samples_slices_windows_and_metadata():
    cfg = load_config({"data": {"path": "x", "dims": 2, "patch_size": [16, 16]},
                       "model": {"channels": [4, 8, 16]}})
    label = np.zeros((5, 30, 20), np.uint8)
    label[3, 10:14, 5:9] = 1
    vol = Volume("v", "s", np.arange(3000, dtype=np.float32).reshape(1, 5, 30, 20), label,
                 (1.0, 1.0, 1.0), "v.nii.gz", slice_axis=0, meta=np.ones(3, np.float32))
    items = calibration_inputs([vol], cfg, 4, meta_dim=3)
    assert [it["image"].shape for it in items] == [(1, 1, 16, 16)] * 4
    first = items[0]["image"][0, 0]  # a foreground-centred window of slice 3
    assert first.min() >= 3 * 600 and first.max() < 4 * 600
    assert all(it["meta"].tolist() == [[1.0, 1.0, 1.0]] for it in items)
    cfg3 = load_config({"data": {"path": "x", "dims": 3}, "model": {"channels": [4, 8]}})
    vol3 = Volume("w", "s", np.zeros((2, 7, 9, 10), np.float32), None, (1.0, 1.0, 1.0), "w")
    items = calibration_inputs([vol3], cfg3, 2, meta_dim=2, missing=np.array([0, 1], np.float32))
    assert items[0]["image"].shape == (1, 2, 8, 10, 10)  # padded to multiples of 2
    assert items[1]["meta"].tolist() == [[0.0, 1.0]]  # no metadata: the missing vector
    with pytest.raises(InvalidArgumentError, match="no training volume"):
        calibration_inputs([], cfg, 2)


def test_compare_outputs_counts_changed_pixels():
    cfg = load_config({"data": {"path": "x"}})
    ref = np.zeros((1, 2, 2, 2), np.float32)
    ref[0, 1, 0, :] = 5.0  # foreground on the top row
    other = ref.copy()
    other[0, 1, 0, 1] = -5.0  # one of the two foreground pixels lost
    out = compare_outputs([ref], [other], config=cfg)
    assert out["agreement"] == 0.75 and out["dice"] == pytest.approx(2 / 3)
    # softmax: the lost pixel's probabilities move by sigmoid(5) - sigmoid(-5) = tanh(2.5)
    assert out["max_abs_diff"] == pytest.approx(np.tanh(2.5), abs=1e-5)
    assert out["mean_abs_diff"] == pytest.approx(2 * np.tanh(2.5) / 8, abs=1e-5)


def test_int8_2d_upsampling_is_quantized_and_3d_weights_are_stored_as_int8(exported):
    nodes = onnx.load(exported["int8"].path).graph.node
    assert "ConvTranspose" not in [n.op_type for n in nodes]  # sub-pixel, int8 convolution
    (shuffle,) = [n for n in nodes if n.op_type == "DepthToSpace"]
    producer = {o: n.op_type for n in nodes for o in n.output}
    users = [n.op_type for n in nodes if shuffle.output[0] in n.input]
    assert producer[shuffle.input[0]] == "QLinearConv" and users == ["DequantizeLinear"]
    cfg = load_config({"data": {"path": "x", "dims": 3}, "model": {"channels": [4, 8]}})
    torch.manual_seed(0)
    model, error = to_onnx(build_network(cfg, in_channels=1), cfg, in_channels=1)
    rng = np.random.default_rng(0)
    feeds = [{"image": rng.standard_normal((1, 1, 8, 8, 8)).astype(np.float32)} for _ in range(2)]
    q, excluded = quantize(model, feeds, min_channels=1)
    assert error < 1e-4 and excluded == []
    (up,) = [n for n in q.graph.node if n.op_type == "ConvTranspose"]  # no int8 kernel in 3D
    (dq,) = [n for n in q.graph.node if n.output[0] == up.input[1]]
    assert dq.op_type == "DequantizeLinear"
    int8 = {t.name: t for t in q.graph.initializer}[dq.input[0]]
    assert int8.data_type == onnx.TensorProto.INT8
    out = ort_session(q.SerializeToString()).run(None, feeds[0])[0]
    ref = ort_session(model.SerializeToString()).run(None, feeds[0])[0]
    assert (out.argmax(1) == ref.argmax(1)).mean() > 0.9
