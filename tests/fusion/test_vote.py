import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.fusion import majority_vote, rater_weights, weighted_vote

# four binary raters on five voxels: 0, 1, 2, 3 and 4 foreground votes
BINARY = [
    [[0, 1, 1, 1, 1]],
    [[0, 0, 1, 1, 1]],
    [[0, 0, 0, 1, 1]],
    [[0, 0, 0, 0, 1]],
]

# four multi-label raters; per voxel: tie 1/2, tie 0/2, clear 1, four-way tie, clear 3
MULTI = {
    "a": [[1, 0, 1, 0, 3]],
    "b": [[1, 0, 1, 1, 3]],
    "c": [[2, 2, 1, 2, 0]],
    "d": [[2, 2, 2, 3, 1]],
}


@pytest.mark.parametrize(
    ("ties", "expected"),
    [("background", [0, 0, 0, 1, 1]), ("lowest", [0, 0, 0, 1, 1]), ("highest", [0, 0, 1, 1, 1])],
)
def test_binary_ties(ties, expected):
    assert majority_vote(BINARY, ties=ties).tolist() == [expected]


@pytest.mark.parametrize(
    ("ties", "expected"),
    [("background", [0, 0, 1, 0, 3]), ("lowest", [1, 0, 1, 0, 3]), ("highest", [2, 2, 1, 3, 3])],
)
def test_multilabel_ties(ties, expected):
    assert majority_vote(MULTI, ties=ties).tolist() == [expected]


def test_strict_majority_two_of_four_is_background():
    two_of_four = [np.array([[1]]), np.array([[1]]), np.array([[0]]), np.array([[0]])]
    assert majority_vote(two_of_four).tolist() == [[0]]


def test_3d():
    a = np.zeros((2, 2, 2), np.uint8)
    b, c = a.copy(), a.copy()
    a[0, 0, 0] = b[0, 0, 0] = 1  # 2 of 3
    a[1, 1, 1] = 1  # 1 of 3
    a[1, 0, 0], b[1, 0, 0], c[1, 0, 0] = 2, 2, 1  # 2 of 3 for label 2
    expected = np.zeros((2, 2, 2), np.uint8)
    expected[0, 0, 0], expected[1, 0, 0] = 1, 2
    assert np.array_equal(majority_vote({"a": a, "b": b, "c": c}), expected)


def test_one_rater_is_its_own_majority():
    mask = np.array([[0, 3], [1, 0]])
    assert majority_vote([mask]).tolist() == mask.tolist()
    assert weighted_vote([mask]).tolist() == mask.tolist()


def _reference_vote(stack, weights, ties):
    """Per-voxel loop, independent of the vectorised code."""
    out = np.zeros(stack.shape[1:], int)
    for idx in np.ndindex(*stack.shape[1:]):
        votes = {}
        for w, label in zip(weights, stack[(slice(None), *idx)], strict=True):
            votes[int(label)] = votes.get(int(label), 0) + w
        best = max(votes.values())
        tied = sorted(k for k, v in votes.items() if v == best)
        if len(tied) == 1:
            out[idx] = tied[0]
        else:
            out[idx] = {"background": 0, "lowest": tied[0], "highest": tied[-1]}[ties]
    return out


@pytest.mark.parametrize("ties", ["background", "lowest", "highest"])
def test_matches_a_per_voxel_loop(ties):
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 4, size=(6, 7, 9))
    assert np.array_equal(majority_vote(stack, ties=ties), _reference_vote(stack, [1] * 6, ties))
    weights = [3, 1, 1, 2, 2, 1]
    assert np.array_equal(
        weighted_vote(stack, weights, ties=ties), _reference_vote(stack, weights, ties)
    )


WEIGHTED = {"a": [[1, 1, 0, 0, 2]], "b": [[1, 0, 1, 0, 2]], "c": [[0, 0, 1, 1, 1]]}


def test_weighted_by_hand():
    # label sums per voxel: {1: .8, 0: .2}, {1: .5, 0: .5}, {0: .5, 1: .5}, {0: .8, 1: .2},
    # {2: .8, 1: .2}
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    assert weighted_vote(WEIGHTED, weights).tolist() == [[1, 0, 0, 0, 2]]
    assert weighted_vote(WEIGHTED, weights, ties="highest").tolist() == [[1, 1, 1, 0, 2]]
    assert weighted_vote(WEIGHTED, [0.5, 0.3, 0.2]).tolist() == [[1, 0, 0, 0, 2]]


def test_float_sums_that_are_equal_tie():
    raters = [[[1]], [[1]], [[0]]]
    assert weighted_vote(raters, [0.1, 0.2, 0.3]).tolist() == [[0]]
    assert weighted_vote(raters, [0.1, 0.2, 0.3], ties="highest").tolist() == [[1]]


def test_zero_weight_raters_do_not_count():
    assert weighted_vote(WEIGHTED, [1, 0, 0]).tolist() == WEIGHTED["a"]


def test_equal_weights_are_the_majority():
    rng = np.random.default_rng(5)
    stack = rng.integers(0, 3, size=(5, 20, 20))
    for ties in ("background", "lowest", "highest"):
        assert np.array_equal(
            weighted_vote(stack, [2.5] * 5, ties=ties), majority_vote(stack, ties=ties)
        )


def _disk_raters(seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    truth = ((yy - 32) ** 2 + (xx - 30) ** 2 < 18**2).astype(np.uint8)

    def flip(rate):
        return np.where(rng.random(truth.shape) < rate, 1 - truth, truth).astype(np.uint8)

    raters = {
        "good": flip(0.02),
        "bad": flip(0.4),
        "n1": flip(0.25),
        "n2": flip(0.25),
        "n3": flip(0.25),
    }
    return truth, raters


def test_estimated_weights_rank_raters():
    _, raters = _disk_raters(0)
    w = rater_weights(raters)
    assert list(w) == ["good", "bad", "n1", "n2", "n3"]
    assert (
        w["good"] > max(w["n1"], w["n2"], w["n3"]) > min(w["n1"], w["n2"], w["n3"]) > w["bad"] > 0
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimated_weights_beat_majority(seed):
    # one good rater, one bad, three noisy ones that outnumber the good one
    truth, raters = _disk_raters(seed)
    majority_errors = np.count_nonzero(majority_vote(raters) != truth)
    weighted_errors = np.count_nonzero(weighted_vote(raters) != truth)
    assert weighted_errors < 0.6 * majority_errors, (weighted_errors, majority_errors)


def test_weights_by_hand():
    # each of a, b, c is scored against the majority of the other three (the truth): kappa 1,
    # clipped to 0.999; "odd" against the truth: kappa -1, clipped to 0 -> weight 0
    truth = np.array([[0, 1, 1, 0, 1, 0]])
    w = rater_weights({"a": truth, "b": truth, "c": truth, "odd": 1 - truth})
    assert w["odd"] == 0.0
    assert w["a"] == w["b"] == w["c"] == pytest.approx(np.log(1.999 / 0.001))
    # three raters: the reference of each is the AND of the other two (a 1-1 tie is background).
    # c = [1,0,0,0] vs AND(a, b) = [1,1,0,0]: agreement 3/4, chance 1/2, kappa 1/2 -> log 3;
    # a vs AND(b, c) = [1,0,0,0]: the same numbers
    w = rater_weights({"a": [[1, 1, 0, 0]], "b": [[1, 1, 0, 0]], "c": [[1, 0, 0, 0]]})
    assert w == pytest.approx({"a": np.log(3), "b": np.log(3), "c": np.log(3)})


def test_two_raters_weigh_the_same_and_all_chance_falls_back_to_one():
    a, b = np.array([[0, 1, 1, 0]]), np.array([[0, 1, 0, 0]])
    w = rater_weights([a, b])
    assert w["0"] == w["1"] > 0
    assert rater_weights([a, 1 - a]) == {"0": 1.0, "1": 1.0}
    assert rater_weights([a]) == {"0": 1.0}


def test_multilabel_weights():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, size=(30, 30))
    noisy = np.where(rng.random(truth.shape) < 0.3, rng.integers(0, 3, size=truth.shape), truth)
    w = rater_weights({"t1": truth, "t2": truth, "t3": truth, "noisy": noisy})
    assert w["t1"] > w["noisy"] > 0


def test_errors():
    with pytest.raises(
        InvalidArgumentError, match="ties must be one of background, lowest, highest"
    ):
        majority_vote(BINARY, ties="random")
    with pytest.raises(InvalidArgumentError, match="3 values but there are 4 raters"):
        weighted_vote(BINARY, [1, 1, 1])
    with pytest.raises(InvalidArgumentError, match="weight of rater 'c'"):
        weighted_vote(WEIGHTED, {"a": 1, "b": 1, "c": -1})
    with pytest.raises(InvalidArgumentError, match="empty"):
        majority_vote([])
    with pytest.raises(InvalidArgumentError, match="different shapes"):
        weighted_vote({"a": np.zeros((2, 2)), "b": np.zeros((2, 3))}, [1, 1])
