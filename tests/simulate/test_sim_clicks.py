import numpy as np
import pytest

from segloop.data import box_mask
from segloop.errors import InvalidArgumentError
from segloop.simulate import Click, largest_error, next_click


def test_missed_hole_gets_a_positive_click_at_its_centre():
    truth = box_mask((11, 11), (1, 1), (10, 10))
    pred = truth.copy()
    pred[3:8, 4:9] = False  # a 5 x 5 hole, centre (5, 6)
    assert next_click(pred, truth) == Click((5, 6), True)


def test_false_blob_gets_a_negative_click_at_its_centre():
    truth = box_mask((12, 20), (2, 2), (9, 8))
    pred = truth | box_mask((12, 20), (3, 12), (8, 17))  # a false 5 x 5 blob, centre (5, 14)
    click = next_click(pred, truth)
    assert click == Click((5, 14), False)
    point, positive = click  # unpacks for session.add_click(*click)
    assert (point, positive) == ((5, 14), False)


def test_largest_region_wins_whatever_its_kind():
    truth = box_mask((20, 20), (2, 2), (5, 5))  # 3 x 3 missed
    pred = box_mask((20, 20), (10, 10), (14, 14))  # 4 x 4 false, plus all of truth missed
    assert next_click(pred, truth) == Click((11, 11), False)  # the 2 x 2 core's first pixel
    pred |= box_mask((20, 20), (2, 2), (5, 5))
    assert next_click(pred, truth) == Click((11, 11), False)
    pred = box_mask((20, 20), (10, 10), (12, 12))  # 2 x 2 false now smaller than the 3 x 3 missed
    assert next_click(pred, truth) == Click((3, 3), True)


def test_equal_regions_first_in_raster_order():
    truth = box_mask((10, 10), (6, 1), (9, 4))  # missed 3 x 3, first voxel (6, 1)
    pred = box_mask((10, 10), (1, 5), (4, 8))  # false 3 x 3, first voxel (1, 5)
    assert next_click(pred, truth) == Click((2, 6), False)
    region = largest_error(pred, truth)
    assert not region.positive and int(region.mask.sum()) == 9
    assert region.box == (slice(1, 4), slice(5, 8))


def test_image_border_counts_as_boundary():
    truth = box_mask((10, 10), (0, 0), (5, 5))  # touches the top-left border
    assert next_click(np.zeros_like(truth), truth) == Click((2, 2), True)


def test_depth_in_physical_units():
    truth = box_mask((9, 13), (2, 2), (7, 11))  # 5 rows x 9 columns
    pred = np.zeros_like(truth)
    assert next_click(pred, truth) == Click((4, 4), True)  # isotropic: rows decide
    # rows 3 mm apart: the object is 15 mm tall and 9 mm wide; depth 5 mm at rows 3..5, col 6
    assert next_click(pred, truth, spacing=(3.0, 1.0)) == Click((3, 6), True)


def test_3d_and_int_masks():
    truth = np.zeros((7, 8, 9), np.uint8)
    truth[1:6, 2:7, 2:7] = 1
    assert next_click(np.zeros_like(truth), truth) == Click((3, 4, 4), True)


def test_none_when_perfect():
    truth = box_mask((6, 6), (1, 1), (5, 5))
    assert next_click(truth, truth) is None
    assert largest_error(truth, truth) is None
    assert next_click(np.zeros((4, 4)), np.zeros((4, 4))) is None


def test_jitter_stays_in_the_region_and_repeats_with_the_seed():
    truth = box_mask((40, 40), (5, 5), (35, 35))
    pred = np.zeros_like(truth)
    exact = next_click(pred, truth)
    clicks = [next_click(pred, truth, jitter=3, rng=np.random.default_rng(s)) for s in range(20)]
    again = [next_click(pred, truth, jitter=3, rng=np.random.default_rng(s)) for s in range(20)]
    assert clicks == again
    assert len({c.point for c in clicks}) > 5
    for c in clicks:
        assert c.positive and truth[c.point]
        assert np.hypot(*np.subtract(c.point, exact.point)) <= 3


@pytest.mark.parametrize("pred, truth, msg", [
    (np.zeros((3, 3)), np.zeros((3, 4)), "pred has shape"),
    (np.zeros(5), np.zeros(5), "pred must be 2D or 3D"),
    (np.full((3, 3), np.nan), np.zeros((3, 3)), "NaN"),
    (np.array([["a"]]), np.zeros((1, 1)), "pred must be a boolean"),
])
def test_bad_input(pred, truth, msg):
    with pytest.raises(InvalidArgumentError, match=msg):
        next_click(pred, truth)


def test_bad_options():
    t = box_mask((5, 5), (1, 1), (4, 4))
    with pytest.raises(InvalidArgumentError, match="jitter"):
        next_click(t, t, jitter=-1)
    with pytest.raises(InvalidArgumentError, match="rng"):
        next_click(~t, t, jitter=1, rng=3)
    with pytest.raises(InvalidArgumentError, match="spacing"):
        next_click(~t, t, spacing=(1.0,))
