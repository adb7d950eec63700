"""Augmentation: labels follow the geometry and keep their values (segloop.learn.transforms)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segloop.learn.config import load_config  # noqa: E402
from segloop.learn.transforms import _affine, affine_matrix, build_augmentation  # noqa: E402

ALL_ON = {"flip": 0.5, "affine_prob": 1.0, "elastic_prob": 1.0, "gamma_prob": 1.0,
          "noise_prob": 1.0, "bias_field_prob": 1.0, "contrast_prob": 1.0}


def _cfg(dims=2, soft=False, **aug):
    return load_config({"data": {"path": "x", "dims": dims, "soft_labels": soft},
                        "model": {"final_activation": "sigmoid" if soft else "softmax"},
                        "augmentation": aug})


def _sample(shape=(40, 48), soft=False, seed=0):
    rng = np.random.default_rng(seed)
    label = np.zeros((1, *shape), np.uint8)
    label[(0, *(slice(s // 4, s // 2) for s in shape))] = 1
    label[(0, *(slice(s // 2, 3 * s // 4) for s in shape))] = 3
    image = (label + rng.normal(0, 0.1, label.shape)).astype(np.float32)
    if soft:
        label = (label / 3.0).astype(np.float32)
    return {"image": image, "label": label, "id": "keep"}


def test_disabled_is_the_identity():
    sample = _sample()
    out = build_augmentation(_cfg(enabled=False))(sample, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"].numpy(), sample["image"])
    np.testing.assert_array_equal(out["label"].numpy(), sample["label"])
    assert out["label"].dtype == torch.int64 and out["id"] == "keep"


@pytest.mark.parametrize("dims,shape", [(2, (40, 48)), (3, (16, 20, 24))])
def test_hard_labels_keep_the_class_set_under_every_transform(dims, shape):
    aug = build_augmentation(_cfg(dims, **ALL_ON))
    changed = 0
    for seed in range(4):
        sample = _sample(shape, seed=seed)
        out = aug(sample, rng=np.random.default_rng(seed))
        assert out["label"].dtype == torch.int64 and out["label"].shape == (1, *shape)
        assert set(torch.unique(out["label"]).tolist()) <= {0, 1, 3}
        assert out["image"].shape == (1, *shape) and out["image"].dtype == torch.float32
        changed += not np.array_equal(out["label"].numpy(), sample["label"])
    assert changed == 4


def test_soft_labels_stay_in_0_1_and_are_not_binarised():
    aug = build_augmentation(_cfg(soft=True, **ALL_ON))
    for seed in range(4):
        out = aug(_sample(soft=True, seed=seed), rng=np.random.default_rng(seed))
        lab = out["label"]
        assert lab.dtype == torch.float32 and 0 <= lab.min() and lab.max() <= 1
        assert ((lab > 0.05) & (lab < 0.95)).any()


def test_same_rng_same_output_other_rng_other_output():
    aug = build_augmentation(_cfg(**ALL_ON))
    sample = _sample()
    a = aug(sample, rng=np.random.default_rng(7))
    b = aug(sample, rng=np.random.default_rng(7))
    c = aug(sample, rng=np.random.default_rng(8))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])


def test_flips_move_image_and_label_together():
    aug = build_augmentation(_cfg(flip=1.0, affine_prob=0.0, gamma_prob=0.0, noise_prob=0.0,
                                  contrast_prob=0.0))
    sample = _sample()
    out = aug(sample, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"].numpy(), sample["image"][:, ::-1, ::-1])
    np.testing.assert_array_equal(out["label"].numpy(), sample["label"][:, ::-1, ::-1])


def test_a_quarter_turn_is_exact_and_labels_match_the_image():
    x = torch.arange(30.0).reshape(1, 5, 6)
    (turned,) = _affine([(x, "nearest")], affine_matrix([math.pi / 2], 1.0, 2))
    square = torch.arange(36.0).reshape(1, 6, 6)
    (sq,) = _affine([(square, "bilinear")], affine_matrix([math.pi / 2], 1.0, 2))
    np.testing.assert_allclose(sq[0].numpy(), np.rot90(square[0].numpy(), -1), atol=1e-4)
    assert turned.shape == x.shape
    # rotation + zoom: the nearest-neighbour label agrees with the bilinear image
    sample = _sample((64, 64))
    img = torch.from_numpy(sample["label"].astype(np.float32))
    moved_img, moved_lab = _affine([(img, "bilinear"), (img.clone(), "nearest")],
                                   affine_matrix([0.4], 1.15, 2))
    agree = (moved_img.round() == moved_lab).float().mean()
    assert agree > 0.97 and not torch.equal(moved_lab, img)


def test_intensity_transforms_keep_the_range():
    aug = build_augmentation(_cfg(flip=0.0, affine_prob=0.0, gamma_prob=1.0, noise_prob=0.0,
                                  contrast_prob=1.0))
    sample = _sample()
    out = aug(sample, rng=np.random.default_rng(3))["image"]
    assert out.min() >= sample["image"].min() - 1e-5 and out.max() <= sample["image"].max() + 1e-5
    assert not np.allclose(out.numpy(), sample["image"])
