"""`segloop segment TOOL IMAGE --out LABEL` and `segloop bench latency`."""

import json

import numpy as np
import pytest

from segloop.cli.main import main
from segloop.data import phantom_2d, phantom_3d
from segloop.io import Image, read_image, write_image
from segloop.metrics import dice


@pytest.fixture
def phantom_png(tmp_path):
    ph = phantom_2d(seed=3, noise=0.02)
    img = Image((np.clip(ph.image, 0, 1) * 255).astype(np.uint8))
    write_image(img, tmp_path / "img.png")
    return tmp_path / "img.png", ph


def _blob(ph, kind="smooth"):
    value = next(k for k, v in ph.info.items() if v["kind"] == kind)
    return ph.label == value


def test_boxclicks_on_a_file(tmp_path, phantom_png, capsys):
    path, ph = phantom_png
    truth = _blob(ph)
    ys, xs = np.nonzero(truth)
    box = [[int(ys.min()), int(xs.min())], [int(ys.max()), int(xs.max())]]
    assert main(["segment", "boxclicks", str(path), "--out", str(tmp_path / "seg.png"),
                 "--args", json.dumps({"box": box})]) == 0
    seg = read_image(tmp_path / "seg.png", kind="label")
    assert dice(seg.array > 0, truth) >= 0.95
    assert "boxclicks:" in capsys.readouterr().out


def test_livewire_with_set_and_polygon(tmp_path, phantom_png):
    path, ph = phantom_png
    truth = _blob(ph)
    from segloop.tools.contour import mask_contour

    contour = mask_contour(truth)
    anchors = [list(map(int, contour[i])) for i in np.linspace(0, len(contour) - 1, 7)[:-1]
               .astype(int)]
    assert main(["segment", "livewire", str(path), "--out", str(tmp_path / "lw.png"),
                 "--set", f"anchors={json.dumps(anchors)}"]) == 0
    assert dice(read_image(tmp_path / "lw.png", kind="label").array > 0, truth) >= 0.9
    assert main(["segment", "polygon", str(path), "--out", str(tmp_path / "pg.png"),
                 "--set", f"vertices={json.dumps(anchors)}"]) == 0
    assert read_image(tmp_path / "pg.png", kind="label").array.sum() > 0


def test_2d_tool_on_one_slice_of_a_volume(tmp_path):
    ph = phantom_3d(seed=1)
    write_image(Image(ph.image.astype(np.float32), spacing=ph.spacing), tmp_path / "v.nii.gz")
    z = ph.image.shape[0] // 2
    ys, xs = np.nonzero(ph.label[z] > 0)
    box = [[int(ys.min()), int(xs.min())], [int(ys.max()), int(xs.max())]]
    assert main(["segment", "livewire", str(tmp_path / "v.nii.gz"), "--out",
                 str(tmp_path / "o.nii.gz"), "--set",
                 f"anchors={json.dumps([box[0], [box[0][0], box[1][1]], box[1]])}"]) == 1
    assert main(["segment", "boxclicks", str(tmp_path / "v.nii.gz"), "--out",
                 str(tmp_path / "o.nii.gz"), "--slice", f"z={z}",
                 "--args", json.dumps({"box": box})]) == 0
    out = read_image(tmp_path / "o.nii.gz", kind="label")
    assert out.shape == ph.image.shape
    assert out.array[z].sum() > 0 and out.array.sum() == out.array[z].sum()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["islands", "{img}", "--out", "{d}/o.png", "--set", "operation=keep_largest"],
         "edits a label map: pass --label FILE"),
        (["threshold", "{img}", "--out", "{d}/o.png", "--set", "bogus=1"],
         "has no parameter 'bogus'"),
        (["boxclicks", "{img}", "--out", "{d}/o.png", "--args", "{not json"],
         "--args is not valid JSON"),
        (["boxclicks", "{img}", "--out", "{d}/o.png"], "needs 'box'"),
        (["livewire", "{img}", "--out", "{d}/o.png", "--set", "anchors=[[10,10],[10,10],[10,10]]"],
         "anchors"),
        (["boxclicks", "{img}", "--out", "{d}/o.png", "--args", '{"box": [[0, 0], [0, 0]]}'],
         "box"),
        (["regiongrow", "{img}", "--out", "{d}/o.png", "--set", "seeds=[[5000, 5]]"],
         "seeds"),
        (["threshold", "{img}", "--out", "{d}/o.png", "--set", "x"], "--set expects KEY=VALUE"),
    ],
)
def test_segment_user_errors(tmp_path, phantom_png, capfd, argv, message):
    path, _ = phantom_png
    code = main(["segment", *[a.replace("{img}", str(path)).replace("{d}", str(tmp_path))
                              for a in argv]])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0], err


def test_tools_command_lists_tools_and_parameters(capsys):
    assert main(["tools"]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].startswith("livewire") and "interpolate" in listing
    assert main(["tools", "graphcut"]) == 0
    out = capsys.readouterr().out
    assert "foreground (required)" in out and "lam" in out


def test_options_before_the_image_and_label_geometry(tmp_path, capsys):
    ph = phantom_3d(seed=2)
    img = Image(ph.image.astype(np.float32), spacing=(3.0, 0.7, 0.7), origin=(4.0, -2.0, 9.0))
    write_image(img, tmp_path / "v.nii.gz")
    existing = np.zeros(ph.image.shape, np.uint8)
    existing[0, 0, :5] = 7  # a label the tool must keep
    write_image(img.with_array(existing, kind="label"), tmp_path / "old.nii.gz")
    assert main(["segment", "threshold", "--set", "low=0.5", "--set", "value=2", "--label",
                 str(tmp_path / "old.nii.gz"), str(tmp_path / "v.nii.gz"), "--out",
                 str(tmp_path / "o.nii.gz")]) == 0
    out = read_image(tmp_path / "o.nii.gz")
    from segloop.io import check_same_grid

    check_same_grid(out, img)
    assert out.kind == "label" and out.array.dtype == np.uint8
    assert set(out.label_values()) >= {0, 2, 7} and (out.array[0, 0, :5] == 7).all()


def test_bench_latency_quick_writes_the_common_json(tmp_path, capsys):
    assert main(["bench", "latency", "--quick", "--group", "edit", "--repeats", "2",
                 "--json", str(tmp_path / "lat.json")]) == 0
    report = json.loads((tmp_path / "lat.json").read_text())
    assert report["suite"] == "latency"
    assert {"segloop_version", "versions", "machine", "args", "summary", "cases"} <= set(report)
    row = report["summary"][0]
    assert {"tool", "size", "median_ms", "p95_ms", "reference", "reference_median_ms",
            "ratio"} <= set(row)
    assert "| tool | size |" in capsys.readouterr().out
