import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.fusion import check_raters
from segloop.fusion._checks import check_region, check_weights, present_labels


def test_mapping_keeps_ids_and_order():
    ids, stack = check_raters({"zed": [[0, 1]], "amy": [[2, 0]]})
    assert ids == ["zed", "amy"]
    assert stack.dtype == np.uint8
    assert stack.tolist() == [[[0, 1]], [[2, 0]]]


def test_sequence_gets_positional_ids():
    ids, stack = check_raters([np.zeros((2, 2)), np.ones((2, 2))])
    assert ids == ["0", "1"]
    assert stack.shape == (2, 2, 2)


def test_stacked_array_is_raters_on_first_axis():
    ids, stack = check_raters(np.zeros((3, 4, 5, 6), np.uint8))
    assert ids == ["0", "1", "2"]
    assert stack.shape == (3, 4, 5, 6)


def test_bool_and_whole_floats_accepted():
    ids, stack = check_raters(
        {"a": np.array([True, False]), "b": np.array([1.0, 0.0])}, binary=True
    )
    assert stack.tolist() == [[1, 0], [1, 0]]


def test_dtype_grows_with_labels():
    assert check_raters([[[0, 300]], [[1, 2]]])[1].dtype == np.uint16
    assert check_raters([[[0, 70000]], [[1, 2]]])[1].dtype == np.uint32


def test_present_labels():
    _, stack = check_raters([[[0, 5, 5]], [[7, 0, 5]]])
    assert present_labels(stack).tolist() == [0, 5, 7]


def test_empty_rater_set():
    with pytest.raises(InvalidArgumentError, match="empty"):
        check_raters({})
    with pytest.raises(InvalidArgumentError, match="empty"):
        check_raters([])


def test_shapes_differ_names_every_rater():
    with pytest.raises(InvalidArgumentError) as err:
        check_raters({"ann": np.zeros((4, 4)), "bob": np.zeros((3, 4))})
    msg = str(err.value)
    assert "'ann' (4, 4)" in msg and "'bob' (3, 4)" in msg


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[0.5, 1.0]]), "non-integer"),
        (np.array([[0, -1]]), "negative"),
        (np.array([["a", "b"]]), "integer labels"),
        (np.zeros((0, 3)), "empty"),
        (np.zeros((2, 2, 2, 2)), "2D or 3D"),
        (np.array(1), "2D or 3D"),
    ],
)
def test_bad_values_name_the_rater(value, match):
    with pytest.raises(InvalidArgumentError, match=match) as err:
        check_raters({"carol": value, "ok": np.zeros((2, 2), np.uint8)})
    assert "'carol'" in str(err.value)


def test_non_binary_says_how_to_pick_a_class():
    with pytest.raises(InvalidArgumentError) as err:
        check_raters({"a": [[0, 1]], "b": [[0, 255]]}, binary=True)
    msg = str(err.value)
    assert "'b'" in msg and "[0, 255]" in msg and "== k" in msg


def test_not_a_collection():
    with pytest.raises(InvalidArgumentError, match="mapping"):
        check_raters("masks")
    with pytest.raises(InvalidArgumentError, match="first axis"):
        check_raters(np.zeros(5))


def test_duplicate_ids_after_str():
    with pytest.raises(InvalidArgumentError, match="repeat"):
        check_raters({1: [[0]], "1": [[1]]})


def test_region_checks():
    assert check_region(None, (2, 2)) is None
    assert check_region([[1, 0], [0, 0]], (2, 2)).tolist() == [[True, False], [False, False]]
    with pytest.raises(InvalidArgumentError, match="shape"):
        check_region(np.ones((3, 2)), (2, 2))
    with pytest.raises(InvalidArgumentError, match="empty"):
        check_region(np.zeros((2, 2)), (2, 2))


def test_weights_checks():
    ids = ["a", "b"]
    assert check_weights({"b": 2, "a": 1}, ids).tolist() == [1.0, 2.0]
    assert check_weights([0.5, 0], ids).tolist() == [0.5, 0.0]
    with pytest.raises(InvalidArgumentError, match="3 values but there are 2 raters"):
        check_weights([1, 2, 3], ids)
    with pytest.raises(InvalidArgumentError, match="'b'.*>= 0"):
        check_weights([1, -2], ids)
    with pytest.raises(InvalidArgumentError, match="'a'"):
        check_weights([float("nan"), 1], ids)
    with pytest.raises(InvalidArgumentError, match=r"missing \['b'\], unknown \['c'\]"):
        check_weights({"a": 1, "c": 1}, ids)
    with pytest.raises(InvalidArgumentError, match="all zero"):
        check_weights([0, 0], ids)
