"""Inference: geometry kept, PNG/NIfTI files, slice-wise 2D, sliding window 3D, TTA, errors.

(segloop.learn.inference, segloop.learn.predict and segloop.learn.predict_files: they share
the predictors built here.)
"""

import numpy as np
import pytest
import torch
from geometry_helpers import rotation
from torch import nn

from conftest import needs_shared, shared
from segloop.errors import (
    CorruptFileError,
    DatasetError,
    InvalidArgumentError,
    OutputExistsError,
)
from segloop.io import Image, read_image, write_image
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import Segmenter, build_network
from segloop.learn.predict import Predictor, load_model
from segloop.learn.predict_files import list_inputs, output_suffix, predict_paths
from segloop.learn.preprocess import preprocess_image


def tiny_config(**data):
    model = data.pop("model", {})
    inference = data.pop("inference", {})
    return load_config({"data": {"path": "x", "normalize": "none", **data},
                        "model": {"channels": [4, 8], "num_res_units": 0, **model},
                        "inference": inference})


def threshold_predictor(dims=2, **data):
    """A 1x1 convolution: p(foreground) = sigmoid(20 (x - 0.5)) -- the label is x > 0.5."""
    cfg = tiny_config(dims=dims, **data)
    conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-10.0, 10.0]).view(2, 1, *([1] * dims)))
        conv.bias.copy_(torch.tensor([5.0, -5.0]))
    return Predictor(Segmenter(conv, "softmax"), cfg, in_channels=1)


def unet_checkpoint(path, cfg, in_channels=1, seed=0):
    torch.manual_seed(seed)
    net = build_network(cfg, in_channels=in_channels)
    return save_checkpoint(path, {"config": cfg, "in_channels": in_channels,
                                  "model": net.state_dict()})


def blob_volume(shape=(5, 24, 30)):
    z, y, x = np.indices(shape)
    mask = ((y - 10) ** 2 / 36 + (x - 12) ** 2 / 64 <= 1) | ((y > 17) & (x > 22))
    return mask.astype(np.float32)


def test_nifti_geometry_round_trip_with_resampling(tmp_path):
    # anisotropic spacing, rotated + flipped direction, in-plane resampling to 1 mm
    mask = blob_volume()
    direction = rotation(30)
    image = Image(mask * 0.8 + 0.1, spacing=(3.0, 0.7, 1.3), origin=(12.5, -40.25, 7.0),
                  direction=direction)
    write_image(image, tmp_path / "in" / "scan.nii.gz")
    predictor = threshold_predictor(dims=2, spacing=[1.0, 1.0])
    written = predict_paths(predictor, tmp_path / "in", tmp_path / "out", soft=True)
    assert [p.name for p in written] == ["scan_seg.nii.gz", "scan_prob.nii.gz"]
    source = read_image(tmp_path / "in" / "scan.nii.gz")
    label = read_image(tmp_path / "out" / "scan_seg.nii.gz", kind="label")
    prob = read_image(tmp_path / "out" / "scan_prob.nii.gz", kind="soft")
    for out in (label, prob):
        assert out.shape == source.shape == (5, 24, 30)
        assert out.spacing == source.spacing
        assert out.origin == source.origin
        np.testing.assert_array_equal(out.direction, source.direction)
    np.testing.assert_allclose(source.direction, direction, atol=1e-6)
    assert label.array.dtype == np.uint8 and set(np.unique(label.array)) == {0, 1}
    # the label lands on the right voxels after resampling there and back
    inter = np.count_nonzero((label.array == 1) & (mask > 0))
    assert 2 * inter / (np.count_nonzero(label.array) + np.count_nonzero(mask)) > 0.95
    assert 0.0 <= prob.array.min() and prob.array.max() <= 1.0


def test_png_in_png_out_and_soft_16_bit(tmp_path):
    mask = blob_volume((1, 24, 30))[0]
    write_image(Image((mask * 200 + 20).astype(np.uint8)), tmp_path / "img.png")
    predictor = threshold_predictor(dims=2, normalize="minmax")
    written = predict_paths(predictor, tmp_path / "img.png", tmp_path / "out", soft=True)
    assert [p.name for p in written] == ["img_seg.png", "img_prob.png"]
    label = read_image(tmp_path / "out" / "img_seg.png", kind="label")
    np.testing.assert_array_equal(label.array, mask.astype(np.uint8))
    from PIL import Image as PILImage

    with PILImage.open(tmp_path / "out" / "img_prob.png") as im:
        raw = np.asarray(im)
    assert raw.dtype == np.uint16 and raw.shape == (24, 30)
    expected = predictor.predict(read_image(tmp_path / "img.png"), soft=True)
    np.testing.assert_allclose(raw / 65535, expected.probabilities.array[..., 1], atol=1e-4)


def test_existing_outputs_are_refused_then_versioned(tmp_path):
    write_image(Image(blob_volume((1, 8, 8))[0].astype(np.uint8) * 255), tmp_path / "a.png")
    predictor = threshold_predictor(dims=2, normalize="minmax")
    predict_paths(predictor, tmp_path / "a.png", tmp_path / "out")
    with pytest.raises(OutputExistsError, match="a_seg.png: exists; pass --overwrite"):
        predict_paths(predictor, tmp_path / "a.png", tmp_path / "out")
    predict_paths(predictor, tmp_path / "a.png", tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "a_seg.png.~1~").exists()


def test_listing_inputs_and_output_names(tmp_path):
    for name in ("b.png", "a.nii.gz", "a_seg.nii.gz", "notes.txt", "b.json", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in list_inputs(tmp_path)] == ["a.nii.gz", "a_seg.nii.gz", "b.png"]
    assert [p.name for p in list_inputs(tmp_path, skip_outputs=True)] == ["a.nii.gz", "b.png"]
    assert output_suffix("x.nrrd") == ("x", ".nrrd") and output_suffix("v.h5") == ("v", ".nii.gz")
    assert output_suffix("s.tif") == ("s", ".tif") and output_suffix("m.mhd") == ("m", ".mha")


def test_2d_model_runs_slice_by_slice_over_a_volume():
    cfg = tiny_config(dims=2, inference={"batch_size": 3})
    torch.manual_seed(1)
    predictor = Predictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
    volume = np.random.default_rng(0).random((1, 7, 12, 10), dtype=np.float32)
    probs = predictor.infer(volume)
    assert probs.shape == (2, 7, 12, 10)
    for k in (0, 3, 6):
        np.testing.assert_allclose(probs[:, k], predictor.infer(volume[:, k]), atol=1e-6)
    coronal = predictor.infer(volume, slice_axis=1)
    np.testing.assert_allclose(coronal[:, :, 5], predictor.infer(volume[:, :, 5]), atol=1e-6)
    assert not np.allclose(coronal, probs)


@pytest.mark.parametrize("axis", ["coronal", "sagittal"])
def test_infer_slices_a_preprocessed_volume_along_the_axis_preprocessing_recorded(axis):
    cfg = tiny_config(dims=2, slice_axis=axis)
    torch.manual_seed(4)
    predictor = Predictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
    array, info = preprocess_image(Image(np.random.default_rng(3).random((6, 8, 10),
                                                                         dtype=np.float32)),
                                   cfg.data)
    default = predictor.infer(array)
    np.testing.assert_array_equal(default, predictor.infer(array, slice_axis=info["slice_axis"]))
    k = info["slice_axis"]  # and that is the axis the 2D network sees slices of
    one = np.take(array, 3, axis=1 + k)
    np.testing.assert_allclose(np.take(default, 3, axis=1 + k), predictor.infer(one), atol=1e-6)
    assert not np.allclose(default, predictor.infer(array, slice_axis=0), atol=1e-3)

def test_3d_sliding_window_on_a_volume_not_a_multiple_of_the_roi():
    predictor = threshold_predictor(dims=3, inference={"roi_size": [8, 8, 8], "overlap": 0.5})
    x = np.random.default_rng(0).random((1, 11, 13, 9), dtype=np.float32)
    probs = predictor.infer(x)
    expected = torch.sigmoid(torch.from_numpy(20 * (x[0] - 0.5))).numpy()
    assert probs.shape == (2, 11, 13, 9)
    np.testing.assert_allclose(probs[1], expected, atol=1e-5)
    cfg = tiny_config(dims=3, inference={"roi_size": [8, 8, 8]})
    torch.manual_seed(0)
    unet = Predictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
    out = unet.predict(Image(x[0], spacing=(2.0, 1.0, 1.5)), soft=True)
    assert out.label.shape == (11, 13, 9)
    np.testing.assert_allclose(out.probabilities.array.sum(-1), 1.0, atol=1e-5)
    wrong = threshold_predictor(dims=3, inference={"roi_size": [8, 8]})
    with pytest.raises(InvalidArgumentError, match="inference.roi_size: 2 sizes for a 3D model"):
        wrong.infer(x)


def test_tta_is_the_mean_of_the_flipped_passes():
    cfg = tiny_config(dims=2)
    torch.manual_seed(2)
    net = build_network(cfg, in_channels=1).eval()
    predictor = Predictor(net, cfg, in_channels=1)
    x = torch.from_numpy(np.random.default_rng(1).random((1, 1, 16, 12), dtype=np.float32))
    with torch.no_grad():
        passes = [net(x.flip(d)).flip(d) if d else net(x) for d in ((), (2,), (3,), (2, 3))]
    expected = torch.stack(passes).mean(0)[0].numpy()
    got = predictor.infer(x[0].numpy(), tta=True)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, predictor.infer(x[0].numpy(), tta=False), atol=1e-4)


@pytest.mark.parametrize("activation", ["sigmoid", "normrelu"])
def test_soft_outputs_stay_in_unit_interval(activation):
    loss = "mse" if activation == "normrelu" else "dice_ce"
    cfg = load_config({"data": {"path": "x", "classes": {"a": [1], "b": [2]}},
                       "model": {"channels": [4, 8], "final_activation": activation},
                       "loss": {"name": loss}})
    torch.manual_seed(3)
    predictor = Predictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
    image = Image(np.random.default_rng(2).normal(size=(20, 18)).astype(np.float32))
    out = predictor.predict(image, soft=True, tta=True)
    p = out.probabilities.array
    assert p.shape == (20, 18, 2) and p.dtype == np.float32
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert out.label.array.dtype == np.uint8 and set(np.unique(out.label.array)) <= {0, 1, 2}
    expected = np.where(p.max(-1) >= 0.5, p.argmax(-1) + 1, 0)
    np.testing.assert_array_equal(out.label.array, expected)


def test_post_processing_keeps_the_largest_component_and_fills_holes():
    predictor = threshold_predictor(dims=2, inference={"largest_component": True,
                                                       "fill_holes": True})
    fg = np.zeros((10, 10), np.float32)
    fg[1:6, 1:6] = 1
    fg[3, 3] = 0  # a hole
    fg[8, 8] = 1  # a speck
    label = predictor.to_label(np.stack([1 - fg, fg]))
    expected = np.zeros((10, 10), np.uint8)
    expected[1:6, 1:6] = 1
    np.testing.assert_array_equal(label, expected)


def test_bad_inputs_are_one_line_errors_naming_the_file(tmp_path):
    cfg3 = tiny_config(dims=3)
    ck3 = unet_checkpoint(tmp_path / "m3.pt", cfg3)
    write_image(Image(np.zeros((8, 8), np.uint8)), tmp_path / "flat.png")
    with pytest.raises(InvalidArgumentError) as err:
        predict_paths(ck3, tmp_path / "flat.png", tmp_path / "out")
    assert str(err.value).startswith(str(tmp_path / "flat.png") + ": a 2D image; the model "
                                     "(m3.pt) segments 3D volumes")
    ck2 = unet_checkpoint(tmp_path / "m2.pt", tiny_config(dims=2))
    write_image(Image(np.zeros((8, 8, 3), np.uint8), channels=True), tmp_path / "rgb.png")
    with pytest.raises(InvalidArgumentError, match=r"rgb.png: has 3 channels; the model "
                       r"\(m2.pt\) takes 1"):
        load_model(ck2).predict(read_image(tmp_path / "rgb.png"))
    other = tiny_config(dims=2, model={"channels": [8, 16]})
    data = torch.load(ck2, weights_only=False)
    data["config"]["model"] = other.model.model_dump()
    torch.save(data, tmp_path / "foreign.pt")
    with pytest.raises(CorruptFileError, match="foreign.pt: the weights do not fit"):
        load_model(tmp_path / "foreign.pt")
    (tmp_path / "cut.pt").write_bytes(ck2.read_bytes()[:300])
    with pytest.raises(CorruptFileError, match="cut.pt: not a readable checkpoint"):
        predict_paths(tmp_path / "cut.pt", tmp_path / "flat.png", tmp_path / "out")
    for exc in (err.value,):
        assert "\n" not in str(exc)


def test_a_checkpoint_predicts_with_its_preprocessing(tmp_path):
    cfg = tiny_config(dims=2, normalize="zscore", model={"norm": "batch"})
    path = unet_checkpoint(tmp_path / "m.pt", cfg)
    predictor = load_model(path)
    assert predictor.device.type in ("cpu", "cuda") and predictor.classes == ("foreground",)
    assert not predictor.network.training
    image = Image(np.random.default_rng(0).random((3, 16, 16)).astype(np.float32) * 100)
    a = predictor.predict(image, soft=True)
    b = predictor.predict(image.with_array(image.array / 100), soft=True)  # z-scored alike
    np.testing.assert_allclose(a.probabilities.array, b.probabilities.array, atol=1e-4)
    predictor.network.train()
    predictor.predict(image)
    assert predictor.network.training  # the mode is restored after inference


@pytest.mark.shared_data
@needs_shared("lgg_flair", "TCGA_CS_4941_19960909", "TCGA_CS_4941_19960909_10.tif")
@needs_shared("em_isbi2012", "images", "0.png")
def test_real_tiff_and_png_slices_keep_their_format_and_shape(tmp_path):
    rgb = unet_checkpoint(tmp_path / "rgb.pt", tiny_config(dims=2), in_channels=3)
    lgg = shared("lgg_flair", "TCGA_CS_4941_19960909", "TCGA_CS_4941_19960909_10.tif")
    (out,) = predict_paths(rgb, lgg, tmp_path / "out")
    assert out.name == "TCGA_CS_4941_19960909_10_seg.tif"
    assert read_image(out, kind="label").shape == (256, 256)
    gray = unet_checkpoint(tmp_path / "gray.pt", tiny_config(dims=2, normalize="zscore"))
    (out,) = predict_paths(gray, shared("em_isbi2012", "images", "0.png"), tmp_path / "out")
    assert out.name == "0_seg.png" and read_image(out, kind="label").shape == (512, 512)


# ----------------------------------------------------------------------- several contrasts
def contrast_predictor():
    """Two contrasts (flair, t1c): p(foreground) = sigmoid(20 (t1c - 0.5)); flair is ignored."""
    cfg = tiny_config(dims=3, contrasts=["flair", "t1c"], inference={"roi_size": [8, 8, 8]})
    conv = nn.Conv3d(2, 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, 1] = torch.tensor([-10.0, 10.0]).view(2, 1, 1, 1)
        conv.bias.copy_(torch.tensor([5.0, -5.0]))
    return Predictor(Segmenter(conv, "softmax"), cfg, in_channels=2)


def brats_like(root, cases=("p1", "p2"), shape=(6, 10, 12)):
    """``<case>/{Flair,T1c}_x.nii.gz`` + ``OTMultiClass.nii.gz``: flair and t1c differ."""
    flair, t1c = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    flair[1:4, 2:6, 2:6] = 1.0
    t1c[2:5, 4:9, 5:11] = 1.0
    for case in cases:
        geometry = {"spacing": (2.0, 0.9, 0.8), "origin": (5.0, -3.0, 1.0)}
        write_image(Image(flair, **geometry), root / case / "Flair_x.nii.gz")
        write_image(Image(t1c, **geometry), root / case / "T1c_x.nii.gz")
        write_image(Image(t1c.astype(np.uint8), kind="label", **geometry),
                    root / case / "OTMultiClass.nii.gz")
    return flair, t1c


def test_a_two_contrast_model_takes_one_file_per_contrast_in_the_config_order(tmp_path):
    flair, t1c = brats_like(tmp_path / "data", cases=("p1",))
    files = [tmp_path / "data" / "p1" / n for n in ("Flair_x.nii.gz", "T1c_x.nii.gz")]
    predictor = contrast_predictor()
    written = predict_paths(predictor, files, tmp_path / "out")
    assert [p.name for p in written] == ["Flair_x_seg.nii.gz"]  # named after the first
    label = read_image(written[0], kind="label")
    np.testing.assert_array_equal(label.array, t1c.astype(np.uint8))  # read from t1c
    assert label.spacing == pytest.approx((2.0, 0.9, 0.8))
    swapped = predict_paths(predictor, files[::-1], tmp_path / "swapped")
    np.testing.assert_array_equal(read_image(swapped[0], kind="label").array,
                                  flair.astype(np.uint8))  # the config's order decides
    with pytest.raises(InvalidArgumentError, match=r"Flair_x.nii.gz: has 1 channel; the model "
                       r"takes 2 \(data.contrasts: flair, t1c; one image per contrast"):
        predict_paths(predictor, files[0], tmp_path / "one")
    with pytest.raises(InvalidArgumentError, match="3 input files; the model takes 2 "
                       r"\(data.contrasts: flair, t1c\), one file per contrast"):
        predict_paths(predictor, [*files, files[0]], tmp_path / "three")


def test_a_two_contrast_model_predicts_the_cases_of_a_dataset_folder(tmp_path):
    _, t1c = brats_like(tmp_path / "data")
    predictor = contrast_predictor()
    written = predict_paths(predictor, tmp_path / "data", tmp_path / "out", uncertainty=True,
                            tta=True)
    assert [p.name for p in written] == [
        f"{c}_{t}.nii.gz" for c in ("p1", "p2") for t in ("seg", "entropy", "variance")
    ] + ["uncertainty.json"]
    for case in ("p1", "p2"):
        label = read_image(tmp_path / "out" / f"{case}_seg.nii.gz", kind="label")
        np.testing.assert_array_equal(label.array, t1c.astype(np.uint8))
        assert label.origin == pytest.approx((5.0, -3.0, 1.0))
    (tmp_path / "data" / "p2" / "T1c_x.nii.gz").unlink()  # a case without one contrast
    with pytest.raises(DatasetError, match=r"^case p2 has no t1c image \(data.contrasts; "
                       "has: flair\\)$"):
        predict_paths(predictor, tmp_path / "data", tmp_path / "again")
    loose = tmp_path / "loose"
    write_image(Image(t1c), loose / "scan.nii.gz")
    with pytest.raises(InvalidArgumentError, match="loose: a folder of single images; the "
                       "model takes the contrasts flair, t1c"):
        predict_paths(predictor, loose, tmp_path / "again")


# ----------------------------------------------------------------------------- SoftSeg
def normrelu_predictor(dims, **inference):
    """normrelu of the logit 10 x + 0.05: a background voxel (x = 0) has a small positive logit."""
    cfg = load_config({"data": {"path": "x", "normalize": "none", "dims": dims},
                       "model": {"channels": [4, 8], "final_activation": "normrelu"},
                       "loss": {"name": "mse"}, "inference": inference})
    conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(10.0)
        conv.bias.fill_(0.05)
    return Predictor(Segmenter(conv, "normrelu"), cfg, in_channels=1)


@pytest.mark.parametrize("tta", [False, True])
def test_normrelu_is_normalised_over_the_whole_volume_not_per_slice_or_window(tta):
    volume = np.zeros((1, 16, 8, 8), np.float32)
    volume[0, 2:5, 2:6, 2:6] = 1.0  # foreground in the first slices / the first window only
    expected = (10 * volume[0] + 0.05) / 10.05
    slices = normrelu_predictor(2).infer(volume, tta=tta)  # 16 slices, batches of 4
    windows = normrelu_predictor(3, roi_size=[8, 8, 8], overlap=0.0).infer(volume, tta=tta)
    for probs in (slices, windows):
        assert probs.shape == (1, 16, 8, 8) and probs.max() == pytest.approx(1.0)
        assert probs[0, 8:].max() < 0.01  # background-only slices / window: not scaled to 1
        np.testing.assert_allclose(probs[0], expected, atol=1e-5)
    label = normrelu_predictor(2).to_label(slices)
    np.testing.assert_array_equal(label, volume[0].astype(np.uint8))
    samples = normrelu_predictor(2).samples(volume, tta=True)  # each pass normalised alone
    assert samples.shape == (4, 1, 16, 8, 8)
    np.testing.assert_allclose(samples.reshape(4, -1).max(axis=1), 1.0, atol=1e-6)
