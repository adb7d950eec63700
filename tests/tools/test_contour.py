import numpy as np
import pytest

from segloop.data.phantoms import disk
from segloop.errors import InvalidArgumentError
from segloop.tools.contour import (
    check_point,
    close_path,
    fill_contour,
    join_paths,
    mask_contour,
    resample_contour,
    snap_point,
)


def test_check_point_rounds_and_rejects_outside_and_nan():
    assert check_point((1.4, 2.6), (5, 5)) == (1, 3)
    assert check_point(np.array([0, 4]), (5, 5)) == (0, 4)
    with pytest.raises(InvalidArgumentError, match=r"anchor=\(5, 0\) lies outside .*\(5, 5\)"):
        check_point((5, 0), (5, 5), "anchor")
    with pytest.raises(InvalidArgumentError, match="point=.*-1"):
        check_point((-1, 0), (5, 5))
    with pytest.raises(InvalidArgumentError, match="2 finite numbers"):
        check_point((np.nan, 1), (5, 5))
    with pytest.raises(InvalidArgumentError, match="2 finite numbers"):
        check_point((1, 2, 3), (5, 5))
    with pytest.raises(InvalidArgumentError, match="2 finite numbers"):
        check_point("ab", (5, 5))


def test_close_and_join_paths():
    assert close_path([[0, 0], [0, 1]]).tolist() == [[0, 0], [0, 1], [0, 0]]
    assert close_path([[0, 0], [0, 1], [0, 0]]).tolist() == [[0, 0], [0, 1], [0, 0]]
    joined = join_paths([np.array([[0, 0], [0, 1]]), np.array([[0, 1], [1, 2]]),
                         np.array([[3, 3]]), np.empty((0, 2), int)])
    assert joined.tolist() == [[0, 0], [0, 1], [1, 2], [3, 3]]
    assert join_paths([]).shape == (0, 2)


def test_fill_contour_square_pixel_chain_and_polygon():
    square = np.array([[1, 1], [1, 4], [4, 4], [4, 1]])
    expected = np.zeros((6, 6), bool)
    expected[1:5, 1:5] = True
    np.testing.assert_array_equal(fill_contour(square, (6, 6)), expected)
    np.testing.assert_array_equal(fill_contour(square, (6, 6), include_boundary=False), expected)
    # a thin diagonal sliver between pixel centres: only its outline covers pixels
    sliver = [[0.2, 0.6], [5.2, 5.6], [5.0, 5.8]]
    assert not fill_contour(sliver, (7, 7), include_boundary=False).any()
    with_line = fill_contour(sliver, (7, 7))
    assert with_line[np.arange(6), np.arange(1, 7)].all() and with_line.sum() == 6


def test_fill_contour_clips_to_the_image_and_rejects_bad_contours():
    big = fill_contour([[-2, -2], [-2, 10], [10, 10], [10, -2]], (4, 5))
    assert big.all()
    for bad in ([[0, 0], [1, 1]], np.zeros((4, 3)), [[0, 0], [1, np.nan], [2, 2]]):
        with pytest.raises(InvalidArgumentError, match="contour must be"):
            fill_contour(bad, (5, 5))


def test_resample_contour_is_even_by_arc_length():
    square = [[0, 0], [0, 4], [4, 4], [4, 0]]
    pts = resample_contour(square, 8)
    assert pts.tolist() == [[0, 0], [0, 2], [0, 4], [2, 4], [4, 4], [4, 2], [4, 0], [2, 0]]
    open_pts = resample_contour([[0, 0], [0, 3], [3, 3]], 3, closed=False)
    np.testing.assert_allclose(open_pts, [[0, 0], [0, 3], [3, 3]])
    # with spacing (2, 1) the vertical side is twice as long as the horizontal one
    aniso = resample_contour([[0, 0], [2, 0], [2, 2]], 4, closed=False, spacing=(2.0, 1.0))
    np.testing.assert_allclose(aniso, [[0, 0], [1, 0], [2, 0], [2, 2]])


def test_resample_contour_rejects_bad_counts_and_contours():
    with pytest.raises(InvalidArgumentError, match="n must be an integer >= 3"):
        resample_contour([[0, 0], [0, 4], [4, 4]], 2)
    with pytest.raises(InvalidArgumentError, match="n must be an integer >= 2"):
        resample_contour([[0, 0], [0, 4]], 1.5, closed=False)
    with pytest.raises(InvalidArgumentError, match="contour must be"):
        resample_contour([[0, 0]], 3)


def test_mask_contour_fills_back_to_the_mask():
    truth = disk((40, 50), (20.3, 24.8), 12.5)
    outline = mask_contour(truth)
    assert not np.array_equal(outline[0], outline[-1])
    np.testing.assert_array_equal(fill_contour(outline, truth.shape, include_boundary=False),
                                  truth)


def test_mask_contour_takes_the_largest_object_and_ignores_holes():
    m = np.zeros((30, 30), bool)
    m[2:6, 2:6] = True
    m[10:25, 10:25] = True
    m[15:18, 15:18] = False
    outline = mask_contour(m)
    assert outline.min(axis=0).tolist() == [9.5, 9.5] or outline.min() >= 9.5
    filled = fill_contour(outline, m.shape, include_boundary=False)
    assert filled.sum() == 15 * 15
    with pytest.raises(InvalidArgumentError, match="non-empty 2D mask"):
        mask_contour(np.zeros((4, 4)))
    with pytest.raises(InvalidArgumentError, match="non-empty 2D mask"):
        mask_contour(np.ones((2, 3, 4)))


def test_snap_point_finds_the_strongest_nearest_pixel():
    edges = np.zeros((9, 9))
    edges[:, 6] = 1.0
    edges[:, 1] = 1.0
    assert snap_point(edges, (4, 3), 3) == (4, 1)   # both at distance 2 and 3: nearest wins
    assert snap_point(edges, (4, 4), 3) == (4, 6)
    assert snap_point(edges, (4, 3), 0) == (4, 3)
    assert snap_point(edges, (4, 4), 3, spacing=(1.0, 2.0)) == (4, 4)  # 2 px = 4 mm away
    with pytest.raises(InvalidArgumentError, match="radius must be"):
        snap_point(edges, (4, 4), -1)
    with pytest.raises(InvalidArgumentError, match="outside"):
        snap_point(edges, (9, 4), 2)


def test_points_of_bools_or_strings_are_refused():
    for point in ([True, False], (True, 5), ["1", "2"], (np.bool_(True), 2), 5, None):
        with pytest.raises(InvalidArgumentError, match=r"anchors\[2\] must be 2 finite numbers"):
            check_point(point, (5, 5), "anchors[2]")
    assert check_point((np.int64(1), np.float32(2.4)), (5, 5)) == (1, 2)
    with pytest.raises(InvalidArgumentError, match="snap_radius must be a finite number >= 0, "
                                                   "got snap_radius=True"):
        snap_point(np.zeros((5, 5)), (2, 2), True, name="snap_radius")


def test_traced_chains_are_filled_by_labelling_as_the_polygon_would():
    from skimage import draw

    truth = disk((120, 140), (60.3, 70.8), 45)
    chain = np.rint(mask_contour(truth)).astype(int)
    chain = chain[np.r_[True, np.any(np.diff(chain, axis=0) != 0, axis=1)]]
    chain = chain[:-1] if np.array_equal(chain[0], chain[-1]) else chain
    expected = np.zeros(truth.shape, bool)
    rr, cc = draw.polygon(chain[:, 0], chain[:, 1], truth.shape)
    expected[rr, cc] = True
    expected[tuple(chain.T)] = True
    np.testing.assert_array_equal(fill_contour(chain, truth.shape), expected)
    edge = np.array([(0, x) for x in range(10)] + [(y, 9) for y in range(1, 10)]
                    + [(9, x) for x in range(8, -1, -1)] + [(y, 0) for y in range(8, 0, -1)])
    assert fill_contour(edge, (10, 12))[:, :10].all()  # along the image border
    assert not fill_contour(edge, (10, 12))[:, 10:].any()
