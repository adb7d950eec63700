"""`segloop export` then `segloop predict --model FILE.onnx`: a round trip; errors on one line."""

import numpy as np
import pytest
import torch

import segloop.cli.main as cli_main
from segloop.data import phantom_2d
from segloop.io import Image, read_image, write_image
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import build_network


def _setup(tmp_path):
    """A dataset folder (images/ + labels/ PNG) and a checkpoint whose data.path is elsewhere."""
    data = tmp_path / "data"
    for i in range(4):
        ph = phantom_2d((32, 32), seed=i, n_blobs=1, thin_structures=False)
        write_image(Image((ph.image * 200).astype(np.uint8)), data / "images" / f"c{i}.png")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    data / "labels" / f"c{i}.png")
    cfg = load_config({"data": {"path": str(tmp_path / "moved"), "split": {"test": 1, "val": 0}},
                       "model": {"channels": [8, 16], "num_res_units": 0},
                       "output": {"dir": str(tmp_path / "run")}})
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=1)
    ck = save_checkpoint(tmp_path / "m.pt", {"config": cfg, "in_channels": 1,
                                             "model": net.state_dict()})
    return data, ck


def test_export_int8_then_predict(tmp_path, capsys):
    data, ck = _setup(tmp_path)
    out = tmp_path / "m_int8.onnx"
    assert cli_main.main(["export", "--model", str(ck), "--format", "int8", "--out", str(out),
                          "--calibration", "3", "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    assert "calibrating int8 ranges on 3 training samples" in printed
    assert "int8 vs float32 on the calibration inputs: same class on" in printed
    assert f"wrote {out}" in printed
    assert cli_main.main(["predict", "--model", str(out), "--input",
                          str(data / "images" / "c0.png"), "--output", str(tmp_path / "pred"),
                          "--soft"]) == 0
    label = read_image(tmp_path / "pred" / "c0_seg.png", kind="label")
    assert label.shape == (32, 32) and set(np.unique(label.array)) <= {0, 1}
    assert (tmp_path / "pred" / "c0_prob.png").is_file()
    capsys.readouterr()
    assert cli_main.main(["predict", "--model", str(out), "--input",
                          str(data / "images" / "c1.png"), "--output", str(tmp_path / "p2"),
                          "--mc", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m_int8.onnx: MC dropout: an exported model" in err


def test_export_errors_fail_on_one_line(tmp_path, capsys):
    data, ck = _setup(tmp_path)
    (tmp_path / "old.onnx").write_bytes(b"old")
    cases = [
        (["--model", str(ck), "--format", "onnx", "--out", str(tmp_path / "m.txt")],
         "m.txt: --out: the file name must end in .onnx"),
        (["--model", str(ck), "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
          "--data", str(data)], "--data: only --format int8 reads data"),
        (["--model", str(tmp_path / "none.pt"), "--format", "onnx", "--out",
          str(tmp_path / "m.onnx")], "none.pt: checkpoint not found"),
        (["--model", str(ck), "--format", "onnx", "--out", str(tmp_path / "old.onnx")],
         "old.onnx: exists; pass --overwrite"),
        (["--model", str(ck), "--format", "int8", "--out", str(tmp_path / "m.onnx")],
         "moved: int8 calibration reads the training split: no such dataset folder (give the "
         "dataset folder with --data DIR)"),
        (["--model", str(tmp_path / "old.onnx"), "--format", "int8", "--out",
          str(tmp_path / "m.onnx")], "old.onnx: already an exported model: export takes the "
         "segloop checkpoint it came from"),
        (["--model", str(ck), "--format", "int8", "--out", str(tmp_path / "m.onnx"),
          "--calibration", "0"], None),
    ]
    for argv, message in cases:
        if message is None:  # a usage error (exit 2) naming the option and the value
            with pytest.raises(SystemExit) as info:
                cli_main.main(["export", *argv])
            assert info.value.code == 2
            assert "--calibration: expected an integer >= 1, got 0" in capsys.readouterr().err
            continue
        assert cli_main.main(["export", *argv]) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert err.startswith("segloop export: error: ")
    assert (tmp_path / "old.onnx").read_bytes() == b"old" and not (tmp_path / "m.onnx").exists()
