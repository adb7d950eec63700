import numpy as np
import pytest

from segloop.data import box_mask, disk
from segloop.errors import InvalidArgumentError
from segloop.simulate import AnchorStep, initial_anchors, next_anchor, true_contour


def test_true_contour_is_the_ordered_boundary_chain():
    truth = box_mask((20, 20), (3, 4), (15, 12))
    truth[3:8, 12:17] = True  # an L shape
    c = true_contour(truth)
    boundary = truth & ~np.pad(truth, 1)[2:, 1:-1] | truth & ~np.pad(truth, 1)[:-2, 1:-1]
    boundary |= truth & ~np.pad(truth, 1)[1:-1, 2:] | truth & ~np.pad(truth, 1)[1:-1, :-2]
    assert {tuple(p) for p in c.tolist()} == {tuple(p) for p in np.argwhere(boundary).tolist()}
    steps = np.abs(np.diff(np.vstack([c, c[:1]]), axis=0)).max(axis=1)
    assert (steps == 1).all()  # 8-connected, closed, no repeats
    assert c[0].tolist() == [3, 4] and c[1].tolist() == [3, 5]  # top-left, then clockwise


def test_true_contour_keeps_the_largest_piece_and_fills_holes():
    truth = box_mask((20, 20), (2, 2), (12, 12)) | box_mask((20, 20), (15, 15), (17, 17))
    truth[5:8, 5:8] = False
    c = true_contour(truth)
    assert len(c) == 36 and c.min(axis=0).tolist() == [2, 2] and c.max(axis=0).tolist() == [11, 11]


def test_initial_anchors_on_the_contour_in_order():
    truth = disk((60, 60), (30, 28), 18)
    c = [tuple(p) for p in true_contour(truth).tolist()]
    anchors = initial_anchors(truth, 4)
    assert len(anchors) == 4 and anchors[0] == c[0]
    idx = [c.index(a) for a in anchors]
    assert idx == sorted(idx)
    gaps = np.diff(idx + [len(c)])
    assert gaps.max() - gaps.min() <= 2  # evenly spread along the outline
    assert initial_anchors(truth, 4) == anchors
    assert initial_anchors(box_mask((9, 9), (2, 2), (7, 7)), 4) == [(2, 2), (2, 6), (6, 6), (6, 2)]


def test_next_anchor_lands_where_the_contour_strays():
    truth = box_mask((30, 40), (5, 5), (25, 35))
    tool = truth.copy()
    tool[5:12, 15:20] = False  # a notch 7 deep under the top edge's columns 15..19
    anchors = [(5, 5), (5, 34), (24, 34), (24, 5)]
    step = next_anchor(tool, truth, anchors)
    assert step == AnchorStep((5, 17), 1, 3.0)
    # the same from the tool's contour as points
    assert next_anchor(true_contour(tool), truth, anchors) == step
    # a deviation between the last anchor and the first goes at the end
    tool = truth.copy()
    tool[12:18, 5:10] = False
    assert next_anchor(tool, truth, anchors) == AnchorStep((15, 5), 4, 3.0)


def test_next_anchor_without_a_contour_measures_from_the_anchors():
    truth = box_mask((30, 30), (5, 5), (25, 25))
    step = next_anchor(np.empty((0, 2)), truth, [(5, 5), (24, 24)])
    assert step == AnchorStep((5, 24), 1, 19.0)  # the top-right corner, 19 from both
    assert next_anchor(np.zeros((30, 30), bool), truth, []) == AnchorStep((5, 5), 0, np.inf)


def test_next_anchor_none_when_the_contour_is_the_truth():
    truth = disk((40, 40), (20, 20), 10)
    assert next_anchor(truth, truth, initial_anchors(truth, 4)) is None


def test_next_anchor_spacing():
    truth = box_mask((30, 30), (5, 5), (25, 25))
    tool = truth.copy()
    tool[5:9, 10:14] = False  # 4 rows deep notch in the top
    tool[12:15, 5:9] = False  # 4 columns deep notch on the left
    assert next_anchor(tool, truth, [(5, 5), (24, 24)]).point == (5, 11)
    # rows 3 mm apart: the top notch's edge is at most 2 mm from its sides, the left one's
    # middle 4 mm from its bottom (and 6 mm from its ends)
    step = next_anchor(tool, truth, [(5, 5), (24, 24)], spacing=(3.0, 1.0))
    assert step == AnchorStep((13, 5), 2, 4.0)


def test_bad_input():
    truth = box_mask((10, 10), (2, 2), (8, 8))
    with pytest.raises(InvalidArgumentError, match="current must be"):
        next_anchor(np.zeros((3, 3, 3)), truth, [])
    with pytest.raises(InvalidArgumentError, match="outside the image"):
        next_anchor(truth, truth, [(20, 2)])
    with pytest.raises(InvalidArgumentError, match="truth must be 2D"):
        true_contour(np.ones((3, 3, 3)))
    with pytest.raises(InvalidArgumentError, match="n must be"):
        initial_anchors(truth, 0)


def test_bad_anchor_values():
    truth = box_mask((10, 10), (2, 2), (8, 8))
    with pytest.raises(InvalidArgumentError, match="finite"):
        next_anchor(truth, truth, [(np.nan, 2)])
    with pytest.raises(InvalidArgumentError, match="finite"):
        next_anchor(truth, truth, [("a", 2)])
