"""Checkpoints: round trip, refusal of foreign, corrupt or mismatched files."""

import pytest
import torch

from segloop.errors import CorruptFileError, FileMissingError
from segloop.learn.checkpoint import load_checkpoint, restore_network, save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import build_network


@pytest.fixture
def cfg():
    return load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})


def test_round_trip_keeps_weights_and_state(tmp_path, cfg):
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=2)
    path = save_checkpoint(tmp_path / "run" / "last.pt",
                           {"config": cfg, "in_channels": 2, "model": net.state_dict(),
                            "epoch": 3, "best": {"dice": 0.5, "epoch": 2},
                            "preprocess": {"spacing": [1.0, 1.0]}})
    ck = load_checkpoint(path)
    assert ck["epoch"] == 3 and ck["best"]["dice"] == 0.5 and ck["config"] == cfg
    assert ck["preprocess"] == {"spacing": [1.0, 1.0]} and ck["optimizer"] is None
    again = restore_network(ck)
    x = torch.randn(1, 2, 16, 16)
    net.eval()
    assert torch.equal(again(x), net(x)) and not again.training
    assert not list((tmp_path / "run").glob(".*tmp"))  # no temporary file left


def test_foreign_corrupt_and_missing_files(tmp_path, cfg):
    with pytest.raises(FileMissingError, match="nope.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip at all")
    with pytest.raises(CorruptFileError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state": 1}, tmp_path / "other.pt")
    with pytest.raises(CorruptFileError, match="other.pt: not a segloop checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    net = build_network(cfg, in_channels=1)
    good = save_checkpoint(tmp_path / "good.pt", {"config": cfg, "in_channels": 1,
                                                  "model": net.state_dict()})
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


def test_weights_of_another_architecture_are_refused(tmp_path, cfg):
    net = build_network(cfg, in_channels=1)
    wider = load_config({"data": {"path": "x"}, "model": {"channels": [8, 16]}})
    path = save_checkpoint(tmp_path / "m.pt", {"config": wider, "in_channels": 1,
                                               "model": net.state_dict()})
    with pytest.raises(CorruptFileError, match="m.pt: the weights do not fit"):
        restore_network(load_checkpoint(path))


def test_bad_config_inside_is_reported(tmp_path, cfg):
    net = build_network(cfg, in_channels=1)
    path = save_checkpoint(tmp_path / "m.pt", {"config": {"data": {"path": "x", "dims": 7}},
                                               "in_channels": 1, "model": net.state_dict()})
    with pytest.raises(CorruptFileError, match="m.pt: the checkpoint's config is not valid"):
        load_checkpoint(path)
