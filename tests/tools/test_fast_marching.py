import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.tools.fast_marching import (
    SpeedModel,
    descend,
    descent_pointers,
    line_time,
    speed_map,
    travel_time,
)


def test_travel_time_scales_with_speed_and_spacing():
    t = travel_time(np.full((1, 6), 2.0), [(0, 0)])
    np.testing.assert_allclose(t[0], [-0.25, 0.25, 0.75, 1.25, 1.75, 2.25])
    t2 = travel_time(np.full((1, 6), 2.0), [(0, 0)], spacing=(1.0, 3.0))
    np.testing.assert_allclose(t2[0, 1:], 3 * t[0, 1:])
    part = travel_time(np.ones((1, 10)), [(0, 0)], narrow=3.0)
    assert np.isfinite(part[0, :4]).all() and np.isinf(part[0, 5:]).all()
    two = travel_time(np.ones((1, 9)), [(0, 0), (0, 8)])
    assert two[0].argmax() == 4


def test_descent_pointers_point_downhill_and_never_loop():
    t = travel_time(np.ones((9, 9)), [(4, 4)])
    pred = descent_pointers(t)
    assert pred[4 * 9 + 4] == 4 * 9 + 4
    assert (t.ravel()[pred] < t.ravel())[np.arange(81) != 40].all()
    assert pred[0] == 10 and pred[4] == 13  # diagonal from the corner, straight down the axis
    pred_inf = descent_pointers(np.array([[0.0, np.inf], [np.inf, np.inf]]))
    assert pred_inf.tolist() == [0, 1, 2, 3]


def test_descend_in_3d_matches_the_pointers():
    t = travel_time(np.ones((7, 8, 9)), [(3, 1, 1)], spacing=(2.0, 1.0, 1.0))
    path = descend(t, (5, 7, 8), (2.0, 1.0, 1.0))
    pred = descent_pointers(t, spacing=(2.0, 1.0, 1.0))
    chain = [np.ravel_multi_index((5, 7, 8), t.shape)]
    while pred[chain[-1]] != chain[-1]:
        chain.append(int(pred[chain[-1]]))
    expected = np.stack(np.unravel_index(chain[::-1], t.shape), axis=1)
    np.testing.assert_array_equal(path, expected)
    assert tuple(path[0]) == (3, 1, 1) and tuple(path[-1]) == (5, 7, 8)


def test_line_time_bounds_the_travel_time():
    rng = np.random.default_rng(0)
    speed = rng.uniform(0.2, 2.0, (40, 50))
    t = travel_time(speed, [(3, 4)], spacing=(1.5, 1.0))
    for target in [(30, 40), (3, 45), (39, 4)]:
        assert t[target] <= line_time(speed, (3, 4), target, np.array([1.5, 1.0]))


def test_speed_models():
    image = np.zeros((10, 12))
    image[:, 6:] = 1.0
    edge = speed_map(image, eps=0.1)
    assert edge.max() <= 10.0 + 1e-9 and edge.min() == pytest.approx(1 / 1.1)
    inside = speed_map(image, metric="intensity", reference=1.0, sigma=0.5, eps=0.5)
    assert inside[:, 9].min() > inside[:, 2].max()
    model = SpeedModel(image, spacing=None, channel_axis=None, intensity_window=(0.0, 0.5),
                       sigma=1.0, metric="intensity", eps=0.05, tolerance=None, edges=False)
    assert model.costs is None and model.smooth.max() == pytest.approx(0.5)
    with pytest.raises(InvalidArgumentError, match="metric must be one of"):
        speed_map(image, metric="hessian")
