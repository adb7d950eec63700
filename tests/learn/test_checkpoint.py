"""Checkpoints: round trip, refusal of foreign, corrupt or mismatched files."""

import random

import numpy as np
import pytest
import torch

from segloop.errors import CorruptFileError, FileMissingError
from segloop.learn.checkpoint import load_checkpoint, restore_network, save_checkpoint
from segloop.learn.config import load_config, to_dict
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
    (tmp_path / "notes.pt").write_text("# a text file\n" * 20)  # torch's long advice is not shown
    with pytest.raises(CorruptFileError,
                       match=r"notes.pt: not a readable checkpoint \(not a PyTorch file \(") as err:
        load_checkpoint(tmp_path / "notes.pt")
    assert "weights_only" not in str(err.value)
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


class _Payload:
    """Pickles as a call that would write a file when unpickled."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_checkpoint_holding_code_is_refused_without_running_it(tmp_path, cfg):
    net = build_network(cfg, in_channels=1)
    target = tmp_path / "pwned.txt"
    torch.save({"format": "segloop-checkpoint", "version": 1, "config": to_dict(cfg),
                "model": net.state_dict(), "extra": _Payload(target)}, tmp_path / "evil.pt")
    with pytest.raises(CorruptFileError) as err:
        load_checkpoint(tmp_path / "evil.pt")
    assert not target.exists()
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'evil.pt'}: not a readable checkpoint (it holds "
                              "Python objects, not only tensors and plain data: ")
    assert "\n" not in message and "segloop does not run code from checkpoints" in message


def test_numpy_values_and_paths_are_saved_as_plain_data(tmp_path, cfg):
    net = build_network(cfg, in_channels=1)
    path = save_checkpoint(tmp_path / "m.pt", {
        "config": cfg, "model": net.state_dict(), "epoch": np.int64(3),
        "best": {"dice": np.float64(0.75), "epoch": 3},
        "history": [{"epoch": 1, "loss": np.float32(0.5), "spacing": np.array([1.0, 2.0])}],
        "preprocess": {"cache": tmp_path / "cache"}})
    ck = load_checkpoint(path)
    assert ck["epoch"] == 3 and type(ck["epoch"]) is int
    assert ck["best"] == {"dice": 0.75, "epoch": 3} and type(ck["best"]["dice"]) is float
    assert ck["history"] == [{"epoch": 1, "loss": 0.5, "spacing": [1.0, 2.0]}]
    assert ck["preprocess"] == {"cache": str(tmp_path / "cache")}
    with pytest.raises(TypeError, match="checkpoint key 'best': object is not plain data"):
        save_checkpoint(tmp_path / "x.pt", {"config": cfg, "best": object()})


def test_old_checkpoints_with_a_numpy_rng_state_still_load(tmp_path, cfg):
    """Earlier checkpoints kept random states (NumPy arrays); they load, the state is dropped."""
    net = build_network(cfg, in_channels=1)
    rng = {"python": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
           "torch": torch.get_rng_state()}
    torch.save({"format": "segloop-checkpoint", "version": 1, "config": to_dict(cfg),
                "in_channels": 1, "model": net.state_dict(), "epoch": 2, "rng": rng},
               tmp_path / "old.pt")
    ck = load_checkpoint(tmp_path / "old.pt")
    assert ck["epoch"] == 2 and "rng" not in ck
    restore_network(ck)
