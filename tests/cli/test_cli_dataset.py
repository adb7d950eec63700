"""`segloop dataset DIR`: the printed summary, --json, --check, --format and errors."""

import argparse
import json

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.cli.dataset import register, run
from segloop.errors import DatasetError, InvalidArgumentError
from segloop.io import Image, write_image


def parse(argv):
    parser = argparse.ArgumentParser(prog="segloop")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["dataset", *argv])


@needs_shared("bids_ivadomed")
def test_bids_summary_lists_subjects_contrasts_and_labels(capsys, tmp_path):
    out_json = tmp_path / "summary.json"
    assert run(parse([str(shared("bids_ivadomed")), "--json", str(out_json)])) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) for line in out.splitlines() if not line.startswith(" "))
    assert lines["layout"] == "bids (detected)"
    assert lines["datasets"] == "., ct_scan, microscopy_png"
    assert lines["cases"] == "15"
    assert lines["subjects"] == "6: rat2, rat3, spleen2, unf01, unf02, unf03"
    assert lines["sessions"] == "2: 01, 02"
    assert lines["contrasts"] == "SEM 5, T1w 3, T2star 3, T2w 3, ct 1"
    assert lines["labels"] == "main: seg-manual"
    assert "  seg-manual          4 labelled, 11 unlabelled" in out.splitlines()
    assert "institution_id (10)" in out and lines["problems"] == "none"
    summary = json.loads(out_json.read_text())
    assert summary["cases"] == 15 and summary["labels"]["seg-axon-manual"]["labelled"] == 5
    assert summary["contrasts"] == {"SEM": 5, "T1w": 3, "T2star": 3, "T2w": 3, "ct": 1}


def test_check_and_label_suffix_on_pairs(capsys, tmp_path):
    write_image(Image(np.zeros((2, 2), np.uint8)), tmp_path / "images" / "a.png")
    write_image(Image(np.zeros((2, 3), np.uint8), kind="label"), tmp_path / "labels" / "a.png")
    assert run(parse([str(tmp_path), "--format", "pairs", "--label-suffix", "label"])) == 0
    out = capsys.readouterr().out
    assert "layout      pairs (given)" in out and "problems    none" in out
    assert run(parse([str(tmp_path), "--check"])) == 0
    out = capsys.readouterr().out
    assert (
        "problems    1\n  a: label 'label' does not match the image grid: shape (2, 2) vs (2, 3)"
        in out
    )


def test_user_errors_are_segloop_errors(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        run(parse([str(tmp_path)]))
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(InvalidArgumentError, match="unknown dataset format 'nope'"):
        run(parse([str(tmp_path), "--format", "nope"]))


def test_through_segloop_main_errors_are_one_line(tmp_path, capsys):
    from segloop.cli.main import main

    assert main(["dataset", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"segloop dataset: error: {tmp_path}: the dataset folder is empty\n"


def test_strict_exit_status_and_cheap_checks(tmp_path, capsys):
    from segloop.cli.main import main

    write_image(Image(np.zeros((2, 2), np.uint8)), tmp_path / "images" / "a.png")
    write_image(Image(np.zeros((2, 2), np.uint8), kind="label"), tmp_path / "labels" / "a.png")
    assert main(["dataset", str(tmp_path), "--strict"]) == 0
    assert capsys.readouterr().err == ""
    (tmp_path / "images" / "b.png").write_bytes(b"")  # 0 bytes: found without reading pixels
    (tmp_path / "labels" / "b.png").write_bytes(b"")
    assert main(["dataset", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "problems    2\n  images/b.png: empty image file (0 bytes) of case b\n" in out
    assert "  labels/b.png: empty label file (0 bytes) of case b" in out
    assert main(["dataset", str(tmp_path), "--strict"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "segloop dataset: 2 problems found (--strict)\n"
    assert "empty image file" in captured.out


def test_strict_is_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        parse(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--strict exit with status 1 when any problem is found" in out
    assert "Exit status: 0 when the folder could be listed, even with problems" in out


def test_unwritable_json_is_one_line_error(tmp_path, capsys):
    from segloop.cli.main import main

    write_image(Image(np.zeros((2, 2), np.uint8)), tmp_path / "images" / "a.png")
    write_image(Image(np.zeros((2, 2), np.uint8), kind="label"), tmp_path / "labels" / "a.png")
    assert main(["dataset", str(tmp_path), "--json", "/proc/nope/x.json"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("segloop dataset: error: /proc/nope/x.json: cannot write: ")
    assert err.count("\n") == 1 and err.endswith("\n")
