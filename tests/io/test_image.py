import numpy as np
import pytest

from segloop.errors import InvalidArgumentError, InvalidImageError
from segloop.io import Image
from segloop.io.image import default_direction


def test_defaults_give_identity_geometry():
    img = Image(np.zeros((4, 5, 6), np.float32))
    assert img.spacing == (1.0, 1.0, 1.0)
    assert img.origin == (0.0, 0.0, 0.0)
    assert img.orientation == "LPS"
    # array axis 2 (x) runs along world x, axis 0 (z) along world z
    np.testing.assert_array_equal(img.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])


def test_index_world_round_trip_with_anisotropic_spacing_and_rotation():
    theta = np.deg2rad(30)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                    [0, 0, 1]])
    img = Image(np.zeros((3, 4, 5)), spacing=(5.0, 0.5, 0.25), origin=(10, -20, 30),
                direction=rot @ default_direction(3))
    idx = np.array([2.0, 3.0, 4.0])
    world = img.index_to_world(idx)
    np.testing.assert_allclose(img.world_to_index(world), idx, atol=1e-12)
    # voxel (0, 0, 1) is one x-step (0.25 mm along the rotated x axis) from the origin
    np.testing.assert_allclose(img.index_to_world((0, 0, 1)) - img.origin,
                               [0.25 * np.cos(theta), 0.25 * np.sin(theta), 0], atol=1e-12)
    np.testing.assert_allclose(img.affine[:3, 3], (10, -20, 30))


def test_label_from_float_binary_becomes_uint8():
    lab = Image(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), kind="label")
    assert lab.array.dtype == np.uint8
    assert lab.label_values() == [0, 1]


def test_label_large_values_pick_wider_dtype():
    lab = Image(np.array([[0, 300]], np.float64), kind="label")
    assert lab.array.dtype == np.uint16
    neg = Image(np.array([[0, -3]], np.int64), kind="label")
    assert neg.label_values() == [-3, 0]


def test_label_rejects_fractional_values():
    with pytest.raises(InvalidImageError, match=r"non-integer values \(e.g. 0.5\)"):
        Image(np.array([[0.0, 0.5]]), kind="label")


def test_label_rejects_nan():
    with pytest.raises(InvalidImageError, match="1 NaN/Inf voxels"):
        Image(np.array([[0.0, np.nan]]), kind="label")


def test_soft_label_range_checked():
    Image(np.array([[0.0, 0.25, 1.0]]), kind="soft")
    with pytest.raises(InvalidImageError, match=r"\[0, 1\]"):
        Image(np.array([[0.0, 1.5]]), kind="soft")


def test_channels_axis_is_not_spatial():
    rgb = Image(np.zeros((10, 12, 3), np.uint8), channels=True, spacing=(0.5, 0.25))
    assert rgb.shape == (10, 12)
    assert rgb.spatial_ndim == 2
    assert rgb.n_channels == 3
    with pytest.raises(InvalidImageError, match="cannot have a channel axis"):
        Image(np.zeros((4, 4, 3), np.uint8), kind="label", channels=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "mask"}, "kind must be one of"),
        ({"spacing": (1.0, 0.0)}, "spacing must be positive"),
        ({"spacing": (1.0,)}, "spacing must have 2 values"),
        ({"origin": (0.0, np.inf)}, "origin must be finite"),
        ({"direction": np.zeros((2, 2))}, "singular"),
    ],
)
def test_bad_geometry_arguments(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        Image(np.zeros((2, 2)), **kwargs)


def test_wrong_dimensionality():
    with pytest.raises(InvalidImageError, match=r"2D or 3D array, got shape \(5,\)"):
        Image(np.zeros(5))
    with pytest.raises(InvalidImageError, match="2D or 3D"):
        Image(np.zeros((2, 2, 2, 2)))


def test_with_array_keeps_geometry_and_copy_is_deep():
    img = Image(np.ones((2, 3)), spacing=(2.0, 3.0), origin=(1.0, 2.0), metadata={"a": 1})
    other = img.with_array(np.zeros((2, 3), np.uint8), kind="label")
    assert other.spacing == img.spacing and other.origin == img.origin
    assert other.metadata == {"a": 1} and other.metadata is not img.metadata
    dup = img.copy()
    dup.array[0, 0] = 5
    assert img.array[0, 0] == 1


def test_nonfinite_count():
    assert Image(np.array([[np.nan, np.inf, 1.0]])).nonfinite_count() == 2
    assert Image(np.array([[1, 2]], np.int16)).nonfinite_count() == 0
