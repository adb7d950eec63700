import time

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import needs_shared, shared
from segloop.errors import InvalidArgumentError
from segloop.fusion import multilabel_staple, staple, staple_cases

QUBIQ = ("qubiq_brain_growth_7raters", "brain_growth_7raters.npz")
DRIVE = ("retina_drive_2raters", "DRIVE", "test")


# --------------------------------------------------------------------------- helpers


def _noisy_raters(truth, sens, spec, rng):
    """Raters that keep a true foreground voxel with prob p and a background one with prob q."""
    out = {}
    for i, (p, q) in enumerate(zip(sens, spec, strict=True)):
        u = rng.random(truth.shape)
        out[f"r{i}"] = np.where(truth, u < p, u >= q).astype(np.uint8)
    return out


def _blobs(rng, n, shape=(48, 48)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cases = []
    for _ in range(n):
        lo = shape[0] * 14 // 48
        cy, cx, rad = (
            rng.integers(lo, shape[0] - lo),
            rng.integers(lo, shape[1] - lo),
            rng.integers(shape[0] // 6, lo),
        )
        cases.append((yy - cy) ** 2 + (xx - cx) ** 2 < rad**2)
    return cases


def _itk_staple(raters, confidence=1.0):
    f = sitk.STAPLEImageFilter()
    f.SetConfidenceWeight(confidence)
    out = f.Execute([sitk.GetImageFromArray(np.asarray(r, np.uint8)) for r in raters])
    return (
        sitk.GetArrayFromImage(out),
        np.array(f.GetSensitivity()),
        np.array(f.GetSpecificity()),
        f,
    )


def _reference_pooled(cases, n_iter):
    """Plain per-voxel EM with missing raters (no vote patterns): the definition, slowly."""
    ids = sorted({r for case in cases for r in case})
    flat = [{r: np.asarray(m, float).ravel() for r, m in case.items()} for case in cases]
    prior = sum(d.sum() for c in flat for d in c.values()) / sum(
        d.size for c in flat for d in c.values()
    )
    weights = [np.mean(list(c.values()), axis=0) for c in flat]
    for _ in range(n_iter):
        p, q = {}, {}
        for r in ids:
            pairs = [(w, c[r]) for w, c in zip(weights, flat, strict=True) if r in c]
            p[r] = sum((w * d).sum() for w, d in pairs) / sum(w.sum() for w, _ in pairs)
            q[r] = sum(((1 - w) * (1 - d)).sum() for w, d in pairs) / sum(
                (1 - w).sum() for w, _ in pairs
            )
        weights = []
        for c in flat:
            log_odds = np.log(prior / (1 - prior))
            for r, d in c.items():
                log_odds = (
                    log_odds + d * np.log(p[r] / (1 - q[r])) + (1 - d) * np.log((1 - p[r]) / q[r])
                )
            weights.append(1 / (1 + np.exp(-log_odds)))
    return weights, p, q


# --------------------------------------------------------------------------- binary STAPLE by hand


def test_hand_example_is_a_fixed_point():
    # W0 = mean vote [1, .5, 0, 0]; M-step: p = (1.5/1.5, 1/1.5), q = (2/2.5, 2.5/2.5);
    # prior 3/8; E-step at the split voxel: (3/8 * 1/3) / (3/8 * 1/3 + 5/8 * 0.2 * 1) = 0.5 = W0
    result = staple({"a": [[1, 1], [0, 0]], "b": [[1, 0], [0, 0]]})
    assert result.posterior.dtype == np.float32
    assert result.posterior.tolist() == [[1.0, 0.5], [0.0, 0.0]]
    assert result.sensitivity == pytest.approx({"a": 1.0, "b": 2 / 3})
    assert result.specificity == pytest.approx({"a": 0.8, "b": 1.0})
    assert result.prior == 3 / 8
    assert (result.iterations, result.converged) == (2, True)


def test_identical_raters_are_perfect_3d():
    truth = np.zeros((3, 4, 5), bool)
    truth[1, 1:3, 1:4] = True
    result = staple([truth, truth, truth])
    assert np.array_equal(result.posterior, truth.astype(np.float32))
    assert list(result.sensitivity.values()) == [1.0, 1.0, 1.0]
    assert list(result.specificity.values()) == [1.0, 1.0, 1.0]


def test_complement_rater():
    truth = np.array([[0, 1, 1, 0], [1, 0, 0, 1]])
    result = staple({"a": truth, "b": truth, "flip": 1 - truth})
    assert np.array_equal(result.posterior, truth)
    assert result.sensitivity == pytest.approx({"a": 1, "b": 1, "flip": 0}, abs=1e-9)
    assert result.specificity == pytest.approx({"a": 1, "b": 1, "flip": 0}, abs=1e-9)


def test_one_iteration_is_the_m_step_of_the_mean():
    # 4 true and 4 background voxels, W0 = 2/3 on truth and 1/3 off it:
    # p_good = (4 * 2/3) / (4 * 2/3 + 4 * 1/3) = 2/3 = q_good, p_flip = q_flip = 1/3
    truth = np.array([[0, 1, 1, 0], [1, 0, 0, 1]])
    result = staple({"a": truth, "b": truth, "flip": 1 - truth}, max_iter=1)
    assert (result.iterations, result.converged) == (1, False)
    assert result.sensitivity == pytest.approx({"a": 2 / 3, "b": 2 / 3, "flip": 1 / 3})
    assert result.specificity == pytest.approx({"a": 2 / 3, "b": 2 / 3, "flip": 1 / 3})


def test_given_prior_is_used():
    raters = {"a": [[1, 1], [0, 0]], "b": [[1, 0], [0, 0]]}
    first = staple(raters, prior=0.5, max_iter=1)
    # same M-step as the hand example; E-step at the split voxel: (1/2 * 1/3) / (1/6 + 1/2 * 0.2)
    assert first.prior == 0.5
    assert first.posterior[0, 1] == pytest.approx(0.625)


def test_empty_and_full_consensus():
    zeros = np.zeros((3, 3), np.uint8)
    empty = staple([zeros, zeros])
    assert not empty.posterior.any()
    assert np.isnan(list(empty.sensitivity.values())).all()
    assert list(empty.specificity.values()) == [1.0, 1.0]
    full = staple([zeros + 1, zeros + 1])
    assert full.posterior.min() == 1.0
    assert np.isnan(list(full.specificity.values())).all()


def test_region_restricts_the_voxels():
    rng = np.random.default_rng(2)
    truth = np.zeros((30, 30), bool)
    truth[8:20, 10:22] = True
    raters = _noisy_raters(truth, (0.9, 0.8, 0.95), (0.97, 0.9, 0.99), rng)
    region = np.zeros((30, 30), bool)
    region[5:25, 4:28] = True
    inside = staple(raters, region=region)
    cropped = staple({r: m[5:25, 4:28] for r, m in raters.items()})
    assert not inside.posterior[~region].any()
    assert np.array_equal(inside.posterior[5:25, 4:28], cropped.posterior)
    assert inside.sensitivity == cropped.sensitivity and inside.prior == cropped.prior


def test_errors():
    with pytest.raises(InvalidArgumentError, match="at least 2 raters, got 1 \\('solo'\\)"):
        staple({"solo": [[0, 1]]})
    with pytest.raises(InvalidArgumentError, match="rater 'b' holds values \\[0, 2\\].*== k"):
        staple({"a": [[0, 1]], "b": [[0, 2]]})
    with pytest.raises(InvalidArgumentError, match="different shapes"):
        staple({"a": [[0, 1]], "b": [[0, 1, 0]]})
    for prior in (0, 1, 1.5, "x"):
        with pytest.raises(InvalidArgumentError, match="prior"):
            staple([[[0, 1]], [[1, 1]]], prior=prior)
    with pytest.raises(InvalidArgumentError, match="max_iter"):
        staple([[[0, 1]], [[1, 1]]], max_iter=0)
    with pytest.raises(InvalidArgumentError, match="tol"):
        staple([[[0, 1]], [[1, 1]]], tol=0)
    with pytest.raises(InvalidArgumentError, match="region has shape"):
        staple([[[0, 1]], [[1, 1]]], region=np.ones((2, 2)))


# --------------------------------------------------------------------------- SimpleITK


@pytest.mark.parametrize("shape", [(40, 50), (12, 20, 24)])
def test_agrees_with_simpleitk(shape):
    rng = np.random.default_rng(4)
    truth = np.zeros(shape, bool)
    truth[tuple(slice(s // 4, 3 * s // 4) for s in shape)] = True
    raters = _noisy_raters(truth, (0.95, 0.8, 0.7, 0.9), (0.99, 0.95, 0.9, 0.8), rng)
    posterior, p, q, f = _itk_staple(raters.values())
    result = staple(raters)
    np.testing.assert_allclose(result.posterior, posterior, atol=1e-6)
    np.testing.assert_allclose(list(result.sensitivity.values()), p, atol=1e-9)
    np.testing.assert_allclose(list(result.specificity.values()), q, atol=1e-9)
    assert result.iterations == f.GetElapsedIterations() + 1  # ITK counts from 0


def test_given_prior_agrees_with_simpleitk_confidence_weight():
    # ITK's prior is (mean foreground fraction) * ConfidenceWeight
    rng = np.random.default_rng(6)
    truth = np.zeros((40, 40), bool)
    truth[10:30, 5:25] = True
    raters = list(_noisy_raters(truth, (0.9, 0.8, 0.85), (0.95, 0.9, 0.97), rng).values())
    mean_fraction = np.mean([r.mean() for r in raters])
    posterior, p, q, _ = _itk_staple(raters, confidence=0.4 / mean_fraction)
    result = staple(raters, prior=0.4, max_iter=1000)  # ITK's default is 2**32 - 1
    np.testing.assert_allclose(result.posterior, posterior, atol=1e-6)
    np.testing.assert_allclose(list(result.sensitivity.values()), p, atol=1e-9)


def test_simpleitk_foreground_value_trap():
    # a 0/255 mask is all background to ITK's default ForegroundValue=1: we refuse it instead
    truth = np.zeros((10, 10), np.uint8)
    truth[2:7, 3:8] = 1
    _, p, _, _ = _itk_staple([truth * 255, truth, truth])
    assert np.isnan(p[0]) or p[0] == 0.0
    with pytest.raises(InvalidArgumentError, match="rater '0' holds values \\[0, 255\\]"):
        staple([truth * 255, truth, truth])


# --------------------------------------------------------------------------- pooled over cases


def test_single_case_pooled_is_staple():
    rng = np.random.default_rng(8)
    truth = _blobs(rng, 1)[0]
    raters = _noisy_raters(truth, (0.9, 0.7, 0.8), (0.95, 0.99, 0.9), rng)
    pooled, single = staple_cases([raters]), staple(raters)
    assert np.array_equal(pooled.posteriors[0], single.posterior)
    assert pooled.sensitivity == single.sensitivity and pooled.specificity == single.specificity
    assert (pooled.prior, pooled.iterations, pooled.n_cases) == (
        single.prior,
        single.iterations,
        {"r0": 1, "r1": 1, "r2": 1},
    )


def test_a_missing_rater_contributes_nothing():
    # a case whose third rater is missing is fused as if only two raters had been asked
    rng = np.random.default_rng(9)
    truth = _blobs(rng, 1)[0]
    raters = _noisy_raters(truth, (0.9, 0.7, 0.8), (0.95, 0.99, 0.9), rng)
    present = {r: raters[r] for r in ("r0", "r1")}
    pooled, single = staple_cases([present]), staple(present)
    assert np.array_equal(pooled.posteriors[0], single.posterior)
    assert pooled.sensitivity == single.sensitivity


def test_pooled_is_staple_of_the_cases_side_by_side():
    rng = np.random.default_rng(10)
    first, second = _blobs(rng, 2)
    cases = [_noisy_raters(t, (0.9, 0.7, 0.8), (0.95, 0.99, 0.9), rng) for t in (first, second)]
    pooled = staple_cases(cases)
    joined = staple({r: np.concatenate([cases[0][r], cases[1][r]]) for r in cases[0]})
    np.testing.assert_allclose(np.concatenate(pooled.posteriors), joined.posterior, atol=1e-7)
    assert pooled.sensitivity == pytest.approx(joined.sensitivity, abs=1e-12)
    assert pooled.iterations == joined.iterations


def test_pooled_with_missing_raters_matches_the_per_voxel_definition():
    rng = np.random.default_rng(11)
    truths = _blobs(rng, 3, shape=(24, 24))
    cases = [_noisy_raters(t, (0.9, 0.7, 0.8), (0.95, 0.9, 0.85), rng) for t in truths]
    del cases[0]["r2"], cases[2]["r0"]
    pooled = staple_cases(cases, max_iter=25, tol=1e-300)
    weights, p, q = _reference_pooled(cases, 25)
    for post, ref, truth in zip(pooled.posteriors, weights, truths, strict=True):
        np.testing.assert_allclose(post.ravel(), ref, atol=1e-6)
        assert post.shape == truth.shape
    assert pooled.sensitivity == pytest.approx(p, abs=1e-10)
    assert pooled.specificity == pytest.approx(q, abs=1e-10)
    assert pooled.n_cases == {"r0": 2, "r1": 3, "r2": 2}
    assert (pooled.iterations, pooled.converged) == (25, False)


def test_pooled_recovers_known_rater_quality():
    rng = np.random.default_rng(12)
    sens, spec = (0.95, 0.9, 0.85, 0.8, 0.7), (0.995, 0.98, 0.965, 0.95, 0.93)
    cases = [_noisy_raters(t, sens, spec, rng) for t in _blobs(rng, 12)]
    for case in cases[:4]:
        del case["r4"]
    for case in cases[8:]:
        del case["r1"]
    pooled = staple_cases(cases)
    assert pooled.converged
    assert list(pooled.sensitivity.values()) == pytest.approx(sens, abs=0.02)
    assert list(pooled.specificity.values()) == pytest.approx(spec, abs=0.005)
    ids = [f"r{i}" for i in range(5)]
    assert sorted(ids, key=lambda r: -pooled.sensitivity[r]) == ids
    assert sorted(ids, key=lambda r: -pooled.specificity[r]) == ids
    assert pooled.n_cases == {"r0": 12, "r1": 8, "r2": 12, "r3": 12, "r4": 8}


def test_pooled_regions():
    rng = np.random.default_rng(13)
    truths = _blobs(rng, 2)
    cases = [_noisy_raters(t, (0.9, 0.8), (0.95, 0.9), rng) for t in truths]
    region = np.zeros((48, 48), bool)
    region[4:44, 4:44] = True
    pooled = staple_cases(cases, regions=[region, None])
    assert not pooled.posteriors[0][~region].any()
    cropped = staple_cases([{r: m[4:44, 4:44] for r, m in cases[0].items()}, cases[1]])
    np.testing.assert_array_equal(pooled.posteriors[0][4:44, 4:44], cropped.posteriors[0])


def test_pooled_errors():
    with pytest.raises(InvalidArgumentError, match="non-empty sequence"):
        staple_cases([])
    with pytest.raises(InvalidArgumentError, match="cases\\[1\\] is empty"):
        staple_cases([{"a": [[1]], "b": [[0]]}, {}])
    with pytest.raises(InvalidArgumentError, match="at least 2 raters, got \\['a'\\]"):
        staple_cases([{"a": [[1]]}, {"a": [[0]]}])
    with pytest.raises(InvalidArgumentError, match="cases\\[0\\]: rater 'b' holds values"):
        staple_cases([{"a": [[1]], "b": [[3]]}])
    with pytest.raises(InvalidArgumentError, match="regions must be a sequence of 1"):
        staple_cases([{"a": [[1]], "b": [[0]]}], regions=[None, None])
    with pytest.raises(InvalidArgumentError, match="regions\\[0\\] has shape"):
        staple_cases([{"a": [[1]], "b": [[0]]}], regions=[np.ones((2, 2))])


# --------------------------------------------------------------------------- multi-label


def test_multilabel_identical_raters():
    truth = np.array([[0, 4, 4], [2, 2, 0]])
    result = multilabel_staple({"a": truth, "b": truth})
    assert result.classes == [0, 2, 4]
    assert np.array_equal(result.labels, truth)
    assert np.array_equal(result.confusion["a"], np.eye(3))
    assert result.posterior.shape == (3, 2, 3) and result.posterior.dtype == np.float32
    assert np.array_equal(result.posterior[2], truth == 4)


def test_multilabel_on_binary_input_is_binary_staple():
    rng = np.random.default_rng(14)
    truth = _blobs(rng, 1)[0]
    raters = _noisy_raters(truth, (0.9, 0.7, 0.8), (0.95, 0.99, 0.9), rng)
    multi, binary = multilabel_staple(raters), staple(raters)
    np.testing.assert_allclose(multi.posterior[1], binary.posterior, atol=1e-6)
    for r in raters:
        p, q = binary.sensitivity[r], binary.specificity[r]
        np.testing.assert_allclose(multi.confusion[r], [[q, 1 - q], [1 - p, p]], atol=1e-12)
    assert multi.iterations == binary.iterations


def _multilabel_raters(n_raters, seed, errors=(0.05, 0.1, 0.2, 0.3, 0.15)):
    rng = np.random.default_rng(seed)
    truth = np.zeros((40, 40), np.uint8)
    truth[5:25, 5:25] = 1
    truth[20:35, 15:38] = 2
    raters = []
    for err in errors[:n_raters]:
        r = truth.copy()
        flip = rng.random(truth.shape) < err
        r[flip] = rng.integers(0, 3, flip.sum())
        raters.append(r)
    return truth, raters


def _itk_multilabel(raters):
    f = sitk.MultiLabelSTAPLEImageFilter()
    f.SetTerminationUpdateThreshold(1e-10)
    out = sitk.GetArrayFromImage(
        f.Execute([sitk.GetImageFromArray(r.astype(np.uint8)) for r in raters])
    )
    k = int(max(r.max() for r in raters)) + 1
    # ITK's matrices are [rater's label (+1 reject row), true label]: ours are [true, rater's]
    return out, [
        np.array(f.GetConfusionMatrix(i)).reshape(k + 1, k)[:k].T for i in range(len(raters))
    ]


def test_multilabel_agrees_with_simpleitk():
    truth, raters = _multilabel_raters(5, 0)
    labels, confusion = _itk_multilabel(raters)
    result = multilabel_staple(raters, tol=1e-10, max_iter=500)
    assert np.array_equal(result.labels, labels)
    for i in range(5):
        np.testing.assert_allclose(result.confusion[str(i)], confusion[i], atol=1e-6)
    assert np.count_nonzero(result.labels != truth) < 40


def test_multilabel_where_simpleitk_differs():
    # two raters: the seed majority vote ties wherever they disagree, ITK 5.4 mis-seeds those
    # (issue #6575 B10) and labels exact posterior ties "undecided" (max label + 1)
    _, raters = _multilabel_raters(2, 1)
    labels, _ = _itk_multilabel(raters)
    ours = multilabel_staple(raters).labels
    assert np.count_nonzero(labels != ours) > 0
    a, b = np.array([[1, 1, 0, 2]]), np.array([[1, 2, 0, 2]])
    labels, _ = _itk_multilabel([a, b])
    result = multilabel_staple([a, b])
    assert labels.tolist() == [[1, 3, 0, 2]]  # 3: ITK's undecided label
    assert result.posterior[1:, 0, 1].tolist() == [0.5, 0.5]  # an exact tie: the lowest class
    assert result.labels.tolist() == [[1, 1, 0, 2]]


def test_multilabel_recovers_confusion():
    rng = np.random.default_rng(15)
    truth = rng.integers(0, 3, size=(120, 120))
    confusion = {
        "good": np.array([[0.95, 0.03, 0.02], [0.02, 0.96, 0.02], [0.01, 0.04, 0.95]]),
        "fair": np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]]),
        "poor": np.array([[0.7, 0.2, 0.1], [0.15, 0.7, 0.15], [0.2, 0.1, 0.7]]),
    }
    raters = {}
    for rater, matrix in confusion.items():
        cumulative = matrix.cumsum(axis=1)[truth]
        raters[rater] = (rng.random(truth.shape)[..., None] > cumulative).sum(axis=-1)
    result = multilabel_staple(raters)
    for rater, matrix in confusion.items():
        np.testing.assert_allclose(result.confusion[rater], matrix, atol=0.03)
    assert result.prior == pytest.approx([1 / 3] * 3, abs=0.03)


def test_multilabel_errors():
    with pytest.raises(InvalidArgumentError, match="at least 2 raters"):
        multilabel_staple([[[0, 1, 2]]])
    with pytest.raises(InvalidArgumentError, match="sum to 1"):
        multilabel_staple([[[0, 1, 2]], [[0, 1, 1]]], prior=[0.5, 0.5, 0.5])
    with pytest.raises(InvalidArgumentError, match="one probability per class \\[0, 1, 2\\]"):
        multilabel_staple([[[0, 1, 2]], [[0, 1, 1]]], prior={0: 0.5, 1: 0.5})
    with pytest.raises(InvalidArgumentError, match="3 probabilities > 0"):
        multilabel_staple([[[0, 1, 2]], [[0, 1, 1]]], prior=[1.0, 0.0, 0.0])
    given = multilabel_staple([[[0, 1, 2]], [[0, 1, 1]]], prior={0: 0.2, 1: 0.5, 2: 0.3})
    assert given.prior.tolist() == [0.2, 0.5, 0.3]


# --------------------------------------------------------------------------- real data


@pytest.mark.shared_data
@needs_shared(*QUBIQ)
def test_qubiq_pooled_is_fast_and_per_case_agrees_with_simpleitk():
    masks = np.load(shared(*QUBIQ))["masks"]  # (39 cases, 7 raters, 128, 128)
    cases = [{f"rater{r + 1}": masks[c, r] for r in range(7)} for c in range(len(masks))]
    start = time.perf_counter()
    pooled = staple_cases(cases)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, elapsed
    assert pooled.converged and len(pooled.posteriors) == 39
    assert all(0.8 < p < 0.95 for p in pooled.sensitivity.values()), pooled.sensitivity
    for c in (0, 17, 38):
        posterior, p, q, _ = _itk_staple(masks[c])
        result = staple(cases[c])
        np.testing.assert_allclose(result.posterior, posterior, atol=1e-6)
        np.testing.assert_allclose(list(result.sensitivity.values()), p, atol=1e-9)
        np.testing.assert_allclose(list(result.specificity.values()), q, atol=1e-9)


@pytest.mark.shared_data
@needs_shared(*DRIVE)
def test_drive_two_raters_fast_and_agrees_with_simpleitk():
    from PIL import Image

    def read(*parts):
        with Image.open(shared(*DRIVE, *parts)) as image:
            return np.array(image) > 0  # the first rater and the mask are 0/255 on file

    first, second = read("1st_manual", "01_manual1.gif"), read("2nd_manual", "01_manual2.gif")
    fov = read("mask", "01_test_mask.gif")
    start = time.perf_counter()
    result = staple({"1st": first, "2nd": second})
    inside = staple({"1st": first, "2nd": second}, region=fov)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, elapsed
    posterior, p, q, _ = _itk_staple([first, second])
    np.testing.assert_allclose(result.posterior, posterior, atol=1e-6)
    np.testing.assert_allclose(list(result.sensitivity.values()), p, atol=1e-9)
    np.testing.assert_allclose(list(result.specificity.values()), q, atol=1e-9)
    assert not inside.posterior[~fov].any()
    assert inside.prior > result.prior  # vessels are a larger share of the field of view


# ------------------------------------------------------------------ EM on the disputed voxels
def _disc_mask(radius, shape=(64, 64), centre=(32, 32)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_disputed_only_keeps_unanimous_voxels_and_runs_em_on_the_rest():
    a = np.array([[1, 1, 1, 0, 0]])
    b = np.array([[1, 1, 0, 0, 0]])
    c = np.array([[1, 0, 0, 0, 1]])
    full = staple({"a": a, "b": b, "c": c}, disputed_only=True)
    # voxel 0: everyone says 1 -> 1; voxel 3: nobody -> 0; EM sees voxels 1, 2 and 4 only
    assert full.posterior[0, 0] == 1.0 and full.posterior[0, 3] == 0.0
    inside = staple({"a": a, "b": b, "c": c}, region=np.array([[0, 1, 1, 0, 1]], bool))
    assert np.allclose(full.posterior[0, [1, 2, 4]], inside.posterior[0, [1, 2, 4]])
    assert full.sensitivity == pytest.approx(inside.sensitivity)
    pooled = staple_cases([{"a": a, "b": b, "c": c}], disputed_only=True)
    assert np.allclose(pooled.posteriors[0], full.posterior)


def test_disputed_only_when_everyone_agrees():
    mask = _disc_mask(5, (16, 16), (8, 8))
    result = staple({"a": mask, "b": mask}, disputed_only=True)
    assert np.array_equal(result.posterior, mask.astype(np.float32))
    assert result.sensitivity == {"a": 1.0, "b": 1.0} and result.iterations == 0
    pooled = staple_cases([{"a": mask, "b": mask}, {"a": mask}], disputed_only=True)
    assert [np.array_equal(p, mask) for p in pooled.posteriors] == [True, True]


def test_disputed_only_against_classic_staple_on_two_shapes():
    """The trade-off the module docstring states, on six simulated raters (grown by -2, -1,
    +1, +2 pixels, one missing 15 %, one shifted 2 pixels): on QUBIQ's thin brain-growth
    masks the disputed consensus is the closer one; on a disc the classic one is."""
    from segloop.fusion.boundary import signed_surface_distance
    from segloop.simulate import simulated_raters

    specs = {"g-2": {"grow_mm": -2}, "g-1": {"grow_mm": -1}, "g+1": {"grow_mm": 1},
             "g+2": {"grow_mm": 2}, "miss": {"miss": 0.15}, "shift": {"shift_mm": (0, 2)}}
    disc = _disc_mask(24, (96, 96), (48, 48))
    raters = simulated_raters(disc, specs, seed=0)
    classic = signed_surface_distance(staple(raters).posterior > 0.5, disc)
    disputed = signed_surface_distance(staple(raters, disputed_only=True).posterior > 0.5, disc)
    assert classic == pytest.approx(0.39, abs=0.05) and disputed == pytest.approx(-0.91, abs=0.05)
    path = shared(*QUBIQ)
    if not path.is_file():
        pytest.skip("shared QUBIQ data not present")
    masks = np.load(path)["masks"][:12, 0].astype(bool)
    gaps = {"classic": [], "disputed": []}
    for i, truth in enumerate(masks):
        raters = simulated_raters(truth, specs, seed=i)
        gaps["classic"].append(signed_surface_distance(staple(raters).posterior > 0.5, truth))
        gaps["disputed"].append(signed_surface_distance(
            staple(raters, disputed_only=True).posterior > 0.5, truth))
    assert np.mean(gaps["classic"]) > 0.7  # outwards, towards the widest raters
    assert abs(np.mean(gaps["disputed"])) < 0.3
