"""Transfer learning: which tensors are the encoder, freezing, partial loading, clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import segloop.learn.epoch as epoch_module
from conftest import write_phantom_pairs
from segloop.errors import CorruptFileError, FileMissingError, InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint, save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import build_network
from segloop.learn.train import train
from segloop.learn.transfer import (
    encoder_parameters,
    freeze_encoder,
    output_parameters,
    trainable_parameters,
    transfer_weights,
)


def _cfg(**sections):
    raw = {"data": {"path": "x"}, "model": {"channels": [4, 8, 16], "dropout": 0.0}}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return load_config(raw)


def _net(cfg, in_channels=1, seed=0):
    torch.manual_seed(seed)
    return build_network(cfg, in_channels=in_channels)


def _save(tmp_path: Path, cfg, net, in_channels=1, name="src.pt") -> Path:
    return save_checkpoint(tmp_path / name, {"config": cfg, "in_channels": in_channels,
                                             "model": net.state_dict()})


def _levels(names) -> set[str]:
    return {n.split(".conv.")[0].split(".residual")[0].split(".adn")[0] for n in names}


@pytest.mark.parametrize("res_units", [0, 1])
def test_encoder_is_the_down_path_and_the_bottom_and_output_the_top_up_block(res_units):
    net = _net(_cfg(model={"num_res_units": res_units}))
    enc, out = encoder_parameters(net), output_parameters(net)
    down = ["backbone.model.0", "backbone.model.1.submodule.0",
            "backbone.model.1.submodule.1.submodule"]  # level 1, level 2, bottom
    assert _levels(enc) == set(down)
    assert all(n.startswith("backbone.model.2.") for n in out) and out
    decoder = [n for n, _ in net.named_parameters() if n not in enc]
    assert not set(out) - set(decoder)
    assert any(n.startswith("backbone.model.1.submodule.2.") for n in decoder)  # inner up block
    assert sum(p.numel() for p in enc.values()) + sum(
        p.numel() for n, p in net.named_parameters() if n in decoder) == sum(
        p.numel() for p in net.parameters())
    with pytest.raises(InvalidArgumentError, match="not a MONAI U-Net"):
        encoder_parameters(torch.nn.Conv2d(1, 1, 3))


@pytest.mark.parametrize("dims", [2, 3])
def test_a_frozen_encoder_does_not_move_in_a_training_step_while_the_decoder_does(dims):
    cfg = _cfg(data={"dims": dims}, model={"channels": [4, 8]})
    net = _net(cfg)
    frozen = freeze_encoder(net)
    assert sorted(frozen) == sorted(encoder_parameters(net)) and len(frozen) == 10
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.AdamW(trainable_parameters(net), lr=0.1, weight_decay=0.1)
    x = torch.randn(2, 1, *([16] * dims), generator=torch.Generator().manual_seed(0))
    net.train()
    loss = net.logits(x).square().mean()
    loss.backward()
    opt.step()
    for name, p in net.named_parameters():
        if name in frozen:
            assert p.grad is None and torch.equal(p, before[name]), name
        else:
            assert not torch.equal(p, before[name]), name  # every decoder tensor moved
    assert len(opt.param_groups[0]["params"]) == 5  # the output block only (one level)


def test_batch_norm_scale_is_frozen_and_its_running_statistics_follow_the_data():
    net = _net(_cfg(model={"channels": [4, 8], "norm": "batch"}))
    freeze_encoder(net)
    bn = net.backbone.model[0].conv.unit0.adn.N
    weight, mean = bn.weight.detach().clone(), bn.running_mean.clone()
    net.train()
    net(torch.randn(2, 1, 16, 16) * 3 + 5).sum().backward()
    assert bn.weight.grad is None and torch.equal(bn.weight, weight)
    assert not torch.equal(bn.running_mean, mean)  # AdaBN-like: statistics of the new data


def test_other_classes_reinitialise_the_output_block_only(tmp_path):
    source_cfg = _cfg(data={"classes": {"lv": [3]}})
    source = _net(source_cfg, seed=1)
    path = _save(tmp_path, source_cfg, source)
    for classes, reason in [({"rv": [1]}, "classes lv there, rv here"),
                            ({"rv": [1], "myo": [2]}, "classes lv there, rv, myo here")]:
        cfg = _cfg(data={"classes": classes})
        net = _net(cfg, seed=2)
        fresh = {k: v.clone() for k, v in net.state_dict().items()}
        report = transfer_weights(net, path, config=cfg, in_channels=1)
        head = [k for k in fresh if k.startswith("backbone.model.2.")]
        assert report.reinitialised == sorted(head) and report.reason == reason
        assert len(report.loaded) + len(head) == report.total == len(fresh)
        for k, v in net.state_dict().items():
            expected = fresh[k] if k in head else source.state_dict()[k]
            assert torch.equal(v, expected), k
        assert report.line().startswith(f"init_from {path}: loaded {len(report.loaded)} of "
                                        f"{report.total} tensors; re-initialised the output "
                                        f"block ({reason}): model.2.")
    # the same classes: everything is loaded, whatever the dropout
    same = _cfg(data={"classes": {"lv": [3]}}, model={"dropout": 0.3})
    report = transfer_weights(_net(same), path, config=same, in_channels=1)
    assert report.reinitialised == [] and len(report.loaded) == report.total
    assert report.line() == f"init_from {path}: loaded {report.total} of {report.total} tensors"
    sigmoid = _cfg(data={"classes": {"lv": [3]}}, model={"final_activation": "sigmoid"})
    report = transfer_weights(_net(sigmoid), path, config=sigmoid, in_channels=1)
    assert report.reason == "final activation softmax there, sigmoid here"


def test_a_source_of_another_shape_or_not_a_checkpoint_is_a_one_line_error(tmp_path):
    cfg = _cfg()
    net = _net(cfg)
    for source_cfg, in_channels, message in [
            (_cfg(data={"dims": 3}), 1, "data.dims: 3 in the source, 2 here (transfer needs a "
             "network of the same shape; classes may differ)"),
            (cfg, 3, "in_channels: 3 in the source, 1 here (the input channels come from "
             "data.contrasts / data.channels)"),
            (_cfg(model={"channels": [8, 16, 32]}), 1,
             "model.channels: [8, 16, 32] in the source, [4, 8, 16] here"),
            (_cfg(model={"norm": "batch"}), 1, "model.norm: 'batch' in the source, 'instance'")]:
        path = _save(tmp_path, source_cfg, _net(source_cfg, in_channels), in_channels)
        with pytest.raises(InvalidArgumentError) as err:
            transfer_weights(net, path, config=cfg, in_channels=1)
        assert str(err.value).startswith(f"{path}: training.init_from: {message}")
        assert "\n" not in str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFileError, match="junk.pt: not a readable checkpoint"):
        transfer_weights(net, tmp_path / "junk.pt", config=cfg, in_channels=1)
    with pytest.raises(FileMissingError, match="nope.pt: checkpoint not found"):
        transfer_weights(net, tmp_path / "nope.pt", config=cfg, in_channels=1)
    damaged = _net(cfg).state_dict()
    damaged.pop("backbone.model.0.residual.bias")
    path = save_checkpoint(tmp_path / "damaged.pt", {"config": cfg, "model": damaged})
    with pytest.raises(InvalidArgumentError, match="lack backbone.model.0.residual.bias"):
        transfer_weights(net, path, config=cfg, in_channels=1)


# ------------------------------------------------------------------------- through train
@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_phantom_pairs(tmp_path_factory.mktemp("pairs"), 6, (48, 48))


def _train_cfg(data: Path, out: Path, **training):
    return load_config({
        "data": {"path": str(data), "split": {"test": 1, "val": 0}},
        "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.0},
        "augmentation": {"enabled": False}, "optim": {"lr": 0.01},
        "training": {"epochs": 2, "batch_size": 2, "iterations_per_epoch": 2, "threads": 1,
                     **training},
        "output": {"dir": str(out), "tensorboard": False}})


def _quiet(line):
    pass


def test_training_with_a_frozen_encoder_keeps_the_source_encoder_and_resumes_exactly(
        pairs, tmp_path, monkeypatch):
    train(_train_cfg(pairs, tmp_path / "src", epochs=1), log=_quiet)
    source = load_checkpoint(tmp_path / "src" / "last.pt")["model"]
    lines: list[str] = []
    cfg = _train_cfg(pairs, tmp_path / "a", init_from=str(tmp_path / "src" / "last.pt"),
                     freeze_encoder=True)
    train(cfg, log=lines.append)
    assert "freeze_encoder: 6 encoder tensors frozen" in lines
    assert any(line.endswith("556 parameters (218 trained); 2 iterations per epoch on cpu")
               for line in lines)
    net = build_network(cfg, in_channels=1)
    encoder = set(encoder_parameters(net))
    after = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    for name in encoder:
        assert torch.equal(after[name], source[name]), name
    decoder = [n for n, _ in net.named_parameters() if n not in encoder]
    assert decoder and all(not torch.equal(after[n], source[n]) for n in decoder)

    # interrupted after epoch 1 and resumed: the same weights as the uninterrupted run
    raw_b = _train_cfg(pairs, tmp_path / "b", init_from=str(tmp_path / "src" / "last.pt"),
                       freeze_encoder=True)
    calls = {"n": 0}
    step = epoch_module.train_step

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the first step of epoch 2
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(epoch_module, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(raw_b, log=_quiet)
    monkeypatch.setattr(epoch_module, "train_step", step)
    train(raw_b, log=_quiet)
    resumed = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(resumed[k], after[k]) for k in after)

    # a run saved with a frozen encoder does not resume unfrozen
    with pytest.raises(InvalidArgumentError, match=r"training.freeze_encoder: True there, "
                                                   r"False here"):
        train(_train_cfg(pairs, tmp_path / "b", epochs=3), log=_quiet)


def test_init_from_with_other_classes_logs_what_it_reinitialised(pairs, tmp_path):
    train(_train_cfg(pairs, tmp_path / "src", epochs=1), log=_quiet)
    cfg = load_config(_train_cfg(pairs, tmp_path / "t", epochs=1,
                                 init_from=str(tmp_path / "src" / "last.pt")),
                      overrides=["data.classes={blob: [1]}"])
    lines: list[str] = []
    result = train(cfg, log=lines.append)
    line = next(x for x in lines if x.startswith("init_from"))
    assert line == (f"init_from {tmp_path / 'src' / 'last.pt'}: loaded 6 of 8 tensors; "
                    "re-initialised the output block (classes foreground there, blob here): "
                    "model.2.conv.bias, model.2.conv.weight")
    assert np.isfinite(result["dice"])
