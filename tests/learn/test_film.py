"""The FiLM network: identity at start, conditioning, fallbacks, checkpoints."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from segloop.errors import CorruptFileError, InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint, restore_network, save_checkpoint
from segloop.learn.config import ConfigError, load_config
from segloop.learn.epoch import train_step
from segloop.learn.film import FilmSegmenter
from segloop.learn.inference import ArrayPredictor
from segloop.learn.metadata import build_spec
from segloop.learn.networks import build_network
from segloop.learn.transfer import transfer_weights


def _cfg(film=True, **model):
    raw = {"data": {"path": "x"}, "model": {"channels": [4, 8, 16], "num_res_units": 0,
                                            "dropout": 0.0, **model}}
    if film:
        raw["model"]["film"] = {"fields": ["contrast"], "drop": 0.0, **(film if isinstance(
            film, dict) else {})}
    return load_config(raw)


SPEC = build_spec(_cfg().model.film, {"a": {"contrast": "T1w"}, "b": {"contrast": "T2w"}})


def _film_net(seed=0, **film) -> FilmSegmenter:
    torch.manual_seed(seed)
    return build_network(_cfg(film or True), in_channels=1, metadata=SPEC)


def _perturb(net: FilmSegmenter, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.film.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def test_film_starts_as_the_plain_unet_with_the_same_keys():
    torch.manual_seed(0)
    plain = build_network(_cfg(film=False), in_channels=1).eval()
    net = _film_net(0).eval()
    assert net.sites == ["down0", "down1", "bottom", "up1"] and net.meta_dim == 3
    film_keys = {k for k in net.state_dict() if k.startswith("film.")}
    assert set(net.state_dict()) - film_keys == set(plain.state_dict())
    assert film_keys == {"film.net.0.weight", "film.net.0.bias", "film.net.2.weight",
                         "film.net.2.bias"}
    assert net.film.net[2].weight.shape == (2 * (4 + 8 + 16 + 4), 64)  # hidden: 64
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = plain(x)
        for meta in ({"contrast": "T1w"}, {"contrast": "T2w"}, None):
            with net.conditioned(meta):
                assert torch.equal(net(x), ref)


def test_outputs_follow_the_metadata_once_the_generator_moved():
    net = _film_net().eval()
    _perturb(net)
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    enc = net.meta_encoder
    t1, t2 = enc.encode({"contrast": "T1w"}), enc.encode({"contrast": "T2w"})
    with torch.no_grad():
        a, b, none = net.logits(x, t1), net.logits(x, t2), net.logits(x)
        assert (a - b).abs().max() > 1e-3 and (a - none).abs().max() > 1e-3
        assert torch.equal(net.logits(x, {"contrast": "T1w"}), a)  # raw values, encoded alike
        assert torch.equal(none, net.logits(x, enc.missing()))  # the documented fallback
        mixed = net.logits(x, torch.from_numpy(np.stack([t1, t2])))  # one vector per image
        assert torch.allclose(mixed[0], a[0], atol=1e-6) and torch.allclose(mixed[1], b[1],
                                                                           atol=1e-6)
        with net.conditioned({"contrast": "T2w"}):
            assert torch.equal(net.logits(x), b)
            with net.conditioned(t1):
                assert torch.equal(net.logits(x), a)
            assert torch.equal(net.backbone(x), b)  # the hooks use the bound values too
        assert torch.equal(net.logits(x), none)  # unbound again


def test_a_few_training_steps_learn_what_the_metadata_says():
    # the image says nothing: the label is everything for T1w and nothing for T2w
    net = _film_net(0)
    torch.manual_seed(0)
    image = torch.rand(8, 1, 16, 16)
    label = torch.zeros(8, 1, 16, 16, dtype=torch.long)
    label[:4] = 1
    enc = net.meta_encoder
    meta = torch.from_numpy(np.stack([enc.encode({"contrast": "T1w"})] * 4
                                     + [enc.encode({"contrast": "T2w"})] * 4))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)

    def loss(logits, target):
        return torch.nn.functional.cross_entropy(logits, target[:, 0])

    first = train_step(net.logits, {"image": image, "label": label, "meta": meta}, loss, opt,
                       "cpu")
    for _ in range(30):
        last = train_step(net.logits, {"image": image, "label": label, "meta": meta}, loss, opt,
                          "cpu")
    assert last < 0.5 * first
    net.eval()
    with torch.no_grad():
        p1 = net(image[:1], {"contrast": "T1w"})[0, 1].mean()
        p2 = net(image[:1], {"contrast": "T2w"})[0, 1].mean()
    assert p1 > 0.8 and p2 < 0.2


def test_metadata_dropout_hides_fields_in_training_mode_only():
    net = _film_net(drop=1.0)
    _perturb(net)
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    t1 = net.meta_encoder.encode({"contrast": "T1w"})
    with torch.no_grad():
        hidden = net.logits(x, t1)  # training mode, drop 1: every field hidden
        net.eval()
        assert torch.allclose(hidden, net.logits(x, net.meta_encoder.missing()), atol=1e-6)
        assert not torch.allclose(hidden, net.logits(x, t1), atol=1e-3)


def test_bad_metadata_shapes_and_a_missing_encoding_are_refused():
    net = _film_net()
    x = torch.zeros(3, 1, 16, 16)
    with pytest.raises(InvalidArgumentError, match=r"shape \(1, 2\).*vectors of 3 values "
                       r"\(contrast\)"):
        net.logits(x, np.zeros(2, np.float32))
    with pytest.raises(InvalidArgumentError, match="2 metadata vectors for a batch of 3"):
        net.logits(x, np.zeros((2, 3), np.float32))
    with pytest.raises(InvalidArgumentError, match="model.film: the network needs the metadata"):
        build_network(_cfg(), in_channels=1)
    with pytest.raises(ConfigError, match="training.compile: not with model.film"):
        load_config({"data": {"path": "x"}, "model": {"film": {"fields": ["contrast"]}},
                     "training": {"compile": True}})
    with pytest.raises(ConfigError, match="film.levels: 3 is not a level"):
        _cfg({"levels": [0, 3]})


def test_levels_and_decoder_choose_the_sites():
    net = build_network(_cfg({"levels": [1], "decoder": False, "hidden": 5}), in_channels=1,
                        metadata=SPEC)
    assert net.sites == ["down1"] and net.film.net[2].weight.shape == (16, 5)
    assert _film_net().film.net[0].weight.shape == (64, 3)


def test_deepcopy_modulates_with_its_own_generator():
    net = _film_net().eval()
    twin = copy.deepcopy(net)
    _perturb(twin)
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = net.logits(x, {"contrast": "T1w"})
        assert not torch.equal(twin.logits(x, {"contrast": "T1w"}), before)
        assert torch.equal(net.logits(x, {"contrast": "T1w"}), before)


def test_checkpoint_round_trip_keeps_the_encoding(tmp_path):
    net = _film_net()
    _perturb(net)
    cfg = _cfg()
    path = save_checkpoint(tmp_path / "f.pt", {"config": cfg, "in_channels": 1,
                                               "model": net.state_dict(),
                                               "preprocess": {"metadata": SPEC}})
    ck = load_checkpoint(path)
    again = restore_network(ck)
    assert isinstance(again, FilmSegmenter) and again.meta_encoder.spec == SPEC
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.equal(again.logits(x, {"contrast": "T2w"}),
                           net.eval().logits(x, {"contrast": "T2w"}))
    with pytest.raises(CorruptFileError, match="FiLM model .* without its metadata encoding"):
        restore_network({**ck, "preprocess": {}})
    other = build_spec(cfg.model.film, {"a": {"contrast": "x"}})  # 1 category: other shapes
    with pytest.raises(CorruptFileError, match="weights do not fit"):
        restore_network({**ck, "preprocess": {"metadata": other}})
    damaged = {**SPEC, "fields": [{"name": "contrast", "kind": "categorical"}]}
    with pytest.raises(CorruptFileError, match="f.pt: the metadata encoding does not fit "
                                               r"\(not a metadata spec"):
        restore_network({**ck, "preprocess": {"metadata": damaged}})


def test_init_from_a_plain_checkpoint_loads_the_whole_unet(tmp_path):
    torch.manual_seed(7)
    plain = build_network(_cfg(film=False), in_channels=1)
    path = save_checkpoint(tmp_path / "p.pt", {"config": _cfg(film=False), "in_channels": 1,
                                               "model": plain.state_dict()})
    net = _film_net(1)
    report = transfer_weights(net, path, config=_cfg(), in_channels=1)
    assert len(report.generator) == 4 and not report.reinitialised
    assert "the FiLM generator starts fresh (4 tensors)" in report.line()
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        assert torch.equal(net.eval()(x, {"contrast": "T1w"}), plain.eval()(x))


def test_array_predictor_binds_one_image_metadata_for_slices_and_windows():
    net = _film_net()
    _perturb(net)
    cfg = _cfg()
    volume = np.random.default_rng(0).random((1, 5, 16, 16)).astype(np.float32)
    runner = ArrayPredictor(net, cfg, in_channels=1, device="cpu")
    t2 = runner.infer(volume, meta={"contrast": "T2w"}, slice_axis=0)
    with torch.no_grad():
        direct = net.eval()(torch.from_numpy(volume[:, 2][None]), {"contrast": "T2w"})[0]
    assert np.allclose(t2[:, 2], direct.numpy(), atol=1e-6)
    assert not np.allclose(runner.infer(volume, slice_axis=0), t2, atol=1e-4)
    window = ArrayPredictor(net, load_config({**cfg.model_dump(), "inference": {
        "roi_size": [8, 8], "overlap": 0.5}}), in_channels=1, device="cpu")
    assert window.meta_dim == 3
    a = window.infer(volume[:, 0], meta=net.meta_encoder.encode({"contrast": "T2w"}))
    b = window.infer(volume[:, 0], meta={"contrast": "T2w"})
    assert np.array_equal(a, b) and not np.allclose(a, window.infer(volume[:, 0]), atol=1e-4)
    samples = runner.samples(volume[:, 0], tta=True, meta={"contrast": "T2w"})
    assert samples.shape == (4, 2, 16, 16)
    assert np.allclose(samples[0], t2[:, 0], atol=1e-6)  # the unflipped pass
