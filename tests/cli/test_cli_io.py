"""`segloop info` and `segloop convert`, and how the CLI reports user errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.cli.main import main
from segloop.io import Image, read_image, write_image


def test_info_prints_geometry_and_label_values(tmp_path, capsys):
    lab = np.zeros((3, 4, 5), np.uint8)
    lab[1, 1:3, 1:4] = 2
    write_image(Image(lab, kind="label", spacing=(2.5, 0.5, 0.5)), tmp_path / "seg.nii.gz")
    assert main(["info", str(tmp_path / "seg.nii.gz")]) == 0
    out = capsys.readouterr().out
    assert "3 x 4 x 5  (z, y, x)" in out
    assert "2.5 x 0.5 x 0.5 mm" in out
    assert "0 (54 vx), 2 (6 vx)" in out
    assert main(["info", str(tmp_path / "seg.nii.gz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["label_values"] == [0, 2] and info["orientation"] == "LPS"


def test_info_reports_nonfinite_instead_of_failing(tmp_path, capsys):
    arr = np.ones((2, 3, 3), np.float32)
    arr[0, 0, 0] = np.nan
    write_image(Image(arr), tmp_path / "nan.nrrd")
    assert main(["info", str(tmp_path / "nan.nrrd")]) == 0
    assert "NaN/Inf  1" in capsys.readouterr().out


def test_convert_reorient_and_resample(tmp_path, capsys):
    arr = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    write_image(Image(arr, spacing=(2.0, 1.0, 1.0)), tmp_path / "in.mha")
    assert main(["convert", str(tmp_path / "in.mha"), str(tmp_path / "out.nii.gz"),
                 "--reorient", "RAS", "--spacing", "1", "1", "1"]) == 0
    out = read_image(tmp_path / "out.nii.gz")
    assert out.orientation == "RAS" and out.shape == (4, 4, 6) and out.spacing == (1.0, 1.0, 1.0)
    assert "wrote" in capsys.readouterr().out


def test_convert_refuses_to_overwrite_without_flag(tmp_path, capsys):
    write_image(Image(np.zeros((2, 2), np.uint8)), tmp_path / "a.png")
    write_image(Image(np.ones((2, 2), np.uint8)), tmp_path / "b.png")
    assert main(["convert", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("segloop convert: error: ") and "b.png: exists" in err
    assert read_image(tmp_path / "b.png").array.max() == 1  # untouched
    assert main(["convert", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                 "--overwrite"]) == 0
    assert read_image(tmp_path / "b.png").array.max() == 0
    assert (tmp_path / "b.png.~1~").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "missing.nii.gz"], "missing.nii.gz: no such file or folder"),
        (["convert", "missing.nii.gz", "out.nrrd"], "no such file or folder"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "segloop.cli.main", *argv],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert"])
    assert info.value.code == 2


@needs_shared("spinalcord_sct")
def test_info_on_real_spinal_cord_label(capsys):
    assert main(["info", str(shared("spinalcord_sct", "t2", "t2_seg-manual.nii.gz")),
                 "--kind", "label"]) == 0
    out = capsys.readouterr().out
    assert "52 x 55 x 60" in out and "PSR" in out and "values  0 (" in out


def test_convert_to_a_dicom_folder_and_back(tmp_path, capsys):
    arr = (np.arange(3 * 4 * 5).reshape(3, 4, 5) * 10 - 100).astype(np.int16)
    write_image(Image(arr, spacing=(2.5, 0.7, 0.7), origin=(1, 2, 3)), tmp_path / "ct.nii.gz")
    assert main(["convert", str(tmp_path / "ct.nii.gz"), str(tmp_path / "series")]) == 0
    assert len(list((tmp_path / "series").glob("*.dcm"))) == 3
    back = read_image(tmp_path / "series")
    np.testing.assert_array_equal(back.array, arr)
    assert back.spacing == pytest.approx((2.5, 0.7, 0.7))
    np.testing.assert_allclose(back.origin, (1, 2, 3), atol=1e-4)
    assert main(["info", str(tmp_path / "series")]) == 0
    assert "dicom" in capsys.readouterr().out


def test_existing_empty_file_is_not_overwritten_silently(tmp_path):
    (tmp_path / "x.dcm").write_bytes(b"")
    from segloop.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        write_image(Image(np.zeros((4, 4), np.int16)), tmp_path / "x.dcm")


def test_convert_resample_guards_label_like_integers(tmp_path, capsys):
    lab = np.zeros((4, 6, 6), np.uint8)
    lab[1:3, 2:5, 2:5] = 4
    lab[0, 0, 0] = 2
    # written as a plain image (no label intent): integers with 3 values look like labels
    write_image(Image(lab), tmp_path / "l.nrrd")
    assert main(["convert", str(tmp_path / "l.nrrd"), str(tmp_path / "o.nrrd"),
                 "--spacing", "0.5", "0.5", "0.5"]) == 1
    assert "may be a label map: pass --kind label" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "l.nrrd"), str(tmp_path / "o.nrrd"),
                 "--spacing", "0.5", "0.5", "0.5", "--kind", "label"]) == 0
    assert read_image(tmp_path / "o.nrrd", kind="label").label_values() == [0, 2, 4]


def test_convert_label_to_dicom_seg_with_reference(tmp_path, capsys):
    ct = Image((np.arange(3 * 8 * 8).reshape(3, 8, 8) % 50).astype(np.int16),
               spacing=(2.0, 0.5, 0.5))
    write_image(ct, tmp_path / "ct")
    lab = ct.with_array((ct.array > 25).astype(np.uint8), kind="label")
    write_image(lab, tmp_path / "lab.nii.gz")
    assert main(["convert", str(tmp_path / "lab.nii.gz"), str(tmp_path / "seg.dcm"),
                 "--reference", str(tmp_path / "ct")]) == 0
    seg = read_image(tmp_path / "seg.dcm")
    assert seg.kind == "label"
    np.testing.assert_array_equal(seg.array, lab.array)
