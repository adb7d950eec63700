"""`segloop bench clicks` and `segloop bench interpolation` through the command line."""

import json

import numpy as np
import pytest

from segloop.cli.main import main
from segloop.io import Image, write_image

TOP_KEYS = {"suite", "segloop_version", "versions", "machine", "args", "summary", "cases",
            "notes"}


@pytest.fixture
def squares(tmp_path):
    """Two bright objects on a dark background in one PNG pair, one empty mask in another."""
    lab = np.zeros((64, 64), np.uint8)
    lab[10:30, 12:34] = 1
    lab[40:56, 36:58] = 2
    rng = np.random.default_rng(0)
    img = (lab > 0) * 150 + 40 + rng.normal(0, 5, lab.shape)
    write_image(Image(np.clip(img, 0, 255).astype(np.uint8)), tmp_path / "images" / "a.png")
    write_image(Image(lab, kind="label"), tmp_path / "labels" / "a.png")
    write_image(Image(np.full((64, 64), 40, np.uint8)), tmp_path / "images" / "b.png")
    write_image(Image(np.zeros((64, 64), np.uint8), kind="label"), tmp_path / "labels" / "b.png")
    return tmp_path


def test_bench_clicks_writes_json_plot_and_table(squares, tmp_path, capsys):
    out, png = tmp_path / "clicks.json", tmp_path / "clicks.png"
    assert main(["bench", "clicks", "--data", str(squares), "--tool", "boxclicks", "polygon",
                 "--max", "6", "--workers", "1", "--json", str(out), "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert TOP_KEYS <= set(report) and report["suite"] == "clicks"
    rows = {r["tool"]: r for r in report["summary"]}
    assert set(rows) == {"boxclicks", "polygon"}
    assert rows["boxclicks"]["n"] == 2 and rows["boxclicks"]["noc90"] == 1.0
    assert rows["polygon"]["noc90"] == 4.0  # a rectangle: its 4 corners
    assert rows["boxclicks"]["ratio_vs_polygon90"] == 4.0
    assert rows["boxclicks"]["skipped"] == {"empty mask": 1}
    assert any("skipped 1 (empty mask)" in n for n in report["notes"])
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "| dataset | tool |" in printed and "boxclicks" in printed


@pytest.mark.parametrize("extra, message", [
    (["--tool", "magicwand"], "unknown tool 'magicwand'"),
    (["--target", "1.5"], "targets must be in (0, 1]"),
    (["--max", "0"], "max_interactions must be an integer >= 1"),
])
def test_bench_clicks_bad_arguments_are_one_clear_line(squares, extra, message, capsys):
    assert main(["bench", "clicks", "--data", str(squares), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_bench_clicks_on_a_folder_without_masks(tmp_path, capsys):
    write_image(Image(np.zeros((8, 8), np.uint8)), tmp_path / "images" / "a.png")
    assert main(["bench", "clicks", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no known dataset layout" in err and str(tmp_path) in err
    bids = tmp_path / "bids"  # a BIDS dataset without derivatives: its layout is known
    (bids / "dataset_description.json").parent.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8.0"}')
    write_image(Image(np.zeros((8, 8, 8), np.int16)),
                bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    assert main(["bench", "clicks", "--data", str(bids)]) == 1
    err = capsys.readouterr().err
    assert "no masks found" in err and str(bids) in err


def test_bench_interpolation_writes_json_and_plot(tmp_path, capsys):
    vol = np.zeros((20, 24, 24), np.uint8)
    yy, xx = np.mgrid[:24, :24] - 12
    for z in range(3, 17):
        vol[z] = yy**2 + xx**2 <= (3 + (z - 3) // 3) ** 2
    write_image(Image(np.zeros(vol.shape, np.int16)), tmp_path / "d" / "images" / "c.nii.gz")
    write_image(Image(vol, kind="label"), tmp_path / "d" / "labels" / "c.nii.gz")
    out, png = tmp_path / "itp.json", tmp_path / "itp.png"
    assert main(["bench", "interpolation", "--data", str(tmp_path / "d"), "--every", "2", "4",
                 "--method", "segloop", "nearest", "--json", str(out), "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert TOP_KEYS <= set(report) and report["suite"] == "interpolation"
    rows = {(r["method"], r["every"]): r for r in report["summary"]}
    assert set(rows) == {("segloop", 2), ("segloop", 4), ("nearest", 2), ("nearest", 4)}
    # a slowly growing disk: the signed-distance blend is better than copying the nearest slice
    assert rows["segloop", 4]["dice_unseen"] > rows["nearest", 4]["dice_unseen"]
    assert rows["segloop", 2]["dice_unseen"] >= 0.9
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "| dataset | method |" in capsys.readouterr().out


def test_bench_interpolation_rejects_a_bad_every(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["bench", "interpolation", "--data", str(tmp_path / "d"), "--every", "0"]) == 1
    assert "every" in capsys.readouterr().err
