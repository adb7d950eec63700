"""segloop.tools.apply: a tool by name on an Image, whole or on one slice of a volume."""

import numpy as np
import pytest

from segloop.errors import InvalidArgumentError
from segloop.io import Image
from segloop.tools.apply import apply_tool, compact_labels, slice_plane


@pytest.fixture
def volume():
    array = np.zeros((4, 6, 5), np.float32)
    array[1:3, 1:4, 1:4] = 10.0
    return Image(array, spacing=(3.0, 2.0, 1.0))


def test_whole_image_and_compact_dtype():
    img = Image(np.array([[0, 0, 9, 9], [0, 0, 9, 9]], np.float32))
    out = apply_tool("threshold", img, None, {"low": 5, "value": 300})
    assert out.dtype == np.uint16 and out.tolist() == [[0, 0, 300, 300], [0, 0, 300, 300]]


def test_volume_whole_and_one_slice(volume):
    whole = apply_tool("threshold", volume, None, {"low": 5})
    assert whole.dtype == np.uint8 and int(whole.sum()) == 18
    assert np.array_equal(whole > 0, volume.array > 5)
    one = apply_tool("threshold", volume, None, {"low": 5}, slice=(0, 1))
    assert one.shape == (4, 6, 5) and int(one[1].sum()) == 9 and int(one.sum()) == 9
    across_x = apply_tool("threshold", volume, None, {"low": 5}, slice=(2, 2))
    assert np.array_equal(across_x[:, :, 2], volume.array[:, :, 2] > 5)
    assert int(across_x.sum()) == 6


def test_slice_keeps_the_label_elsewhere_and_passes_the_slice_spacing(volume):
    label = np.zeros(volume.shape, np.uint8)
    label[0, 0, 0] = 7
    label[1, 5, 4] = 2  # in the slice, outside the painted disc: kept by brush
    out = apply_tool("brush", volume, label, {"points": [2, 2], "radius_mm": 2.0},
                     slice=(0, 1))
    assert out[0, 0, 0] == 7 and out[1, 5, 4] == 2
    # spacing of the slice (2.0, 1.0): a 2 mm radius is 1 pixel along y, 2 along x
    assert out[1].tolist()[2] == [1, 1, 1, 1, 1] and out[1, 1, 2] == 1 and out[1, 0, 2] == 0
    assert int((out[1] == 1).sum()) == 7  # the ellipse (y/1)² + (x/2)² <= 1


def test_colour_images_get_a_channel_axis():
    rgb = np.zeros((5, 5, 3), np.uint8)
    rgb[1:3, 1:3] = (200, 100, 0)  # mean 100
    out = apply_tool("threshold", Image(rgb, channels=True), None, {"low": 50})
    assert out.shape == (5, 5) and int(out.sum()) == 4


def test_interpolate_a_volume(volume):
    label = np.zeros(volume.shape, np.uint8)
    label[0, 1:5, 1:4] = 1
    label[3, 1:5, 1:4] = 1
    out = apply_tool("interpolate", volume, label, {})
    assert all(np.array_equal(out[z], label[0]) for z in range(4))


def test_slice_plane(volume):
    plane, spacing = slice_plane(volume, 1, 2)
    assert plane.shape == (4, 5) and spacing == (3.0, 1.0)
    assert np.array_equal(plane, volume.array[:, 2, :])


@pytest.mark.parametrize(
    ("tool", "params", "slice", "label", "message"),
    [
        ("livewire", {"anchors": [[1, 1], [1, 3], [3, 3]]}, None, None,
         "works on 2D images and this image is 3D; pick a slice"),
        ("threshold", {"low": 1}, (0, 4), None, "slice index 4 on axis 0 (z) is outside 0..3"),
        ("threshold", {"low": 1}, (3, 0), None, "slice axis 3: expected 0 (z), 1 (y) or 2 (x)"),
        ("threshold", {"low": 1}, (0, 1.5), None, "slice index must be an integer"),
        ("threshold", {"low": 1}, 7, None, "slice must be (axis, index)"),
        ("interpolate", {}, (0, 1), "zeros", "does not work on a single slice"),
        ("islands", {"operation": "keep_largest"}, None, None, "edits a label map"),
        ("islands", {"operation": "keep_largest"}, None, "small", "label has shape [2, 2]"),
        ("threshold", {"bogus": 1}, None, None, "has no parameter 'bogus'"),
        ("nope", {}, None, None, "unknown tool 'nope'"),
    ],
)
def test_errors_name_the_problem(volume, tool, params, slice, label, message):
    label = {"zeros": np.zeros(volume.shape, np.uint8), "small": np.zeros((2, 2), np.uint8),
             None: None}[label]
    with pytest.raises(InvalidArgumentError, match=None) as err:
        apply_tool(tool, volume, label, params, slice=slice)
    assert message in str(err.value)


def test_a_slice_of_a_2d_image_is_refused():
    with pytest.raises(InvalidArgumentError, match="only a volume has slices"):
        apply_tool("threshold", Image(np.zeros((3, 3))), None, {"low": 1}, slice=(0, 0))


def test_compact_labels():
    assert compact_labels(np.array([True, False])).dtype == np.uint8
    assert compact_labels(np.array([0, -2])).dtype == np.int16
    assert compact_labels(np.array([0, 70000])).dtype == np.int32
    assert compact_labels(np.zeros(0, np.int64)).dtype == np.uint8
