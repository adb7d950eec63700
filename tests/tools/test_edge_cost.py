import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.tools.edge_cost import (
    DEFAULT_WEIGHTS,
    MAX_COST_PER_LENGTH,
    OFFSETS,
    _features,
    canny_edges,
    check_image,
    check_sigma,
    check_window,
    edge_costs,
    local_cost,
)

# a flat image: f_Z = f_G = 1 and f_D = 2/3 (no gradient direction), plus the length term,
# per unit length
W = DEFAULT_WEIGHTS
FLAT = (W["zero_crossing"] + W["magnitude"] + W["direction"] * 2 / 3 + W["length"]) / sum(
    W.values()) + 1e-3


def step(shape=(12, 12), at=6):
    image = np.zeros(shape)
    image[:, at:] = 1.0
    return image


def test_flat_image_links_cost_their_length():
    ec = edge_costs(np.zeros((6, 7)))
    inner = ec.links[:, 1:-1, 1:-1]
    axis = [k for k, (dy, dx) in enumerate(OFFSETS) if dy == 0 or dx == 0]
    diag = [k for k in range(8) if k not in axis]
    np.testing.assert_allclose(inner[axis], FLAT, rtol=1e-6)
    np.testing.assert_allclose(inner[diag], FLAT * np.sqrt(2), rtol=1e-6)
    assert FLAT * np.sqrt(2) <= MAX_COST_PER_LENGTH * np.sqrt(2)
    assert np.isinf(ec.links[:3, 0, :]).all() and np.isinf(ec.links[[2, 4, 7], :, -1]).all()
    np.testing.assert_array_equal(ec.local, 1.0)
    np.testing.assert_array_equal(ec.magnitude, 0.0)


def test_spacing_scales_links_by_physical_length():
    ec = edge_costs(np.zeros((6, 6)), spacing=(2.0, 1.0))
    down, right = ec.links[6, 2, 2], ec.links[4, 2, 2]
    assert down == pytest.approx(2 * right, rel=1e-6)
    assert ec.links[7, 2, 2] == pytest.approx(np.sqrt(5) * right, rel=1e-6)
    assert ec.spacing.tolist() == [2.0, 1.0]


def test_step_edge_is_cheapest_and_followed_along():
    image = step()
    cost = local_cost(image)
    assert set(np.argmin(cost, axis=1).tolist()) <= {5, 6}
    # one of the two pixels at the step is the Laplacian's zero crossing (cost ~0), the
    # other has the full gradient but no zero crossing
    assert cost[:, 5:7].min(axis=1).max() < 0.01 and cost[:, 5:7].max() <= 0.5
    assert cost[:, :3].min() > 0.9
    ec = edge_costs(image)
    # along the edge (down) is cheaper than across it (right), and than down in flat areas
    assert ec.links[6, 6, 5] < 0.2 < ec.links[4, 6, 5]
    assert ec.links[6, 6, 5] < ec.links[6, 6, 1]
    assert ec.magnitude.max() == 1.0


def test_intensity_window_keeps_only_edges_inside_it():
    image = np.zeros((10, 30))
    image[:, 10:] = 0.3   # a weak edge at x = 10
    image[:, 20:] = 5.0   # a strong edge at x = 20
    plain = local_cost(image)
    assert plain[:, 9:11].min() > plain[:, 19:21].min()
    windowed = local_cost(image, intensity_window=(0.0, 0.4))
    assert windowed[:, 9:11].min(axis=1).max() < 0.01  # now the strongest kind of edge
    assert windowed[:, 19:21].min() < 0.5  # 0.3 -> 0.4 still crosses the window
    flat_above = local_cost(image, intensity_window=(-1.0, 0.0))
    np.testing.assert_array_equal(flat_above, 1.0)


def test_colour_image_sums_channel_gradients():
    grey = step()
    rgb = np.stack([grey, np.zeros_like(grey), grey * 0.5], axis=-1)
    np.testing.assert_allclose(local_cost(rgb, channel_axis=-1), local_cost(grey))
    first = np.moveaxis(rgb, -1, 0)
    np.testing.assert_allclose(edge_costs(first, channel_axis=0).links,
                               edge_costs(rgb, channel_axis=-1).links)


def test_local_cost_in_3d():
    vol = np.zeros((8, 8, 8))
    vol[:, :, 4:] = 1.0
    cost = local_cost(vol, spacing=(2.0, 1.0, 1.0))
    assert cost.shape == (8, 8, 8)
    assert set(np.argmin(cost[4], axis=1).tolist()) <= {3, 4}
    with pytest.raises(InvalidArgumentError, match="link costs need a 2D image"):
        edge_costs(vol)


def test_weights_select_the_terms():
    image = step()
    only_g = local_cost(image, weights={"zero_crossing": 0.0, "magnitude": 1.0})
    ec = edge_costs(image)
    np.testing.assert_allclose(only_g, 1.0 - ec.magnitude)
    with pytest.raises(InvalidArgumentError, match="unknown keys"):
        local_cost(image, weights={"colour": 1.0})
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        local_cost(image, weights={"magnitude": -1.0})
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        local_cost(image, weights={"zero_crossing": 0, "magnitude": 0, "direction": 0,
                                   "length": 0})
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        local_cost(image, weights={"magnitude": "strong"})


def test_bad_images_and_options_are_named():
    with pytest.raises(InvalidArgumentError, match="NaN/Inf"):
        local_cost(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(InvalidArgumentError, match=r"must be 2D or 3D.*\(4,\)"):
        local_cost(np.zeros(4))
    with pytest.raises(InvalidArgumentError, match=r"must be 2D or 3D"):
        local_cost(np.zeros((2, 3, 4, 5)))
    with pytest.raises(InvalidArgumentError, match=r"link costs need a 2D image.*\(4, 4, 4\)"):
        edge_costs(np.zeros((4, 4, 4)))
    with pytest.raises(InvalidArgumentError, match="channel_axis=-1 must have 3 axes"):
        check_image(np.zeros((4, 4)), channel_axis=-1)
    with pytest.raises(InvalidArgumentError, match="spacing must be 2 positive"):
        local_cost(np.zeros((4, 4)), spacing=(1.0, 0.0))
    with pytest.raises(InvalidArgumentError, match="spacing must be 2 positive"):
        local_cost(np.zeros((4, 4)), spacing=(1.0,))
    with pytest.raises(InvalidArgumentError, match="real array"):
        local_cost(np.zeros((1, 4)))
    with pytest.raises(InvalidArgumentError, match="real array"):
        local_cost(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(InvalidArgumentError, match="intensity_window"):
        local_cost(np.zeros((4, 4)), intensity_window=(3, 1))
    for sigma in (0, -1.0, np.nan, "1"):
        with pytest.raises(InvalidArgumentError, match="sigma must be a number of pixels"):
            local_cost(np.zeros((4, 4)), sigma=sigma)
    assert check_window(None) is None
    with pytest.raises(InvalidArgumentError, match="intensity_window"):
        check_window("ab")


def test_sigma_is_capped_at_the_image_and_bools_are_refused():
    image = step()
    assert check_sigma(0.25, image.shape) == 0.25 and check_sigma(12, (12, 8)) == 12.0
    for sigma in (1e9, 12.5, 0.2, True):  # 1e9 used to allocate a 64 GB kernel
        with pytest.raises(InvalidArgumentError, match=r"sigma must be a number of pixels in "
                                                       r"\[0.25, 12\].*got sigma="):
            check_sigma(sigma, (12, 8))
    with pytest.raises(InvalidArgumentError, match="sigma must be"):
        local_cost(np.zeros((8, 8, 8)), sigma=1e9)
    with pytest.raises(InvalidArgumentError, match="weights must be non-negative"):
        local_cost(image, weights={"direction": True})
    with pytest.raises(InvalidArgumentError, match="intensity_window must be two finite"):
        check_window([False, True])
    with pytest.raises(InvalidArgumentError, match="intensity_window must be two finite"):
        check_window(["0", "1"])


def test_canny_edges_are_thin_and_enter_the_links_only():
    image = np.zeros((16, 16))
    image[4:12, 4:12] = 1.0  # a square: its outline is an edge
    ec = edge_costs(image)
    pixels, sp = check_image(image)
    grad, mag, lap = _features(pixels, sp, 1.0)
    edges = canny_edges(grad, mag, sp)
    # one pixel wide across each side (both pixels of a symmetric step may stay), none inside
    assert edges[8, :].sum() <= 4 and edges[8, 4:12].sum() <= 2 and not edges[6:10, 6:10].any()
    assert edges[8, 3:5].any() and edges[8, 11:13].any()
    # the links into an edge pixel cost less than those into a flat pixel; local_cost keeps
    # the zero crossings only (it serves fast marching, 2D and 3D)
    y, x = np.argwhere(edges)[0]
    assert ec.links[6, y - 1, x] < ec.links[6, 0, 0] and ec.links[4, y, x - 1] < ec.links[4, 0, 0]
    np.testing.assert_array_equal(local_cost(image), ec.local)
    assert np.array_equal(canny_edges(grad, np.zeros_like(mag), sp), np.zeros_like(edges))


def test_length_weight_makes_every_link_dearer_by_its_length():
    image = step()
    plain = edge_costs(image, weights={"length": 0.0}).links
    longer = edge_costs(image, weights={"length": 0.5}).links
    finite = np.isfinite(plain)
    # (cost * total + length * |q - p|) / (total + length): a detour now costs its length
    total = sum(v for k, v in W.items() if k != "length")
    lengths = np.where(np.abs(OFFSETS).sum(axis=1) == 2, np.sqrt(2), 1.0)[:, None, None]
    expected = ((plain - 1e-3 * lengths) * total + 0.5 * lengths) / (total + 0.5) + 1e-3 * lengths
    np.testing.assert_allclose(longer[finite], np.broadcast_to(expected, plain.shape)[finite],
                               rtol=1e-5)
