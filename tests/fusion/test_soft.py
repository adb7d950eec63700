import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.fusion import (
    FUSION_METHODS,
    fuse,
    majority_vote,
    multilabel_staple,
    soft_consensus,
    staple,
    weighted_vote,
)

RATERS = {"a": [[1, 1, 0, 0]], "b": [[1, 0, 0, 0]], "c": [[1, 1, 1, 0]], "d": [[1, 0, 1, 0]]}


def test_mean_is_the_fraction_of_raters():
    soft = soft_consensus(RATERS)
    assert soft.dtype == np.float32
    assert soft.tolist() == [[1.0, 0.5, 0.5, 0.0]]


def test_mean_3d_bool_and_one_rater():
    a = np.zeros((2, 3, 3), bool)
    a[1, 1, 1] = True
    b = a.copy()
    b[0, 0, 0] = True
    soft = soft_consensus([a, b, np.zeros_like(a)])
    expected = np.zeros((2, 3, 3), np.float32)
    expected[1, 1, 1], expected[0, 0, 0] = 2 / 3, 1 / 3
    np.testing.assert_allclose(soft, expected, rtol=1e-6)
    assert soft_consensus([a]).tolist() == a.astype(np.float32).tolist()


def test_mean_region():
    region = np.array([[True, True, False, True]])
    assert soft_consensus(RATERS, region=region).tolist() == [[1.0, 0.5, 0.0, 0.0]]


def test_staple_is_the_posterior():
    rng = np.random.default_rng(1)
    raters = [
        (rng.random((20, 20)) < 0.3).astype(np.uint8) | (np.arange(20) < 8)[None] for _ in range(3)
    ]
    soft = soft_consensus(raters, method="staple")
    np.testing.assert_array_equal(soft, staple(raters).posterior)
    assert soft.dtype == np.float32 and 0 <= soft.min() and soft.max() <= 1
    limited = soft_consensus(raters, method="staple", max_iter=1)
    np.testing.assert_array_equal(limited, staple(raters, max_iter=1).posterior)


def test_multilabel_input_says_pick_a_class():
    with pytest.raises(InvalidArgumentError) as err:
        soft_consensus({"a": [[0, 1]], "tumour": [[0, 2]]})
    msg = str(err.value)
    assert "'tumour'" in msg and "[0, 2]" in msg and "(m == k)" in msg
    labels = {"a": np.array([[0, 1]]), "tumour": np.array([[0, 2]])}
    picked = soft_consensus({r: m == 2 for r, m in labels.items()})
    assert picked.tolist() == [[0.0, 0.5]]


def test_soft_errors():
    with pytest.raises(InvalidArgumentError, match="method must be one of mean, staple"):
        soft_consensus(RATERS, method="median")
    with pytest.raises(InvalidArgumentError, match="at least 2 raters"):
        soft_consensus([[[0, 1]]], method="staple")
    with pytest.raises(InvalidArgumentError, match="takes no option max_iter"):
        soft_consensus(RATERS, max_iter=3)
    with pytest.raises(InvalidArgumentError, match="takes no option ties"):
        soft_consensus(RATERS, method="staple", ties="lowest")


def test_fuse_dispatches():
    assert FUSION_METHODS == ("majority", "weighted", "staple", "soft")
    assert np.array_equal(fuse(RATERS), majority_vote(RATERS))
    assert fuse(RATERS, "majority", ties="highest").tolist() == [[1, 1, 1, 0]]
    weights = {"a": 1, "b": 1, "c": 3, "d": 1}
    assert np.array_equal(fuse(RATERS, "weighted", weights=weights), weighted_vote(RATERS, weights))
    assert np.array_equal(fuse(RATERS, "weighted"), weighted_vote(RATERS))
    assert np.array_equal(fuse(RATERS, "soft"), soft_consensus(RATERS))
    assert np.array_equal(fuse(RATERS, "soft", soft="staple"), staple(RATERS).posterior)


def test_fuse_staple_binary_thresholds_the_posterior():
    posterior = staple(RATERS).posterior
    fused = fuse(RATERS, "staple")
    assert fused.dtype == np.uint8
    assert np.array_equal(fused, posterior > 0.5)
    assert np.array_equal(fuse(RATERS, "staple", threshold=0.0), posterior > 0.0)
    region = np.array([[True, True, True, False]])
    assert np.array_equal(
        fuse(RATERS, "staple", region=region), staple(RATERS, region=region).posterior > 0.5
    )


def test_fuse_staple_multilabel():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, size=(15, 15))
    raters = [
        np.where(rng.random(truth.shape) < 0.2, rng.integers(0, 3, truth.shape), truth)
        for _ in range(4)
    ]
    assert np.array_equal(fuse(raters, "staple"), multilabel_staple(raters).labels)
    with pytest.raises(InvalidArgumentError, match="binary STAPLE only"):
        fuse(raters, "staple", region=np.ones((15, 15)))


def test_fuse_errors():
    with pytest.raises(
        InvalidArgumentError, match="expected one of majority, weighted, staple, soft"
    ):
        fuse(RATERS, "median")
    with pytest.raises(
        InvalidArgumentError, match="'majority' takes no option weights; its options: ties"
    ):
        fuse(RATERS, "majority", weights=[1, 1, 1, 1])
    with pytest.raises(InvalidArgumentError, match="threshold"):
        fuse(RATERS, "staple", threshold=1.5)
    with pytest.raises(InvalidArgumentError, match="different shapes"):
        fuse({"a": np.zeros((2, 2)), "b": np.zeros((3, 2))}, "soft")
