"""``segloop fuse`` and ``segloop raters report`` from the command line."""

import json

import numpy as np
import pytest

from segloop.cli.main import main
from segloop.io import Image, read_image, write_image


def _mask(rows: slice, cols: slice, shape=(12, 12)) -> np.ndarray:
    a = np.zeros(shape, np.uint8)
    a[rows, cols] = 1
    return a


@pytest.fixture
def rater_files(tmp_path):
    folder = tmp_path / "raters"
    masks = [_mask(slice(2, 8), slice(2, 8)), _mask(slice(2, 8), slice(3, 9)),
             _mask(slice(3, 9), slice(2, 8))]
    paths = []
    for i, m in enumerate(masks):
        write_image(Image(m, spacing=(0.5, 0.7), kind="label"), folder / f"r{i}.nii.gz")
        paths.append(folder / f"r{i}.nii.gz")
    return folder, paths, masks


def test_fuse_files_majority_keeps_the_grid(rater_files, tmp_path, capsys):
    _, paths, masks = rater_files
    out = tmp_path / "fused.nii.gz"
    assert main(["fuse", "--raters", *map(str, paths), "--method", "majority",
                 "--out", str(out)]) == 0
    fused = read_image(out)
    assert fused.kind == "label" and fused.spacing == pytest.approx((0.5, 0.7))
    assert np.array_equal(fused.array, (np.sum(masks, axis=0) >= 2).astype(np.uint8))
    assert "wrote" in capsys.readouterr().out
    assert main(["fuse", "--raters", *map(str, paths), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["fuse", "--raters", *map(str, paths), "--out", str(out), "--overwrite"]) == 0


def test_fuse_a_folder_soft_and_staple(rater_files, tmp_path):
    folder, _, masks = rater_files
    soft = tmp_path / "soft.nii.gz"
    assert main(["fuse", "--raters", str(folder), "--method", "soft", "--out", str(soft)]) == 0
    image = read_image(soft, kind="soft")
    assert np.allclose(image.array, np.mean(masks, axis=0), atol=1e-6)
    staple = tmp_path / "staple.nii.gz"
    assert main(["fuse", "--raters", str(folder), "--method", "staple", "--out",
                 str(staple)]) == 0
    assert read_image(staple).array.sum() > 0


def test_fuse_errors_are_one_line(rater_files, tmp_path, capsys):
    _, paths, _ = rater_files
    out = tmp_path / "f.nii.gz"
    assert main(["fuse", "--raters", str(paths[0]), "--method", "staple", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "staple" in err.lower() and len(err.strip().splitlines()) == 1
    other = tmp_path / "other.nii.gz"
    write_image(Image(np.zeros((10, 12), np.uint8), kind="label"), other)
    assert main(["fuse", "--raters", str(paths[0]), str(other), "--out", str(out)]) == 1
    assert "grid" in capsys.readouterr().err
    assert main(["fuse", "--raters", str(tmp_path / "nope.nii.gz"), "--out", str(out)]) == 1
    assert "no such rater file" in capsys.readouterr().err


def test_fuse_a_dataset_and_report_its_raters(tmp_path, capsys):
    data = tmp_path / "data"
    for name in ("a", "b"):
        write_image(Image(np.full((16, 16), 9, np.uint8)), data / "images" / f"{name}.png")
        for rater, shift in (("x", 0), ("y", 0), ("z", 1)):
            m = _mask(slice(4, 12), slice(4 + shift, 12 + shift), (16, 16))
            write_image(Image(m, kind="label"), data / "labels" / rater / f"{name}.png")
    (data / "raters.tsv").write_text("rater\tcentre\nx\tA\ny\tA\nz\tB\n")
    out = tmp_path / "fused"
    assert main(["fuse", "--raters", str(data), "--method", "majority", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_majority.png", "b_majority.png"]
    report_dir = tmp_path / "report"
    assert main(["raters", "report", "--data", str(data), "--out", str(report_dir),
                 "--group-by", "centre"]) == 0
    printed = capsys.readouterr().out
    assert "rater" in printed and "groups by centre" in printed
    report = json.loads((report_dir / "report.json").read_text())
    assert report["groups"]["within"] == pytest.approx(1.0)
    assert report["raters"]["z"]["n_cases"] == 2
    assert main(["raters", "report", "--data", str(data), "--out", str(tmp_path / "r2"),
                 "--group-by", "site"]) == 1
    assert "no column 'site'" in capsys.readouterr().err
    assert main(["raters", "report", "--data", str(data), "--out", str(tmp_path / "r3"),
                 "--groups", str(data / "raters.tsv")]) == 1
    assert "--groups FILE needs --group-by" in capsys.readouterr().err


def test_fuse_multi_label_maps_and_one_class(tmp_path):
    base = np.zeros((10, 10), np.uint8)
    base[1:5, 1:9] = 1
    base[5:9, 1:9] = 2
    raters = [base.copy(), base.copy(), base.copy()]
    raters[2][5:9, 1:9] = 1  # the third rater calls class 2 class 1
    paths = []
    for i, r in enumerate(raters):
        paths.append(tmp_path / f"r{i}.nii.gz")
        write_image(Image(r, kind="label"), paths[-1])
    for method in ("majority", "staple", "weighted"):
        out = tmp_path / f"{method}.nii.gz"
        assert main(["fuse", "--raters", *map(str, paths), "--method", method,
                     "--out", str(out)]) == 0
        assert np.array_equal(read_image(out).array, base), method
    one = tmp_path / "class2.nii.gz"
    assert main(["fuse", "--raters", *map(str, paths), "--method", "soft", "--class", "2",
                 "--out", str(one)]) == 0
    soft = read_image(one, kind="soft").array
    assert soft[6, 4] == pytest.approx(2 / 3) and soft[2, 2] == 0.0
