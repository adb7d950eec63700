import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.simulate import truth_box


def test_tight_box_inclusive_corners():
    truth = np.zeros((10, 12), bool)
    truth[3, 4] = truth[7, 9] = True
    assert truth_box(truth) == ((3, 4), (7, 9))
    vol = np.zeros((5, 6, 7), np.uint8)
    vol[1:3, 2:5, 0:7] = 2
    assert truth_box(vol) == ((1, 2, 0), (2, 4, 6))


def test_jitter_only_loosens_and_stays_in_the_image():
    truth = np.zeros((30, 30), bool)
    truth[0:10, 12:20] = True  # touches the top border
    boxes = [truth_box(truth, jitter=4, rng=np.random.default_rng(s)) for s in range(30)]
    assert boxes == [truth_box(truth, jitter=4, rng=np.random.default_rng(s)) for s in range(30)]
    assert len(set(boxes)) > 10
    for lo, hi in boxes:
        assert lo[0] == 0 and 8 <= lo[1] <= 12
        assert 9 <= hi[0] <= 13 and 19 <= hi[1] <= 23


def test_jitter_draws_each_side_in_order():
    truth = np.zeros((50, 50), bool)
    truth[20:30, 20:30] = True
    draws = np.random.default_rng(7).integers(0, 4, size=(2, 2))
    lo, hi = truth_box(truth, jitter=3, rng=np.random.default_rng(7))
    assert lo == (20 - draws[0, 0], 20 - draws[1, 0])
    assert hi == (29 + draws[0, 1], 29 + draws[1, 1])


def test_bad_input():
    with pytest.raises(InvalidArgumentError, match="truth is empty"):
        truth_box(np.zeros((4, 4)))
    with pytest.raises(InvalidArgumentError, match="jitter"):
        truth_box(np.ones((4, 4)), jitter=1.5)
    with pytest.raises(InvalidArgumentError, match="truth must be 2D or 3D"):
        truth_box(np.ones(4))
