import numpy as np
import pytest

from segloop.data import disk
from segloop.errors import InvalidArgumentError
from segloop.simulate import polygon_curve, polygon_sequence, polygon_vertices, true_contour


def test_square_needs_4_vertices():
    truth = np.zeros((40, 40), bool)
    truth[8:30, 5:33] = True
    assert polygon_vertices(truth, 0.9) == 4
    assert polygon_vertices(truth, 1.0) == 4
    assert polygon_sequence(truth, n_max=4).tolist() == [[8, 5], [29, 32], [8, 32], [29, 5]]
    curve = polygon_curve(truth, 6)
    assert curve[:2].tolist() == [0.0, 0.0] and curve[2] < 0.75 and curve[3:].tolist() == [1.0] * 3


def test_triangle_needs_3_vertices():
    truth = np.zeros((30, 30), bool)
    truth[5:25, 5:25] = np.tril(np.ones((20, 20), bool))
    assert polygon_vertices(truth, 0.9) == 3
    assert polygon_curve(truth, 3)[2] == 1.0


def test_disk_needs_more():
    truth = disk((64, 64), (32, 32), 20)
    n = polygon_vertices(truth, 0.9)
    assert n == 7  # an inscribed heptagon: Dice 0.919 (hexagon 0.883)
    assert polygon_vertices(truth, 0.97) == 11
    curve = polygon_curve(truth, 12)
    assert curve[n - 1] >= 0.9 > curve[n - 2]
    assert polygon_curve(truth, 40).max() > 0.99


def test_vertices_lie_on_the_contour_and_nest():
    truth = disk((50, 60), (25, 28), 15) | disk((50, 60), (25, 42), 8)
    contour = {tuple(p) for p in true_contour(truth).tolist()}
    seq = polygon_sequence(truth, n_max=20)
    assert len({tuple(p) for p in seq.tolist()}) == 20
    assert {tuple(p) for p in seq.tolist()} <= contour
    assert seq[:10].tolist() == polygon_sequence(truth, n_max=10).tolist()


def test_unreachable_target_gives_none():
    truth = np.zeros((30, 30), bool)
    truth[5:25, 5:25] = True
    truth[10:20, 10:20] = False  # a hole: a polygon fills it
    assert polygon_vertices(truth, 0.99) is None
    assert polygon_vertices(truth, 0.8) == 4


def test_bad_input():
    truth = np.ones((5, 5), bool)
    with pytest.raises(InvalidArgumentError, match="target"):
        polygon_vertices(truth, 0.0)
    with pytest.raises(InvalidArgumentError, match="target"):
        polygon_vertices(truth, 1.5)
    with pytest.raises(InvalidArgumentError, match="n_max"):
        polygon_curve(truth, 0)
    with pytest.raises(InvalidArgumentError, match="truth must be 2D"):
        polygon_vertices(np.ones((3, 3, 3)), 0.9)
