"""Predicting with exported ONNX models: same pipeline as the checkpoint, bad files refused."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from segloop.errors import CorruptFileError, EmptyFileError, FileMissingError, InvalidArgumentError
from segloop.io import Image
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.export import export_model
from segloop.learn.metadata import build_spec
from segloop.learn.networks import build_network
from segloop.learn.onnx_file import metadata_of
from segloop.learn.onnx_model import OnnxPredictor, load_onnx_model
from segloop.learn.predict import load_model

QUIET = {"log": lambda line: None}


def _checkpoint(path, cfg, *, preprocess=None, film=False):
    torch.manual_seed(0)
    spec = (preprocess or {}).get("metadata")
    net = build_network(cfg, in_channels=1, metadata=spec)
    with torch.no_grad():
        for p in net.parameters():  # larger weights: outputs away from 0.5
            p.mul_(3.0)
        if film:
            for p in net.film.parameters():
                p.normal_(0, 0.5)
    return save_checkpoint(path, {"config": cfg, "in_channels": 1, "model": net.state_dict(),
                                  "preprocess": preprocess or {}})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A 2D model that resamples to 2 mm in-plane, exported; and its checkpoint."""
    root = tmp_path_factory.mktemp("onnx")
    cfg = load_config({"data": {"path": "x", "spacing": [2.0, 2.0], "normalize": "minmax"},
                       "model": {"channels": [4, 8], "dropout": 0.3}})
    ck = _checkpoint(root / "m.pt", cfg)
    export_model(ck, root / "m.onnx", **QUIET)
    return root, ck


def _volume(seed=0):
    rng = np.random.default_rng(seed)
    direction = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    return Image(rng.random((5, 23, 18)).astype(np.float32), spacing=(3.0, 0.9, 1.1),
                 origin=(4.0, -2.0, 7.5), direction=direction)


def test_predict_gives_the_checkpoint_result_on_the_input_grid(models):
    root, ck = models
    onnx_model, torch_model = load_model(root / "m.onnx"), load_model(ck)
    assert isinstance(onnx_model, OnnxPredictor) and onnx_model.format == "onnx"
    assert onnx_model.network.meta_dim == 0 and onnx_model.export["opset"] == 18
    image = _volume()
    for tta in (False, True):
        a = onnx_model.predict(image, soft=True, tta=tta)
        b = torch_model.predict(image, soft=True, tta=tta)
        assert a.label.shape == image.shape == (5, 23, 18)
        assert a.label.spacing == image.spacing and a.label.origin == image.origin
        np.testing.assert_array_equal(a.label.direction, image.direction)
        np.testing.assert_allclose(a.probabilities.array, b.probabilities.array, atol=1e-4)
        np.testing.assert_array_equal(a.label.array, b.label.array)
        assert 0 < (a.label.array > 0).mean() < 1


def test_uncertainty_refuses_mc_dropout_but_takes_tta(models):
    root, _ = models
    model = load_onnx_model(root / "m.onnx")
    with pytest.raises(InvalidArgumentError, match=r"m.onnx: MC dropout: an exported model "
                                                   r"has no dropout"):
        model.uncertainty(_volume(), mc=3)
    result = model.uncertainty(_volume(), mc=0, tta=True)
    assert result.n_samples == 4 and result.maps["entropy"].shape == (5, 23, 18)
    assert model.network.train().training  # train/eval switch nothing on
    np.testing.assert_array_equal(model.predict(_volume()).label.array,
                                  load_onnx_model(root / "m.onnx").predict(_volume()).label.array)


def test_images_the_model_cannot_take_are_refused_naming_the_files(models):
    root, _ = models
    model = load_onnx_model(root / "m.onnx")
    rgb = Image(np.zeros((12, 12, 3), np.float32), channels=True, metadata={"path": "rgb.png"})
    with pytest.raises(InvalidArgumentError, match=r"rgb.png: has 3 channels; the model "
                                                   r"\(m.onnx\) takes 1"):
        model.predict(rgb)
    with pytest.raises(InvalidArgumentError, match=r"m.onnx: an input of shape \(1, 2, 8, 8\)"):
        model.network(torch.zeros(1, 2, 8, 8))
    with pytest.raises(InvalidArgumentError, match="exported models run on the CPU"):
        load_onnx_model(root / "m.onnx", device="cuda")


def test_bad_files_are_refused(models, tmp_path):
    root, _ = models
    with pytest.raises(FileMissingError):
        load_onnx_model(tmp_path / "none.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(EmptyFileError):
        load_onnx_model(tmp_path / "empty.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\xff\x00junk" * 20)
    with pytest.raises(CorruptFileError, match="junk.onnx: not an ONNX file"):
        load_model(tmp_path / "junk.onnx")
    foreign = onnx.load(root / "m.onnx")
    del foreign.metadata_props[:]
    onnx.save(foreign, tmp_path / "foreign.onnx")
    with pytest.raises(CorruptFileError, match="foreign.onnx: an ONNX model without segloop "
                                               "metadata"):
        load_onnx_model(tmp_path / "foreign.onnx")
    edited = onnx.load(root / "m.onnx")  # another normalisation written into the config
    for prop in edited.metadata_props:
        if prop.key == "config":
            prop.value = prop.value.replace('"minmax"', '"zscore"')
    onnx.save(edited, tmp_path / "edited.onnx")
    assert '"zscore"' in metadata_of(onnx.load(tmp_path / "edited.onnx"))["config"]
    weights = onnx.load(root / "m.onnx")  # one weight changed
    w = weights.graph.initializer[0]
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) + 1.0, w.name))
    onnx.save(weights, tmp_path / "weights.onnx")
    for name in ("edited.onnx", "weights.onnx"):
        with pytest.raises(CorruptFileError, match=f"{name}: changed after export: its "
                                                   "fingerprint does not match"):
            load_onnx_model(tmp_path / name)


def test_film_model_is_conditioned_on_metadata(tmp_path):
    cfg = load_config({"data": {"path": "x", "normalize": "none"},
                       "model": {"channels": [4, 8], "film": {"fields": ["contrast"]}}})
    spec = build_spec(cfg.model.film, {"a": {"contrast": "T1w"}, "b": {"contrast": "T2w"}})
    ck = _checkpoint(tmp_path / "f.pt", cfg, preprocess={"metadata": spec}, film=True)
    export_model(ck, tmp_path / "f.onnx", **QUIET)
    model, reference = load_onnx_model(tmp_path / "f.onnx"), load_model(ck)
    assert model.meta_dim == reference.meta_dim == 3
    image = Image(np.random.default_rng(1).random((16, 20)).astype(np.float32))
    probs = {}
    for contrast in ("T1w", "T2w", None):
        meta = None if contrast is None else {"contrast": contrast}
        a = model.predict(image, soft=True, meta=meta).probabilities.array
        b = reference.predict(image, soft=True, meta=meta).probabilities.array
        np.testing.assert_allclose(a, b, atol=1e-4)
        probs[contrast] = a
    assert np.abs(probs["T1w"] - probs["T2w"]).max() > 1e-2
    assert np.abs(probs["T1w"] - probs[None]).max() > 1e-2  # None: the "missing" vector
    with model.network.conditioned({"contrast": "T2w"}):
        bound = model.network(torch.from_numpy(image.array[None, None]))
    free = model.network(torch.from_numpy(image.array[None, None]),
                         model.network.meta_encoder.encode({"contrast": "T2w"}))
    torch.testing.assert_close(bound, free)
    with pytest.raises(InvalidArgumentError, match="meta: unknown field 'sex'"):
        model.predict(image, meta={"sex": "F"})
