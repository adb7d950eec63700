import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.tools.path_tree import PathTree, check_anchors, write_label


def walk(pred, node):
    """The path to the root by plain pointer chasing (the reference)."""
    chain = [node]
    while pred[chain[-1]] != chain[-1]:
        chain.append(int(pred[chain[-1]]))
    return chain[::-1]


def random_tree(n, seed):
    """A random tree over n nodes rooted at a random node (each node's parent came before)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    pred = np.empty(n, dtype=np.int64)
    pred[order[0]] = order[0]
    for i in range(1, n):  # mostly chains (long paths), sometimes branches
        pred[order[i]] = order[i - 1] if rng.random() < 0.9 else order[rng.integers(0, i)]
    return pred, int(order[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_list_doubling_matches_pointer_chasing(seed):
    shape = (23, 29)
    pred, root = random_tree(np.prod(shape), seed)
    tree = PathTree(pred, shape)
    for node in np.random.default_rng(seed + 10).integers(0, pred.size, 40):
        expected = np.stack(np.unravel_index(walk(pred, int(node)), shape), axis=1)
        got = tree.path(np.unravel_index(int(node), shape))
        np.testing.assert_array_equal(got, expected)
        assert np.ravel_multi_index(tuple(got[0]), shape) == root


def test_root_and_chain_lengths_at_powers_of_two():
    for n in (1, 2, 3, 4, 5, 8, 9, 17):
        pred = np.maximum(np.arange(n) - 1, 0)  # chain n-1 -> ... -> 0
        tree = PathTree(pred, (1, n))
        assert tree.path((0, n - 1))[:, 1].tolist() == list(range(n))
        assert tree.path((0, 0)).tolist() == [[0, 0]]


def test_partial_tree_returns_the_lone_pixel_outside():
    pred = np.array([0, 0, 1, 3, 4, 4])  # 3 and 5 are not reached (3 points to itself)
    pred[5] = 5
    tree = PathTree(pred, (2, 3), reach=2.0, complete=False)
    assert tree.path((0, 2)).tolist() == [[0, 0], [0, 1], [0, 2]]
    assert tree.path((1, 0)).tolist() == [[1, 0]]
    assert tree.reach == 2.0 and not tree.complete


def test_check_anchors_counts_and_names_the_bad_one():
    assert check_anchors([(0, 0), (1, 1), (2, 2)], (3, 3), closed=True) == [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(InvalidArgumentError, match="closed contour needs at least 3 anchors"):
        check_anchors([(0, 0), (1, 1)], (3, 3), closed=True)
    with pytest.raises(InvalidArgumentError, match="path needs at least 2 anchors"):
        check_anchors([(0, 0)], (3, 3), closed=False)
    with pytest.raises(InvalidArgumentError, match=r"anchors\[1\]=\(3, 0\) lies outside"):
        check_anchors([(0, 0), (3, 0)], (3, 3), closed=False)
    with pytest.raises(InvalidArgumentError, match="anchors must be a list of points"):
        check_anchors(5, (3, 3), closed=False)


def test_write_label_keeps_other_labels_and_checks_value_and_shape():
    mask = np.array([[True, False], [False, False]])
    assert write_label(mask, None, 2).dtype == np.uint8
    assert write_label(mask, None, 300).dtype == np.int32
    label = np.array([[0, 5], [5, 0]], dtype=np.uint8)
    out = write_label(mask, label, 3)
    assert out.tolist() == [[3, 5], [5, 0]] and label[0, 0] == 0
    with pytest.raises(InvalidArgumentError, match="value must be a positive integer"):
        write_label(mask, None, 0)
    with pytest.raises(InvalidArgumentError, match="value must be a positive integer"):
        write_label(mask, None, True)
    with pytest.raises(InvalidArgumentError, match="value=300 does not fit"):
        write_label(mask, label, 300)
    with pytest.raises(InvalidArgumentError, match=r"label has shape \(3, 2\)"):
        write_label(mask, np.zeros((3, 2), np.uint8), 1)
