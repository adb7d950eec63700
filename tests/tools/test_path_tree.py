import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.tools.path_tree import PathTree, check_anchors, check_bool, check_encloses, write_label


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
    for bad in (5, "[[1, 1], [2, 2]]", {"a": 1}):
        with pytest.raises(InvalidArgumentError, match="anchors must be a list of points"):
            check_anchors(bad, (3, 3), closed=False)


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


def test_check_anchors_wants_distinct_points_and_a_real_bool():
    with pytest.raises(InvalidArgumentError, match=r"anchors\[0\] and anchors\[2\] are the same "
                                                   r"pixel \[1, 1\]: anchors must be distinct"):
        check_anchors([(1, 1), (2, 2), (1.3, 0.8)], (3, 3), closed=True)
    with pytest.raises(InvalidArgumentError, match=r"anchors\[0\] and anchors\[1\]"):
        check_anchors([(1, 1), (1, 1)], (3, 3), closed=False)
    for closed in ("no", 1, None):
        with pytest.raises(InvalidArgumentError, match=r"closed must be true or false, got "):
            check_anchors([(0, 0), (1, 1), (2, 2)], (3, 3), closed=closed)
    assert check_bool(np.bool_(True), "closed") is True


def square(n):
    """The 8-connected outline of an n x n pixel square, from (0, 0)."""
    top = [(0, x) for x in range(n)]
    right = [(y, n - 1) for y in range(1, n)]
    bottom = [(n - 1, x) for x in range(n - 2, -1, -1)]
    left = [(y, 0) for y in range(n - 2, 0, -1)]
    return np.array(top + right + bottom + left)


def test_check_encloses_sets_the_interior_rule():
    assert check_encloses(square(4), (6, 6)).sum() == 16  # 4 inside, 12 on the outline
    with pytest.raises(InvalidArgumentError, match="encloses no area: 1 pixels inside its "
                                                   "8-pixel outline"):
        check_encloses(square(3), (6, 6))
    there_and_back = np.array([(2, x) for x in range(8)] + [(2, x) for x in range(6, 0, -1)])
    with pytest.raises(InvalidArgumentError, match=r"through anchors \[\[2, 0\], \[2, 7\]\] "
                                                   "encloses no area: 0 pixels"):
        check_encloses(there_and_back, (6, 9), [(2, 0), (2, 7)])
    with pytest.raises(InvalidArgumentError, match="encloses no area"):
        check_encloses(np.array([(1, 1), (1, 2)]), (4, 4))


@pytest.mark.parametrize("seed", [0, 1])
def test_extended_tree_and_spliced_paths_match_pointer_chasing(seed):
    shape = (23, 29)
    n = int(np.prod(shape))
    pred, root = random_tree(n, seed)
    depth = np.zeros(n, int)  # a node's depth: nodes of depth <= d form a partial tree
    for node in range(n):
        depth[node] = len(walk(pred, node)) - 1
    part = np.where(depth <= 40, pred, np.arange(n))
    root_yx = np.unravel_index(root, shape)
    tree = PathTree(part, shape, reach=40.0, complete=False, root=root_yx)
    rng = np.random.default_rng(seed + 20)
    near = [int(v) for v in rng.choice(np.flatnonzero(depth <= 40), 10)]
    for node in near:
        assert tree.path(np.unravel_index(node, shape)).shape[0] == depth[node] + 1
    new = np.flatnonzero(depth > 40)
    tree.extend(new, pred[new], reach=None, complete=True)
    assert tree.reach is None and tree.complete
    order = list(rng.integers(0, n, 30)) + [int(pred[pred[v]]) for v in rng.integers(0, n, 30)]
    for node in order:  # far jumps and moves along branches (spliced onto the last path)
        expected = np.stack(np.unravel_index(walk(pred, int(node)), shape), axis=1)
        got = tree.path(np.unravel_index(int(node), shape))
        np.testing.assert_array_equal(got, expected)
        got[:] = -1  # callers own what they get: the remembered path is not theirs
    np.testing.assert_array_equal(tree.path(np.unravel_index(root, shape)), [root_yx])
