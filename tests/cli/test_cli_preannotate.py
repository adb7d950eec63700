"""`segloop preannotate`: the queue table, files written, errors on one line."""

import json

import numpy as np
import torch

import segloop.cli.main as cli_main
from segloop.io import Image, write_image
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import build_network


def checkpoint(path, dropout=0.2):
    cfg = load_config({"data": {"path": "x", "normalize": "minmax"},
                       "model": {"channels": [4, 8], "num_res_units": 0, "dropout": dropout},
                       "output": {"dir": str(path.parent)}})
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=1)
    return save_checkpoint(path, {"config": cfg, "in_channels": 1, "model": net.state_dict()})


def images(folder, n=4):
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(Image((rng.random((16, 20)) * 255).astype(np.uint8)), folder / f"im{i}.png")
    return folder


def test_preannotate_prints_the_top_of_the_queue_and_writes_it(tmp_path, capsys):
    ck, pool = checkpoint(tmp_path / "m.pt"), images(tmp_path / "pool")
    out = tmp_path / "out"
    assert cli_main.main(["preannotate", "--model", str(ck), "--input", str(pool), "--out",
                          str(out), "--strategy", "tta", "--top", "2"]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0].split() == ["rank", "score", "id", "prediction"]
    queue = json.loads((out / "queue.json").read_text())
    assert queue["strategy"] == "tta" and len(queue["items"]) == 4
    for line, item in zip(lines[1:3], queue["items"][:2], strict=True):
        assert line.split() == [str(item["rank"]), f"{item['score']:.4f}", item["id"],
                                item["prediction"]]
    assert lines[3] == "... 2 more"
    assert lines[4].startswith(f"wrote {out / 'queue.json'} and {out / 'queue.csv'} (4 images")
    assert printed.err.count("predicted ") == 4
    assert sorted(p.name for p in (out / "predictions").iterdir()) == [
        f"im{i}_seg.png" for i in range(4)]


def test_bad_strategy_model_and_existing_outputs_are_one_line_errors(tmp_path, capsys):
    ck, pool = checkpoint(tmp_path / "m.pt"), images(tmp_path / "pool", 2)
    base = ["preannotate", "--input", str(pool), "--out", str(tmp_path / "out")]
    assert cli_main.main([*base, "--model", str(ck), "--strategy", "bald"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("segloop preannotate: error: strategy: unknown 'bald'; choose one of random, "
                   "entropy, mc_dropout, tta, coreset")
    plain = checkpoint(tmp_path / "plain.pt", dropout=0.0)
    assert cli_main.main([*base, "--model", str(plain), "--strategy", "mc_dropout"]) == 1
    assert "mc_dropout needs a model trained with dropout" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert cli_main.main([*base, "--model", str(ck), "--strategy", "random", "--top", "0"]) == 0
    assert capsys.readouterr().out.startswith("... 2 more\nwrote ")
    assert cli_main.main([*base, "--model", str(ck)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "im0_seg.png: exists; pass --overwrite" in err
    assert cli_main.main([*base, "--model", str(ck), "--overwrite", "--seed", "2"]) == 0
    assert (tmp_path / "out" / "queue.json.~1~").exists()
