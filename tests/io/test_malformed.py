"""Bad input: each case must raise a SegloopError naming the file and the problem."""

import gzip
import struct

import nibabel as nib
import numpy as np
import pytest

from segloop.errors import (
    CorruptFileError,
    EmptyFileError,
    FileMissingError,
    GeometryMismatchError,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidImageError,
    SegloopError,
    UnsupportedFormatError,
)
from segloop.io import Image, read_image, read_labelled, write_image


def _nifti(path, data, zooms=(1.0, 1.0, 1.0), affine=None):
    img = nib.Nifti1Image(data, np.diag([*zooms, 1.0]) if affine is None else affine)
    nib.save(img, str(path))
    return path


def _case_missing(tmp):
    return tmp / "nope.nii.gz", {}


def _case_empty(tmp):
    (tmp / "empty.nii.gz").write_bytes(b"")
    return tmp / "empty.nii.gz", {}


def _case_truncated_nii(tmp):
    p = _nifti(tmp / "t.nii", np.zeros((20, 20, 20), np.float32))
    p.write_bytes(p.read_bytes()[:5000])
    return p, {}


def _case_truncated_gz(tmp):
    p = _nifti(tmp / "t.nii.gz", np.random.default_rng(0).normal(size=(30, 30, 30)))
    p.write_bytes(p.read_bytes()[:3000])
    return p, {}


def _case_garbage_nii(tmp):
    (tmp / "g.nii").write_bytes(b"this is not a nifti file" * 40)
    return tmp / "g.nii", {}


def _case_unknown_extension(tmp):
    (tmp / "scan.xyz").write_bytes(b"\x00\x01random bytes" * 40)
    return tmp / "scan.xyz", {}


def _case_absurd_nifti_header(tmp):
    p = _nifti(tmp / "big.nii", np.zeros((2, 2, 2), np.float32))
    raw = bytearray(p.read_bytes())
    struct.pack_into("<8h", raw, 40, 3, 30000, 30000, 30000, 1, 1, 1, 1)  # dim[]
    p.write_bytes(bytes(raw))
    return p, {}


def _case_nan_voxels(tmp):
    data = np.ones((4, 4, 4), np.float32)
    data[1, 1, 1] = np.nan
    return _nifti(tmp / "nan.nii.gz", data), {}


def _case_inf_voxels(tmp):
    data = np.ones((4, 4, 4), np.float32)
    data[0, 0, 0] = np.inf
    data[0, 0, 1] = -np.inf
    return _nifti(tmp / "inf.nii.gz", data), {}


def _case_fractional_label(tmp):
    data = np.zeros((4, 4, 4), np.float32)
    data[0, 0, 0] = 0.5
    return _nifti(tmp / "soft_seg.nii.gz", data), {"kind": "label"}


def _case_truncated_png(tmp):
    write_image(Image(np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)),
                tmp / "cut.png")
    p = tmp / "cut.png"
    p.write_bytes(p.read_bytes()[:200])
    return p, {}


def _case_png_named_nifti(tmp):
    write_image(Image(np.zeros((8, 8), np.uint8)), tmp / "real.png")
    (tmp / "fake.nii.gz").write_bytes((tmp / "real.png").read_bytes())
    return tmp / "fake.nii.gz", {}


def _case_absurd_nrrd(tmp):
    (tmp / "big.nrrd").write_bytes(
        b"NRRD0004\ntype: float\ndimension: 3\nsizes: 40000 40000 40000\n"
        b"encoding: raw\nendian: little\n\n" + b"\x00" * 64)
    return tmp / "big.nrrd", {}


def _case_garbage_nrrd(tmp):
    (tmp / "bad.nrrd").write_bytes(b"NRRD0004\nthis header makes no sense\n\n\x00\x00")
    return tmp / "bad.nrrd", {}


def _case_hdf5_missing_dataset(tmp):
    import h5py

    with h5py.File(tmp / "v.h5", "w") as f:
        f["image"] = np.zeros((2, 3, 4))
        f["other"] = np.zeros((2, 3, 4))
    return tmp / "v.h5", {"kind": "label"}


def _case_hdf5_garbage(tmp):
    (tmp / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    return tmp / "bad.h5", {}


def _case_bad_sidecar(tmp):
    write_image(Image(np.zeros((8, 8), np.uint8)), tmp / "sub-1_SEM.png")
    (tmp / "sub-1_SEM.json").write_text("{ not json")
    return tmp / "sub-1_SEM.png", {}


def _case_colour_mask(tmp):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    write_image(Image(rgb, channels=True), tmp / "mask.tif")
    return tmp / "mask.tif", {"kind": "label"}


def _case_unknown_option(tmp):
    return _nifti(tmp / "ok.nii.gz", np.zeros((2, 2, 2), np.float32)), {"series": 2}


def _case_bad_axes(tmp):
    import h5py

    with h5py.File(tmp / "v.h5", "w") as f:
        f["image"] = np.zeros((2, 3, 4))
    return tmp / "v.h5", {"axes": "xy"}


def _case_folder_for_png(tmp):
    (tmp / "pics.png").mkdir()
    return tmp / "pics.png", {}


def _case_bad_kind(tmp):
    return _nifti(tmp / "ok.nii.gz", np.zeros((2, 2, 2), np.float32)), {"kind": "mask"}


CASES = [
    (_case_missing, FileMissingError, "nope.nii.gz: no such file or folder"),
    (_case_empty, EmptyFileError, "empty.nii.gz: file is empty"),
    (_case_truncated_nii, CorruptFileError, "t.nii: file is truncated: header promises 32000"),
    (_case_truncated_gz, CorruptFileError, "t.nii.gz: pixel data cannot be read"),
    (_case_garbage_nii, CorruptFileError, "g.nii: cannot read NIfTI/MGH header"),
    (_case_unknown_extension, UnsupportedFormatError, "scan.xyz: unknown file type '.xyz'"),
    (_case_absurd_nifti_header, ImageTooLargeError, "big.nii: header promises (30000, 30000, "),
    (_case_nan_voxels, InvalidImageError, "nan.nii.gz: 1 of 64 voxels are NaN or infinite"),
    (_case_inf_voxels, InvalidImageError, "inf.nii.gz: 2 of 64 voxels are NaN or infinite"),
    (_case_fractional_label, InvalidImageError, "soft_seg.nii.gz: label map has non-integer"),
    (_case_truncated_png, CorruptFileError, "cut.png: cannot decode image"),
    (_case_png_named_nifti, CorruptFileError, "fake.nii.gz: cannot read NIfTI/MGH header"),
    (_case_absurd_nrrd, ImageTooLargeError, "big.nrrd: header promises (40000, 40000, 40000"),
    (_case_garbage_nrrd, CorruptFileError, "bad.nrrd: cannot read header"),
    (_case_hdf5_missing_dataset, CorruptFileError, "v.h5: no dataset 'label' (has: image, oth"),
    (_case_hdf5_garbage, CorruptFileError, "bad.h5: not a readable HDF5 file"),
    (_case_bad_sidecar, CorruptFileError, "sub-1_SEM.json: sidecar is not valid JSON"),
    (_case_colour_mask, InvalidImageError, "mask.tif: label image is in colour"),
    (_case_unknown_option, InvalidArgumentError, "option 'series' does not apply to nifti"),
    (_case_bad_axes, InvalidArgumentError, "axes='xy' does not describe the 3D dataset"),
    (_case_folder_for_png, UnsupportedFormatError, "pics.png: is a folder; png is read from"),
    (_case_bad_kind, InvalidArgumentError, "kind must be one of"),
]


@pytest.mark.parametrize(("make", "error", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_malformed_input_gives_a_clear_error(tmp_path, make, error, message):
    path, options = make(tmp_path)
    with pytest.raises(error) as info:
        read_image(path, **options)
    assert isinstance(info.value, SegloopError)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text.strip(), "one line, no traceback"


def test_at_least_fifteen_malformed_cases():
    assert len(CASES) >= 15


def test_absurd_header_is_refused_before_allocation(tmp_path, monkeypatch):
    # the limit is checked against the header only: a tiny limit refuses a small file too
    p = _nifti(tmp_path / "small.nii", np.zeros((10, 10, 10), np.float32))
    monkeypatch.setenv("SEGLOOP_MAX_BYTES", "1000")
    with pytest.raises(ImageTooLargeError, match="above the 0.0 GiB limit"):
        read_image(p)
    monkeypatch.setenv("SEGLOOP_MAX_BYTES", "lots")
    with pytest.raises(InvalidArgumentError, match="SEGLOOP_MAX_BYTES must be a number"):
        read_image(p)


def test_nonfinite_can_be_zeroed_or_kept(tmp_path):
    path, _ = _case_nan_voxels(tmp_path)
    assert read_image(path, nonfinite="zero").array[1, 1, 1] == 0.0
    assert np.isnan(read_image(path, nonfinite="keep").array[1, 1, 1])


@pytest.mark.parametrize(
    ("label_kw", "why"),
    [
        ({"shape": (4, 4, 5)}, "shape (4, 4, 4) vs (5, 4, 4)"),
        ({"zooms": (1.0, 1.0, 2.0)}, "spacing (1, 1, 1) vs (2, 1, 1) mm"),
        ({"affine": np.diag([-1.0, 1.0, 1.0, 1.0])}, "orientation RAS vs LAS"),
        ({"affine": np.array([[1.0, 0, 0, 5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])},
         "origin"),
    ],
)
def test_label_not_matching_its_image(tmp_path, label_kw, why):
    img = _nifti(tmp_path / "img.nii.gz", np.zeros((4, 4, 4), np.float32))
    shape = label_kw.pop("shape", (4, 4, 4))
    lab = _nifti(tmp_path / "lab.nii.gz", np.zeros(shape, np.uint8), **label_kw)
    with pytest.raises(GeometryMismatchError) as info:
        read_labelled(img, lab)
    text = str(info.value)
    assert "lab.nii.gz" in text and "img.nii.gz" in text and why in text, text


def test_gzip_of_garbage_is_corrupt(tmp_path):
    (tmp_path / "z.nii.gz").write_bytes(gzip.compress(b"garbage" * 100))
    with pytest.raises(CorruptFileError, match="z.nii.gz"):
        read_image(tmp_path / "z.nii.gz")


# ------------------------------------------------- the same inputs through the command line
def _cli_args(options: dict) -> list[str]:
    args = []
    for key, value in options.items():
        flag = {"kind": "--kind", "series": "--series", "axes": "--axes"}[key]
        args += [flag, str(value)]
    return args


CLI_CASES = [c for c in CASES if c[0] is not _case_bad_kind]  # argparse rejects a bad --kind


@pytest.mark.parametrize(("make", "error", "message"), CLI_CASES,
                         ids=[c[0].__name__ for c in CLI_CASES])
def test_cli_prints_one_line_and_no_traceback(tmp_path, capfd, make, error, message):
    from segloop.cli.main import main

    path, options = make(tmp_path)
    extra = _cli_args(options)
    capfd.readouterr()
    # convert (unlike info) refuses NaN/Inf voxels, so every case is an error here
    assert main(["convert", str(path), str(tmp_path / "cli_out.nrrd"), *extra]) == 1
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # nothing else on stderr: no library chatter, no traceback
    assert lines[0].startswith("segloop convert: error: ") and message in lines[0]


def _write(tmp, name, data: bytes):
    (tmp / name).write_bytes(data)
    return tmp / name


EXTRA_CLI_CASES = [
    # (files to make, argv after 'segloop', expected fragment of the one stderr line)
    ("png_bomb", ["info", "{d}/bomb.png"], "bomb.png: header promises (100000, 100000"),
    ("tiff_deflate_cut", ["info", "{d}/cut.tif"], "cut.tif: cannot decode TIFF"),
    ("nifti_dim9", ["info", "{d}/dim9.nii"], "dim9.nii: cannot read NIfTI/MGH header"),
    ("h5_group", ["info", "{d}/g.h5"], "g.h5: 'image' is a group, not an array dataset"),
    ("mha_cut", ["info", "{d}/cut.mha"], "cut.mha:"),
    ("mhd_no_raw", ["info", "{d}/lonely.mhd"], "lonely.mhd:"),
    ("nifti", ["convert", "{d}/ok.nii.gz", "/proc/nope/o.nii.gz"], "o.nii.gz: cannot write"),
    ("nifti", ["convert", "{d}/ok.nii.gz", "{d}/o.nii.gz", "--spacing", "nan", "1", "1"],
     "spacing must be 3 positive finite values"),
    ("nifti", ["convert", "{d}/ok.nii.gz", "{d}/o.nii.gz", "--spacing", "1e-4", "1e-4", "1e-4"],
     "resampling would need"),
    ("nifti", ["convert", "{d}/ok.nii.gz", "{d}/o.png"], "o.png: PNG keeps no origin"),
    ("nifti", ["convert", "{d}/ok.nii.gz", "{d}/o.png", "--drop-geometry"],
     "o.png: PNG holds 2D images"),
    ("nifti", ["convert", "{d}/ok.nii.gz", "{d}/o.jpg"], "o.jpg: segloop cannot write jpeg"),
    ("nifti", ["demo", "--out", "/proc/nope/demo"], "/proc/nope/demo: cannot write"),
]


def _make_extra(kind, d):
    import h5py
    from PIL import Image as PILImage

    if kind == "png_bomb":
        PILImage.new("L", (8, 8)).save(d / "bomb.png")
        import zlib

        raw = bytearray((d / "bomb.png").read_bytes())
        struct.pack_into(">II", raw, 16, 100000, 100000)  # IHDR width/height
        struct.pack_into(">I", raw, 29, zlib.crc32(bytes(raw[12:29])))  # keep the CRC valid
        (d / "bomb.png").write_bytes(bytes(raw))
    elif kind == "tiff_deflate_cut":
        import tifffile

        tifffile.imwrite(d / "cut.tif", np.random.default_rng(0).integers(0, 255, (256, 256),
                                                                           dtype=np.uint8),
                         compression="zlib")
        raw = (d / "cut.tif").read_bytes()
        (d / "cut.tif").write_bytes(raw[:2000] + b"\x00" * (len(raw) - 2000))
    elif kind == "nifti_dim9":
        p = _nifti(d / "dim9.nii", np.zeros((2, 2, 2), np.float32))
        raw = bytearray(p.read_bytes())
        struct.pack_into("<h", raw, 40, 9)
        p.write_bytes(bytes(raw))
    elif kind == "h5_group":
        with h5py.File(d / "g.h5", "w") as f:
            f.create_group("image")
    elif kind == "mha_cut":
        write_image(Image(np.ones((8, 16, 16), np.float32)), d / "full.mha")
        raw = (d / "full.mha").read_bytes()
        _write(d, "cut.mha", raw[: len(raw) // 2])
    elif kind == "mhd_no_raw":
        _write(d, "lonely.mhd", b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\n"
               b"ElementType = MET_FLOAT\nElementDataFile = missing.raw\n")
    elif kind == "nifti":
        _nifti(d / "ok.nii.gz", np.random.default_rng(0).normal(size=(6, 6, 6)).astype(np.float32))


@pytest.mark.parametrize(("kind", "argv", "message"), EXTRA_CLI_CASES,
                         ids=[f"{c[0]}-{c[1][0]}-{i}" for i, c in enumerate(EXTRA_CLI_CASES)])
def test_more_cli_user_errors(tmp_path, capfd, kind, argv, message):
    from segloop.cli.main import main

    _make_extra(kind, tmp_path)
    capfd.readouterr()
    code = main([a.format(d=tmp_path) for a in argv])
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert message.format(d=tmp_path) in lines[0], lines[0]
