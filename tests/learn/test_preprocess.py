"""Preprocessing of one image: normalisation, slice axis (segloop.learn.preprocess)."""

from __future__ import annotations

import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.io import Image
from segloop.learn.config import load_config
from segloop.learn.preprocess import preprocess_image, slice_axis_index

pytest.importorskip("torch")


def _cfg(**data):
    return load_config({"data": {"path": "x", **data}})


# ----------------------------------------------------------------------------- normalisation
def test_normalisations():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, (40, 50)).astype(np.float32)
    z, _ = preprocess_image(Image(x), _cfg(normalize="zscore").data)
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4
    m, _ = preprocess_image(Image(x), _cfg(normalize="minmax").data)
    assert m.min() == 0.0 and m.max() == 1.0
    p, _ = preprocess_image(Image(x), _cfg(normalize="percentile").data)
    lo, hi = np.percentile(x, [0.5, 99.5])
    np.testing.assert_allclose(p[0], np.clip((x - lo) / (hi - lo), 0, 1), atol=1e-6)
    n, _ = preprocess_image(Image(x), _cfg(normalize="none").data)
    np.testing.assert_array_equal(n[0], x)


def test_zscore_ignores_a_zero_background_and_keeps_it_zero():
    x = np.zeros((40, 40), np.float32)
    x[10:30, 10:30] = np.random.default_rng(1).normal(100.0, 10.0, (20, 20))  # 75 % zeros
    z, _ = preprocess_image(Image(x), _cfg().data)
    inside = z[0, 10:30, 10:30]
    assert abs(inside.mean()) < 1e-5 and abs(inside.std() - 1) < 1e-4
    assert np.count_nonzero(z[0]) == 400


# ----------------------------------------------------------------------------- slice axis
@pytest.mark.parametrize("axis, index", [("axial", 0), ("coronal", 1), ("sagittal", 2), (1, 1)])
def test_the_slice_axis_is_the_configured_one_whatever_the_direction(axis, index):
    cfg = _cfg(slice_axis=axis).data
    c, s = np.cos(0.4), np.sin(0.4)
    tilted = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])[[2, 0, 1]]  # axes permuted, rotated
    volume = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    for direction in (np.eye(3), tilted):
        _, info = preprocess_image(Image(volume, direction=direction), cfg)
        assert info["slice_axis"] == slice_axis_index(axis) == index
    _, flat = preprocess_image(Image(volume[0]), cfg)
    _, whole = preprocess_image(Image(volume), _cfg(slice_axis=axis, dims=3).data)
    assert flat["slice_axis"] is None and whole["slice_axis"] is None


def test_a_spacing_that_does_not_fit_is_an_error():
    image = Image(np.zeros((4, 5, 6), np.float32), metadata={"path": "v.nii.gz"})
    with pytest.raises(InvalidArgumentError, match="v.nii.gz: data.spacing: 2 values do not "
                                                   "fit a 3D image"):
        preprocess_image(image, _cfg(dims=3, spacing=[1.0, 1.0]).data)
