"""The cascade predictor: locate, crop, segment, paste back on anisotropic rotated volumes."""

import numpy as np
import pytest
import torch
from geometry_helpers import ORIGIN, SPACING, rotation
from torch import nn

from segloop.errors import CorruptFileError, InvalidArgumentError
from segloop.io import Image
from segloop.learn.cascade import (
    CascadePredictor,
    embedded_locate,
    load_cascade,
    region_classes,
)
from segloop.learn.checkpoint import load_checkpoint, save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.networks import Segmenter, build_network
from segloop.learn.predict import Predictor, load_model


def threshold_predictor(cfg, level):
    """A 1x1 convolution: foreground where the intensity exceeds ``level`` (softmax)."""
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-20.0, 20.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([20.0 * level, -20.0 * level]))
    return Predictor(Segmenter(conv, "softmax"), cfg, in_channels=1)


def configs(**cascade):
    base = {"data": {"path": "x", "normalize": "none", "classes": {"blob": [1]}},
            "model": {"channels": [4, 8], "num_res_units": 0}}
    locate = load_config({**base, "data": {**base["data"], "spacing": [1.6, 1.6]}})
    segment = load_config({**base, "cascade": {"locate": "stage1.pt", "margin_mm": [4.0, 4.0],
                                               **cascade}})
    return locate, segment


def cascade(**options):
    locate, segment = configs(**options)
    return CascadePredictor(threshold_predictor(locate, 0.5), threshold_predictor(segment, 0.3))


def scan(blob=True):
    """A bright blob (0.8) on slices 1-2, a faint patch (0.4) far from it on every slice."""
    array = np.zeros((4, 40, 50), np.float32)
    if blob:
        array[1:3, 10:16, 12:20] = 0.8
    array[:, 30:36, 40:48] = 0.4
    return Image(array, spacing=SPACING, origin=ORIGIN, direction=rotation(30),
                 metadata={"path": "scan.nii.gz"})


def same_grid(a: Image, b: Image):
    assert a.shape == b.shape and a.spacing == b.spacing and a.origin == b.origin
    np.testing.assert_array_equal(a.direction, b.direction)


def test_cascade_segments_only_inside_the_located_box():
    model, image = cascade(), scan()
    box = model.box(image)
    # the blob's box (found at 1.6 mm, on the 0.8 mm grid) + 5 pixels in-plane; every slice
    assert box[0] == [0, 4]
    assert 4 <= box[1][0] <= 5 and 21 <= box[1][1] <= 22
    assert 6 <= box[2][0] <= 7 and 25 <= box[2][1] <= 26
    result = model.predict(image, soft=True)
    same_grid(result.label, image)
    same_grid(result.probabilities, image)
    assert result.label.metadata["cascade_box"] == box and result.classes == ("blob",)
    inside = np.zeros(image.shape, bool)
    inside[tuple(slice(a, b) for a, b in box)] = True
    np.testing.assert_array_equal(result.label.array, (image.array > 0.3) & inside)
    assert result.label.array[1:3, 10:16, 12:20].all()  # the blob
    assert not result.label.array[:, 30:36, 40:48].any()  # the faint patch: outside the crop
    probs = result.probabilities.array
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs[~inside][:, 0], 1.0)  # background 1 outside the box
    # stage 2 alone labels the faint patch too
    alone = model.segment.predict(image).label.array
    assert alone[:, 30:36, 40:48].all()


def test_on_empty_whole_falls_back_to_stage_two_on_the_whole_image():
    model, image = cascade(), scan(blob=False)
    assert model.box(image) is None
    result = model.predict(image)
    assert result.label.metadata["cascade_box"] is None
    np.testing.assert_array_equal(result.label.array, image.array > 0.3)
    same_grid(result.label, image)


def test_on_empty_empty_returns_background():
    model, image = cascade(on_empty="empty"), scan(blob=False)
    result = model.predict(image, soft=True)
    assert not result.label.array.any() and result.label.array.dtype == np.uint8
    same_grid(result.label, image)
    assert result.probabilities.array.shape == (4, 40, 50, 2)
    np.testing.assert_array_equal(result.probabilities.array[..., 0], 1.0)
    unc = model.uncertainty(image, tta=True)
    assert unc.n_samples == 0 and not unc.maps["entropy"].array.any()
    assert unc.scores["mean_entropy"] == 0.0


def test_uncertainty_maps_are_pasted_on_the_whole_grid():
    model, image = cascade(), scan()
    unc = model.uncertainty(image, tta=True)
    box = model.box(image)
    inside = np.zeros(image.shape, bool)
    inside[tuple(slice(a, b) for a, b in box)] = True
    for name in ("entropy", "variance"):
        same_grid(unc.maps[name], image)
        assert not unc.maps[name].array[~inside].any()
    assert unc.maps["entropy"].array[inside].max() > 0  # the 0.3 threshold's soft edges
    assert unc.prediction.label.metadata["cascade_box"] == box
    np.testing.assert_array_equal(unc.prediction.label.array, (image.array > 0.3) & inside)


def test_arrays_and_unknown_classes_are_refused():
    model = cascade()
    with pytest.raises(InvalidArgumentError, match="segments whole images"):
        model.infer(np.zeros((1, 4, 8, 8), np.float32))
    locate, _ = configs()
    assert region_classes(locate, None) == [1]
    with pytest.raises(InvalidArgumentError, match=r"cascade.classes: 'heart' is not a class "
                                                   r"of the locating model \(its classes: blob"):
        cascade(classes=["heart"])
    with pytest.raises(InvalidArgumentError, match="has 2 channels"):
        model.predict(Image(np.zeros((8, 8, 2), np.float32), channels=True))


def test_one_checkpoint_predicts_both_stages(tmp_path):
    locate, segment = configs()
    torch.manual_seed(0)
    loc_net, seg_net = build_network(locate, in_channels=1), build_network(segment, in_channels=1)
    stage1 = {"config": locate, "in_channels": 1, "model": loc_net.state_dict(), "epoch": 3,
              "optimizer": {"state": {}}, "history": [{"epoch": 1}]}
    assert sorted(embedded_locate(stage1)) == ["config", "epoch", "in_channels", "model"]
    path = save_checkpoint(tmp_path / "cascade.pt", {
        "config": segment, "in_channels": 1, "model": seg_net.state_dict(),
        "cascade_locate": embedded_locate(stage1)})
    ck = load_checkpoint(path)  # weights_only: the nested tensors load
    assert ck["cascade_locate"]["config"]["data"]["spacing"] == [1.6, 1.6]
    loaded = load_model(path)
    assert isinstance(loaded, CascadePredictor) and loaded.locate.config.data.spacing == [1.6, 1.6]
    direct = CascadePredictor(Predictor(loc_net.eval(), locate, in_channels=1),
                              Predictor(seg_net.eval(), segment, in_channels=1))
    image = scan()
    a, b = loaded.predict(image, soft=True), direct.predict(image, soft=True)
    np.testing.assert_array_equal(a.label.array, b.label.array)
    np.testing.assert_allclose(a.probabilities.array, b.probabilities.array, atol=1e-6)
    same_grid(a.label, image)
    del ck["cascade_locate"]
    with pytest.raises(CorruptFileError, match="without its locating model"):
        load_cascade(ck, source="cascade.pt")


def test_strategies_other_than_random_refuse_a_cascade_before_any_work(tmp_path):
    from segloop.io import write_image
    from segloop.learn.queue import preannotate
    from segloop.learn.strategies import check_strategy

    model = cascade()
    assert check_strategy("random", model) == "random"
    write_image(scan(), tmp_path / "in" / "scan.nii.gz")
    for strategy in ("entropy", "tta", "coreset"):
        with pytest.raises(InvalidArgumentError, match=f"strategy {strategy}: scores a "
                           "network's outputs on its pre-processed grid; the model is a "
                           r"cascade, which segments whole images only \(strategy random"):
            preannotate(model, tmp_path / "in", tmp_path / "queue", strategy=strategy, log=None)
    assert not (tmp_path / "queue").exists()  # refused before predicting anything
    queue = preannotate(model, tmp_path / "in", tmp_path / "queue", strategy="random", log=None)
    assert [item.id for item in queue.items] == ["scan.nii.gz"]
