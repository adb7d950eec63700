"""`segloop config init|check` and `segloop train CONFIG --set ...`."""

from __future__ import annotations

import io
import json
import sys

import pytest
import yaml

import segloop.cli.main as cli_main
import segloop.learn.epoch as epoch_module
from conftest import write_phantom_pairs


def _main(argv):
    return cli_main.main([str(a) for a in argv])


@pytest.fixture
def tiny_config(tmp_path):
    data = write_phantom_pairs(tmp_path / "data", 6, (32, 32), n_blobs=1, weak_edges=True)
    assert _main(["config", "init", "--preset", "2d", "--out", tmp_path / "cfg.yaml"]) == 0
    sets = [f"data.path={data}", f"output.dir={tmp_path / 'run'}", "data.patch_size=null",
            "data.split.test=1", "data.split.val=1", "model.channels=[4, 8]",
            "training.epochs=2", "training.iterations_per_epoch=2", "training.batch_size=2",
            "training.threads=1", "output.tensorboard=false"]
    return tmp_path / "cfg.yaml", [x for s in sets for x in ("--set", s)]


def test_config_init_writes_prints_and_keeps_versions(tmp_path, capsys):
    out = tmp_path / "my.yaml"
    assert _main(["config", "init", "--preset", "softseg", "--out", out]) == 0
    assert yaml.safe_load(out.read_text())["model"]["final_activation"] == "normrelu"
    assert f"wrote {out}" in capsys.readouterr().out
    assert _main(["config", "init", "--preset", "2d", "--out", out]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists; pass --overwrite" in err and str(out) in err
    assert _main(["config", "init", "--preset", "3d", "--out", out, "--overwrite"]) == 0
    assert yaml.safe_load(out.read_text())["data"]["dims"] == 3
    assert yaml.safe_load((tmp_path / "my.yaml.~1~").read_text())["data"]["soft_labels"] is True
    capsys.readouterr()
    assert _main(["config", "init"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["dims"] == 2
    with pytest.raises(SystemExit) as exc:
        _main(["config", "init", "--preset", "4d"])
    assert exc.value.code == 2


def test_config_check_resolves_and_names_a_bad_key(tmp_path, capsys):
    assert _main(["config", "init", "--out", tmp_path / "c.yaml"]) == 0
    capsys.readouterr()
    assert _main(["config", "check", tmp_path / "c.yaml", "--set",
                  "training.max_minutes=20"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["training"]["max_minutes"] == 20
    assert _main(["config", "check", tmp_path / "c.yaml", "--set", "training.epoch=3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training.epoch: unknown key" in err


def test_train_writes_metrics_and_resumes_after_ctrl_c(tiny_config, tmp_path, capsys,
                                                       monkeypatch):
    config, sets = tiny_config
    step = epoch_module.train_step
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] in (1, 4):  # first step of epoch 1, then of epoch 2 (2 iterations each)
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(epoch_module, "train_step", interrupted)
    assert _main(["train", config, *sets]) == 130
    err = capsys.readouterr().err
    assert "interrupted before the first epoch finished; nothing to resume (start again " \
        "with: segloop train" in err and "last.pt" not in err
    assert _main(["train", config, *sets]) == 130
    captured = capsys.readouterr()
    last = tmp_path / "run" / "last.pt"
    assert f"interrupted; finished epochs are kept in {last}; resume with: segloop train " \
        f"{config} --set data.path=" in captured.err and "epoch 1/2" in captured.out
    assert "\r" not in captured.err  # not a terminal: no progress line
    monkeypatch.setattr(epoch_module, "train_step", step)
    assert _main(["train", config, *sets]) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["dice"] <= 1.0 and metrics["epochs"] == 2
    assert metrics["stopped"] == "epochs"
    # another optimiser on resume: refused in one line naming the key
    assert _main(["train", config, *sets, "--set", "training.epochs=3", "--set",
                  "optim.name=sgd"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{last}: was trained with other optimiser settings " \
        "(optim.name: 'adamw' there, 'sgd' here)" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_train_draws_a_progress_line_on_a_terminal(tiny_config, tmp_path, capsys, monkeypatch):
    config, sets = tiny_config
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _main(["train", config, *sets, "--set", "data.split.val=0"]) == 0
    drawn = terminal.getvalue()
    # each epoch: iteration 1 (the first draw) and 2 (its last), each erased before the
    # epoch's line is printed
    assert drawn.count("\repoch 1/2 [") == 2 and drawn.count("\repoch 2/2 [") == 2
    assert "\repoch 1/2 [##########          ] 1/2  loss " in drawn
    assert "\repoch 2/2 [####################] 2/2  loss " in drawn
    assert "samples/s\x1b[K" in drawn and drawn.endswith("\r\x1b[K")
    assert "epoch 1/2  loss" in capsys.readouterr().out


def test_train_errors_are_one_line(tiny_config, tmp_path, capsys):
    config, sets = tiny_config
    assert _main(["train", config, *sets, "--set", "training.epoch=3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training.epoch: unknown key" in err
    assert _main(["train", tmp_path / "nope.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.yaml: config file not found" in err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"garbage")
    assert _main(["train", config, *sets]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last.pt: not a readable checkpoint" in err
