import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.simulate import given_label, given_slices, object_slices, work_saved


def volume():
    truth = np.zeros((20, 4, 5), bool)
    truth[3:15, 1:3, 1:4] = True  # slices 3..14: 12 slices
    return truth


def test_every_kth_slice_plus_first_and_last():
    truth = volume()
    assert given_slices(truth, 1) == list(range(3, 15))
    assert given_slices(truth, 4) == [3, 7, 11, 14]
    assert given_slices(truth, 11) == [3, 14]
    assert given_slices(truth, 100) == [3, 14]
    assert work_saved(truth, given_slices(truth, 4)) == 3.0
    assert work_saved(truth, given_slices(truth, 11)) == 6.0
    assert work_saved(truth, given_slices(truth, 1)) == 1.0


def test_other_axis_and_gaps():
    truth = np.zeros((3, 4, 10), bool)
    truth[1, 1, [2, 3, 7]] = True  # along x: slices 2, 3 and 7 hold the object
    assert object_slices(truth, axis=2).tolist() == [2, 3, 7]
    assert given_slices(truth, 2, axis=-1) == [2, 4, 6, 7]
    assert work_saved(truth, [2, 4, 6, 7], axis=2) == 0.75


def test_given_label_keeps_only_given_slices():
    truth = volume().astype(np.uint8) * 3
    drawn = given_label(truth, [3, 14])
    assert drawn.dtype == np.uint8
    assert np.flatnonzero(drawn.any(axis=(1, 2))).tolist() == [3, 14]
    assert (drawn[3] == truth[3]).all() and drawn.max() == 3


def test_bad_input():
    truth = volume()
    with pytest.raises(InvalidArgumentError, match="every"):
        given_slices(truth, 0)
    with pytest.raises(InvalidArgumentError, match="truth must be 3D"):
        given_slices(truth[0], 2)
    with pytest.raises(InvalidArgumentError, match="axis"):
        given_slices(truth, 2, axis=3)
    with pytest.raises(InvalidArgumentError, match="truth is empty"):
        given_slices(np.zeros((3, 3, 3)), 2)
    with pytest.raises(InvalidArgumentError, match="given"):
        work_saved(truth, [])
    with pytest.raises(InvalidArgumentError, match="given"):
        given_label(truth, [25])
