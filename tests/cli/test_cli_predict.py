"""`segloop predict` and `segloop evaluate --model`: files written, errors on one line."""

import json

import numpy as np
import pytest
import torch

import segloop.cli.main as cli_main
from segloop.io import Image, read_image, write_image
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import build_network


def checkpoint(path, dims=2, data_path="x", in_channels=1, inference=None, **data):
    cfg = load_config({"data": {"path": str(data_path), "dims": dims, **data},
                       "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.2},
                       "inference": {**({"roi_size": [8, 8, 8]} if dims == 3 else {}),
                                     **(inference or {})},
                       "output": {"dir": str(path.parent)}})
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=in_channels)
    return save_checkpoint(path, {"config": cfg, "in_channels": in_channels,
                                  "model": net.state_dict()})


def test_predict_a_folder_with_soft_output_and_uncertainty(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.pt", dims=3)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_image(Image(rng.random((6, 10, 9)).astype(np.float32), spacing=(2.5, 1.0, 0.8),
                          origin=(1.0, 2.0, 3.0)), tmp_path / "in" / f"{name}.nii.gz")
    out = tmp_path / "out"
    assert cli_main.main(["predict", "--model", str(ck), "--input", str(tmp_path / "in"),
                          "--output", str(out), "--soft", "--mc", "2", "--tta"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{n}_{t}.nii.gz" for n in "ab"
                            for t in ("seg", "prob", "entropy", "variance")]
                           + ["uncertainty.json"])
    printed = capsys.readouterr().out
    assert printed.count("wrote ") == 9
    scores = json.loads((out / "uncertainty.json").read_text())
    assert set(scores) == {"a.nii.gz", "b.nii.gz"}
    assert set(scores["a.nii.gz"]) == {"mean_entropy", "volume_cv", "inter_sample_dice"}
    label = read_image(out / "a_seg.nii.gz", kind="label")
    entropy = read_image(out / "a_entropy.nii.gz")
    for img in (label, entropy):
        assert img.shape == (6, 10, 9) and img.spacing == pytest.approx((2.5, 1.0, 0.8))
        assert img.origin == pytest.approx((1.0, 2.0, 3.0))
    assert 0.0 <= entropy.array.min() and entropy.array.max() <= 1.0


def test_predict_png_and_refuse_to_overwrite(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.pt")
    write_image(Image(np.arange(144, dtype=np.uint8).reshape(12, 12)), tmp_path / "x.png")
    args = ["predict", "--model", str(ck), "--input", str(tmp_path / "x.png"),
            "--output", str(tmp_path / "out")]
    assert cli_main.main(args) == 0
    assert read_image(tmp_path / "out" / "x_seg.png", kind="label").shape == (12, 12)
    capsys.readouterr()
    assert cli_main.main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x_seg.png: exists; pass --overwrite" in err
    assert cli_main.main([*args, "--overwrite"]) == 0


def test_predict_bad_inputs_fail_on_one_line(tmp_path, capsys):
    ck3 = checkpoint(tmp_path / "m3.pt", dims=3)
    write_image(Image(np.zeros((8, 8), np.uint8)), tmp_path / "flat.png")
    (tmp_path / "junk.pt").write_bytes(b"nonsense")
    cases = [
        (["--model", str(ck3), "--input", str(tmp_path / "flat.png")],
         "flat.png: a 2D image; the model (m3.pt) segments 3D volumes"),
        (["--model", str(tmp_path / "junk.pt"), "--input", str(tmp_path / "flat.png")],
         "junk.pt: not a readable checkpoint"),
        (["--model", str(ck3), "--input", str(tmp_path / "missing.nii.gz")],
         "missing.nii.gz: input does not exist"),
    ]
    for argv, message in cases:
        status = cli_main.main(["predict", *argv, "--output", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert status == 1 and err.count("\n") == 1 and message in err, err
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["predict", "--model", str(ck3), "--input", "x", "--output", "o",
                       "--mc", "-1"])
    assert exc.value.code == 2


def test_evaluate_model_mode_and_file_mode(tmp_path, capsys):
    data = tmp_path / "data"
    for i in range(5):
        mask = np.zeros((16, 16), np.uint8)
        mask[3 + i:10 + i, 4:12] = 1
        write_image(Image((mask * 180 + 30).astype(np.uint8)), data / "images" / f"{i}.png")
        write_image(Image(mask * 255, kind="label"), data / "labels" / f"{i}.png")
    ck = checkpoint(tmp_path / "run" / "best.pt", data_path=data, split={"test": 2, "val": 1})
    out = tmp_path / "eval"
    assert cli_main.main(["evaluate", "--model", str(ck), "--out", str(out), "--no-tta"]) == 0
    printed = capsys.readouterr().out
    assert "\ntest: 2 cases, dice " in printed and "gallery.png" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_cases"] == 2 and 0.0 <= metrics["dice"] <= 1.0
    assert cli_main.main(["evaluate", "--model", str(ck), "--out", str(out)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert cli_main.main(["evaluate", "--model", str(ck)]) == 1
    assert "--model needs --out DIR" in capsys.readouterr().err
    assert cli_main.main(["evaluate", "--out", str(out)]) == 1
    assert "give --pred and --truth" in capsys.readouterr().err
    # the file-vs-file mode is unchanged
    truth = data / "labels" / "0.png"
    assert cli_main.main(["evaluate", "--pred", str(truth), "--truth", str(truth)]) == 0
    assert "1.0000" in capsys.readouterr().out


def test_predict_with_a_two_contrast_model_files_or_a_dataset_folder(tmp_path, capsys):
    from segloop.learn.predict import load_model

    ck = checkpoint(tmp_path / "m.pt", dims=3, in_channels=2, contrasts=["flair", "t1c"])
    rng = np.random.default_rng(0)
    images = {}
    for case in ("p1", "p2"):
        for name in ("Flair", "T1c"):
            images[case, name] = Image(rng.random((6, 10, 9)).astype(np.float32),
                                       spacing=(2.0, 1.0, 0.9))
            write_image(images[case, name], tmp_path / "data" / case / f"{name}_x.nii.gz")
        write_image(Image(np.zeros((6, 10, 9), np.uint8), kind="label", spacing=(2.0, 1.0, 0.9)),
                    tmp_path / "data" / case / "OTMultiClass.nii.gz")
    files = [str(tmp_path / "data" / "p1" / f"{n}_x.nii.gz") for n in ("Flair", "T1c")]
    base = ["predict", "--model", str(ck), "--soft"]
    assert cli_main.main([*base, "--input", *files, "--output", str(tmp_path / "a")]) == 0
    assert cli_main.main([*base, "--input", files[0], "--input", files[1],
                          "--output", str(tmp_path / "b")]) == 0
    assert cli_main.main([*base, "--input", str(tmp_path / "data"),
                          "--output", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().out.count("wrote ") == 2 + 2 + 4
    expected = load_model(ck).predict([images["p1", "Flair"], images["p1", "T1c"]], soft=True)
    for got in (tmp_path / "a" / "Flair_x_prob.nii.gz", tmp_path / "b" / "Flair_x_prob.nii.gz",
                tmp_path / "c" / "p1_prob.nii.gz"):
        np.testing.assert_allclose(read_image(got).array,
                                   expected.probabilities.array[..., 1], atol=1e-5)
    status = cli_main.main([*base, "--input", files[1], "--output", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1
    assert "T1c_x.nii.gz: has 1 channel; the model (m.pt) takes 2 (data.contrasts: flair, t1c" \
        in err


def test_no_tta_switches_off_the_configs_test_time_augmentation(tmp_path):
    from segloop.learn.predict import load_model

    ck = checkpoint(tmp_path / "m.pt", inference={"tta": True})
    image = Image(np.random.default_rng(1).random((12, 10)).astype(np.float32))
    write_image(image, tmp_path / "x.nii.gz")
    for flag, tta in (("--no-tta", False), ("--tta", True)):
        out = tmp_path / flag
        assert cli_main.main(["predict", "--model", str(ck), "--input", str(tmp_path / "x.nii.gz"),
                              "--output", str(out), "--soft", flag]) == 0
        expected = load_model(ck).predict(image, tta=tta, soft=True).probabilities.array[..., 1]
        np.testing.assert_allclose(read_image(out / "x_prob.nii.gz").array, expected, atol=1e-6)
    off = read_image(tmp_path / "--no-tta" / "x_prob.nii.gz").array
    assert not np.allclose(off, read_image(tmp_path / "--tta" / "x_prob.nii.gz").array, atol=1e-4)
