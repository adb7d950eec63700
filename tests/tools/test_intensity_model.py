import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.tools.intensity_model import (
    GaussianMixture,
    fit_gmm,
    fit_histogram,
    fit_model,
    quantize,
)


def test_quantize_grey_codes_and_centres_are_exact():
    q = quantize(np.array([[0.0, 1.0], [2.0, 4.0]]), levels=5)
    np.testing.assert_array_equal(q.codes, [[0, 1], [2, 4]])
    np.testing.assert_allclose(q.centres[:, 0], [0, 1, 2, 3, 4])
    assert q.codes.dtype == np.uint8 and q.levels == 5
    assert quantize(np.zeros((2, 2, 3)), channel_axis=-1).codes.dtype == np.uint16  # 32**3
    assert quantize(np.zeros((2, 2, 4)), channel_axis=-1, levels=8).codes.dtype == np.uint16
    assert quantize(np.zeros((2, 2, 4)), channel_axis=-1, levels=32).codes.dtype == np.int32


def test_quantize_colour_codes_channel_zero_fastest():
    rgb = np.zeros((1, 3, 2))
    rgb[0, 1] = [1.0, 0.0]
    rgb[0, 2] = [0.0, 1.0]
    q = quantize(rgb, channel_axis=-1, levels=2)
    np.testing.assert_array_equal(q.codes, [[0, 1, 2]])
    np.testing.assert_allclose(q.centres[q.codes[0]], rgb[0])
    # channel axis first is the same image
    q2 = quantize(np.moveaxis(rgb, -1, 0), channel_axis=0, levels=2)
    np.testing.assert_array_equal(q2.codes, q.codes)


def test_quantize_flat_image_and_bad_levels():
    q = quantize(np.full((3, 3), 7.0))
    assert (q.codes == 0).all() and q.centres[0, 0] == 7.0
    with pytest.raises(InvalidArgumentError, match="levels"):
        quantize(np.zeros((2, 2)), levels=1)


def test_histogram_probabilities_exact_without_smoothing():
    h = fit_histogram([0.1, 0.2, 0.3, 0.9], lo=[0.0], hi=[1.0], bins=2, smoothing=0, floor=0)
    np.testing.assert_allclose(np.exp(h.log_density), [0.75, 0.25])
    np.testing.assert_allclose(h.nll([0.0, 0.49, 0.5, 2.0]),
                               -np.log([0.75, 0.75, 0.25, 0.25]))  # outside: edge bins


def test_histogram_floor_keeps_unseen_intensities_finite():
    h = fit_histogram(np.full(100, 0.05), lo=[0.0], hi=[1.0], bins=10, smoothing=0)
    unseen = h.nll([0.95])[0]
    assert np.isfinite(unseen) and unseen > h.nll([0.05])[0] + 5


def test_histogram_colour_is_joint():
    # red and green pixels: the joint histogram tells yellow (both high) apart; marginals would not
    samples = np.array([[1.0, 0.0]] * 50 + [[0.0, 1.0]] * 50)
    h = fit_histogram(samples, lo=[0, 0], hi=[1, 1], bins=4, smoothing=0)
    assert h.log_density.shape == (4, 4)
    assert h.nll([[1.0, 1.0]])[0] > h.nll([[1.0, 0.0]])[0] + 5


def test_gmm_recovers_two_grey_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.2, 0.02, 3000), rng.normal(0.7, 0.05, 1000)])
    g = fit_gmm(x, n_components=2)
    order = np.argsort(g.means[:, 0])
    np.testing.assert_allclose(g.means[order, 0], [0.2, 0.7], atol=0.01)
    np.testing.assert_allclose(g.weights[order], [0.75, 0.25], atol=0.01)
    np.testing.assert_allclose(np.sqrt(g.covariances[order, 0, 0]), [0.02, 0.05], rtol=0.1)


def test_gmm_recovers_colour_clusters_and_is_deterministic():
    rng = np.random.default_rng(1)
    centres = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.2, 0.9]])
    x = np.concatenate([c + rng.normal(0, 0.03, (500, 3)) for c in centres])
    g = fit_gmm(x, n_components=3)
    found = g.means[np.argsort(g.means[:, 0])[::-1]]
    np.testing.assert_allclose(found[[0, 2, 1]] if found[1, 1] < found[2, 1] else found,
                               centres, atol=0.02)
    again = fit_gmm(x, n_components=3)
    np.testing.assert_array_equal(g.means, again.means)
    # a pixel near a cluster is likelier than one between clusters
    assert g.nll([[0.9, 0.1, 0.1]])[0] < g.nll([[0.5, 0.5, 0.5]])[0] - 10


def test_gmm_few_distinct_values_and_single_value():
    g = fit_gmm([1.0, 1.0, 2.0, 2.0], n_components=5)
    assert len(g.weights) == 2
    single = fit_gmm([3.0] * 10)
    assert len(single.weights) == 1 and np.isfinite(single.nll([3.0, 4.0])).all()


def test_gmm_nll_matches_closed_form_for_one_gaussian():
    g = GaussianMixture(np.array([1.0]), np.array([[1.0]]), np.array([[[4.0]]]))
    expected = 0.5 * np.log(2 * np.pi * 4.0) + 0.5 * (3.0 - 1.0) ** 2 / 4.0
    np.testing.assert_allclose(g.nll([3.0]), [expected])


def test_quantized_costs_equal_histogram_nll_of_each_voxel():
    rng = np.random.default_rng(2)
    image = rng.random((16, 16)).astype(np.float32)
    q = quantize(image, levels=64)
    h = fit_histogram(image[:8].ravel(), lo=q.lo, hi=q.hi, bins=64, smoothing=1.0)
    costs = q.costs(h)
    assert costs.dtype == np.float32 and costs.shape == image.shape
    np.testing.assert_allclose(costs, h.nll(q.centres[q.codes.ravel()]).reshape(16, 16),
                               rtol=1e-6)


@pytest.mark.parametrize("samples", [[], [np.nan, 1.0], np.zeros((2, 2, 2))])
def test_bad_samples_are_named(samples):
    with pytest.raises(InvalidArgumentError, match="samples"):
        fit_gmm(samples)
    with pytest.raises(InvalidArgumentError, match="samples"):
        fit_histogram(samples, lo=[0], hi=[1])


def test_bad_options_are_named():
    with pytest.raises(InvalidArgumentError, match="model must be one of histogram, gmm"):
        fit_model("kmeans", [1.0], lo=[0], hi=[1])
    with pytest.raises(InvalidArgumentError, match="lo and hi"):
        fit_histogram([[1.0, 2.0]], lo=[0], hi=[1])
    with pytest.raises(InvalidArgumentError, match="bins"):
        fit_histogram([1.0], lo=[0], hi=[1], bins=0)
    with pytest.raises(InvalidArgumentError, match="n_components"):
        fit_gmm([1.0, 2.0], n_components=0)


@pytest.mark.parametrize("call, match", [
    (lambda: fit_histogram([1.0], lo=[0], hi=[1], bins=True), "got bins=True"),
    (lambda: fit_histogram([1.0], lo=[0], hi=[1], bins=2.5), "got bins=2.5"),
    (lambda: fit_histogram([[1.0] * 3], lo=[0] * 3, hi=[1] * 3, bins=1000),
     r"bins\*\*channels must be <= 2\*\*24"),
    (lambda: fit_gmm([1.0, 2.0], n_components=True), "got n_components=True"),
    (lambda: fit_gmm([1.0, 2.0], iterations=1.5), "got iterations=1.5"),
    (lambda: quantize(np.zeros((2, 2)), levels=False), "got levels=False"),
])
def test_counts_must_be_real_integers(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()
