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


def model(image, **kw):
    opts = dict(spacing=None, channel_axis=None, intensity_window=None, sigma=1.0,
                metric="intensity", eps=0.05, tolerance=None, edges=False)
    return SpeedModel(image, **{**opts, **kw})


def test_speeds_stay_above_what_scikit_fmm_treats_as_walls():
    image = np.zeros((10, 12))
    image[:, 6:] = 100.0  # intensity range 100
    with pytest.raises(InvalidArgumentError, match=r"tolerance must be a positive number in "
                                                   r"\[0.0001, 1e\+08\].*tolerance=1e-300"):
        model(image, tolerance=1e-300)  # speeds of 1e-300: skfmm saw "no zero contour"
    with pytest.raises(InvalidArgumentError, match=r"tolerance=inf"):
        model(image, tolerance=np.inf)
    m = model(image, tolerance=1e-4)
    assert m.speed(-100.0).min() > 1e-7 and m.speed(200.0).min() > 1e-7  # the extremes allowed
    for ref in (-100.01, 200.01, np.nan, "x", None, True):
        with pytest.raises(InvalidArgumentError, match=r"reference must be a number in "
                                                       r"\[-100, 200\]"):
            m.speed(ref)
    for eps in (1e-7, 2e6, np.inf, False):
        with pytest.raises(InvalidArgumentError, match="eps must be a positive number in"):
            model(image, eps=eps)
    assert model(np.ones((5, 5))).speed(1.0).min() == pytest.approx(20.0)  # constant: tolerance 1
    with pytest.raises(InvalidArgumentError, match=r"metric must be one of"):
        model(image, metric=["edge"])
