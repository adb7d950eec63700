"""Training samples and their loader (segloop.learn.sampling)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segloop.learn.config import load_config  # noqa: E402
from segloop.learn.data import Volume  # noqa: E402
from segloop.learn.sampling import (  # noqa: E402
    TrainSamples,
    make_loader,
    patch_shape,
    samples_per_epoch,
)


def _cfg(data=None, training=None, aug=True, **sections):
    raw = {"data": {"path": "x", **(data or {})},
           "model": {"channels": [4, 8, 16]},
           "training": {"batch_size": 4, **(training or {})},
           "augmentation": {"enabled": aug}, **sections}
    return load_config(raw)


def _volume(shape=(128, 128), boxes=((slice(60, 64), slice(60, 64), 1),), vid="v",
            channels=1, slice_axis=None, seed=0):
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.uint8)
    for *region, value in boxes:
        label[tuple(region)] = value
    image = (rng.normal(size=(channels, *shape)) + label).astype(np.float32)
    return Volume(vid, vid, image, label, (1.0,) * len(shape), f"{vid}.nii.gz", slice_axis)


@pytest.mark.parametrize("ratio", [0.3, 0.7])
def test_foreground_ratio_of_sampled_patches(ratio):
    cfg = _cfg({"patch_size": [16, 16], "foreground_ratio": ratio},
               {"iterations_per_epoch": 50}, aug=False)
    vols = [_volume(vid="a", seed=1), _volume(vid="b", seed=2)]
    data = TrainSamples(cfg, vols, seed=0, length=200)
    draws = [data.draw(k) for k in range(200)]
    with_fg = np.mean([d["label"].any() for d in draws])
    assert abs(with_fg - ratio) <= 0.1
    centred = [d for d in draws if d["foreground"]]
    assert abs(len(centred) / 200 - ratio) <= 0.1
    assert all(d["label"].any() for d in centred)


def test_foreground_classes_are_balanced():
    big = (slice(10, 90), slice(10, 90), 1)
    tiny = (slice(100, 102), slice(100, 102), 2)
    cfg = _cfg({"patch_size": [8, 8], "foreground_ratio": 1.0,
                "classes": {"big": [1], "tiny": [2]}}, aug=False)
    data = TrainSamples(cfg, [_volume(boxes=(big, tiny))], seed=0, length=200)
    centres = [data.draw(k)["label"][0, 4, 4] for k in range(200)]
    assert set(centres) == {1, 2}
    assert abs(np.mean(np.array(centres) == 2) - 0.5) <= 0.1


def test_2d_images_batches_shapes_dtypes_and_padding():
    cfg = _cfg({"patch_size": [30, 20]}, {"iterations_per_epoch": 3})
    assert patch_shape(cfg, [_volume()]) == (32, 20)  # multiple of 4 (3 levels)
    loader = make_loader(cfg, [_volume(channels=2)], seed=0)
    batches = list(loader)
    assert len(batches) == 3
    b = batches[0]
    assert b["image"].shape == (4, 2, 32, 20) and b["image"].dtype == torch.float32
    assert b["label"].shape == (4, 1, 32, 20) and b["label"].dtype == torch.int64
    assert set(torch.unique(b["label"]).tolist()) <= {0, 1}
    # whole slices by default: the largest, rounded up; a smaller image is padded
    small = _volume(shape=(21, 30), vid="s")
    cfg = _cfg(training={"iterations_per_epoch": 2})
    assert patch_shape(cfg, [small, _volume(shape=(40, 22))]) == (40, 32)
    out = next(iter(make_loader(cfg, [small], seed=0)))
    assert out["image"].shape == (4, 1, 24, 32)


def test_2d_slices_of_volumes_along_the_slice_axis():
    vol = _volume(shape=(10, 24, 16), boxes=((slice(4, 6), slice(8, 12), slice(4, 8), 1),),
                  slice_axis=1)
    cfg = _cfg({"foreground_ratio": 1.0}, aug=False)
    assert samples_per_epoch(cfg, [vol]) == 24  # one per coronal slice
    data = TrainSamples(cfg, [vol], seed=0, length=24)
    sample = data.draw(0)
    assert sample["image"].shape == (1, 12, 16)  # (z, x) padded to a multiple of 4
    assert sample["label"].sum() == 2 * 4
    centre = [data.draw(k) for k in range(24)]
    assert all(s["foreground"] for s in centre)  # foreground_ratio 1: on the box's slices


def test_3d_patches():
    vol = _volume(shape=(20, 50, 40), boxes=((slice(5, 9), slice(10, 20), slice(10, 20), 1),))
    cfg = _cfg({"dims": 3, "patch_size": [16, 32, 32], "foreground_ratio": 0.5})
    assert samples_per_epoch(cfg, [vol]) == 2 * 2 * 2
    b = next(iter(make_loader(cfg, [vol], seed=1)))
    assert b["image"].shape == (4, 1, 16, 32, 32) and b["label"].shape == (4, 1, 16, 32, 32)
    assert patch_shape(_cfg({"dims": 3}), [vol]) == (20, 52, 40)  # 96³ clipped, multiple of 4


def test_soft_labels_are_float_channels_in_0_1():
    soft = np.zeros((2, 40, 40), np.float32)
    soft[0, 10:20, 10:20], soft[1, 15:30, 15:30] = 0.4, 0.9
    vol = Volume("s", "s", np.ones((1, 40, 40), np.float32), soft, (1.0, 1.0), "s.png")
    cfg = load_config({"data": {"path": "x", "soft_labels": True, "patch_size": [24, 24],
                                "classes": {"a": [1], "b": [2]}},
                       "model": {"channels": [4, 8], "final_activation": "sigmoid"},
                       "training": {"iterations_per_epoch": 5, "batch_size": 4},
                       "augmentation": {"affine_prob": 1.0}})
    labels = torch.cat([b["label"] for b in make_loader(cfg, [vol], seed=0)])
    assert labels.dtype == torch.float32 and labels.shape == (20, 2, 24, 24)
    assert labels.min() >= 0 and labels.max() <= 1
    assert ((labels > 0.05) & (labels < 0.95)).any()  # not binarised


def test_batches_are_deterministic_epochs_differ_and_set_epoch_replays():
    cfg = _cfg({"patch_size": [16, 16]}, {"iterations_per_epoch": 4})
    vols = [_volume(vid="a"), _volume(vid="b", seed=3)]

    def epochs(loader, n):
        return [torch.cat([b["image"] for b in loader]) for _ in range(n)]

    one = epochs(make_loader(cfg, vols, seed=5), 2)
    two = epochs(make_loader(cfg, vols, seed=5), 2)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
    assert not torch.equal(one[0], one[1])
    other = epochs(make_loader(cfg, vols, seed=6), 1)
    assert not torch.equal(one[0], other[0])
    loader = make_loader(cfg, vols, seed=5)
    loader.sampler.set_epoch(1)
    assert torch.equal(epochs(loader, 1)[0], one[1])


def test_workers_give_the_same_batches_as_the_main_process():
    vols = [_volume(vid="a"), _volume(vid="b", seed=3)]
    main = _cfg({"patch_size": [16, 16]}, {"iterations_per_epoch": 3})
    workers = _cfg({"patch_size": [16, 16]}, {"iterations_per_epoch": 3, "num_workers": 2})
    a = [b["image"] for b in make_loader(main, vols, seed=2)]
    b = [b["image"] for b in make_loader(workers, vols, seed=2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
