import numpy as np
import pytest

from conftest import needs_shared, shared
from segloop.data import ball, disk
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.tools import get_tool
from segloop.tools.brush import brush, stroke_mask


def capsule(shape, p0, p1, radius, spacing):
    """Brute force: voxel centres within ``radius`` of segment p0-p1, physical units."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1) * spacing
    a, b = np.asarray(p0) * spacing, np.asarray(p1) * spacing
    t = np.clip(((grid - a) @ (b - a)) / max((b - a) @ (b - a), 1e-12), 0, 1)
    return np.linalg.norm(grid - a - t[..., None] * (b - a), axis=-1) <= radius


def test_disc_of_radius_r_mm_on_anisotropic_pixels_has_the_exact_count():
    # radius 3 mm with pixels 1.5 mm tall and 1 mm wide: rows -2..2, half-widths 0, 2, 2, 2, 0
    out = stroke_mask((11, 11), [5, 5], radius_mm=3.0, spacing=(1.5, 1.0))
    assert out.sum() == 1 + 5 + 7 + 5 + 1 == 19
    assert np.array_equal(out, disk((11, 11), (5, 5), 3.0, spacing=(1.5, 1.0)))


def test_sphere_matches_the_ball_phantom():
    sp = (2.0, 1.0, 0.5)
    out = stroke_mask((9, 15, 25), [4, 7, 12], radius_mm=3.5, spacing=sp)
    assert np.array_equal(out, ball((9, 15, 25), (4, 7, 12), 3.5, spacing=sp))


def test_a_fast_stroke_leaves_no_gap_between_far_apart_samples():
    sp = np.array([1.0, 0.7])
    out = stroke_mask((20, 40), [[3, 2], [15, 35]], radius_mm=1.5, spacing=sp)
    assert np.array_equal(out, capsule((20, 40), (3, 2), (15, 35), 1.5, sp))
    # a thin brush still connects the two ends
    thin = stroke_mask((20, 40), [[3, 2], [15, 35]], radius_mm=0.5, spacing=(1.0, 1.0))
    from scipy import ndimage as ndi
    assert ndi.label(thin, np.ones((3, 3)))[1] == 1


def test_polyline_is_the_union_of_its_segments_in_3d():
    pts = [[1, 1, 1], [6, 8, 3], [2, 12, 10]]
    sp = np.array([1.5, 1.0, 1.0])
    expected = capsule((8, 14, 12), pts[0], pts[1], 2.0, sp) | capsule((8, 14, 12), pts[1],
                                                                       pts[2], 2.0, sp)
    assert np.array_equal(stroke_mask((8, 14, 12), pts, radius_mm=2.0, spacing=sp), expected)


def test_brush_writes_value_and_eraser_clears_any_label():
    lab = np.zeros((7, 7), np.uint8)
    lab[0, 0] = 4
    painted = brush(lab, [[3, 1], [3, 5]], radius_mm=1.0, value=2)
    assert (painted == 2).sum() == 5 + 2 * 5 + 2 and painted[0, 0] == 4 and lab.sum() == 4
    erased = brush(painted, [[0, 0], [3, 3]], radius_mm=1.0, erase=True)
    assert erased[0, 0] == 0 and erased[3, 3] == 0 and erased[3, 5] == 2


def test_value_beyond_uint8_widens_the_label_type():
    out = brush(np.zeros((3, 3), np.uint8), [1, 1], radius_mm=0.5, value=300)
    assert out.dtype == np.int32 and out[1, 1] == 300


def test_axis_paints_a_disc_on_one_slice_of_a_volume():
    vol = np.zeros((5, 9, 9), np.uint8)
    out = brush(vol, [[2, 4, 2], [2, 4, 6]], radius_mm=2.0, axis=0, spacing=(3.0, 1.0, 1.0))
    assert out[[0, 1, 3, 4]].sum() == 0
    assert np.array_equal(out[2] > 0, capsule((9, 9), (4, 2), (4, 6), 2.0, np.ones(2)))
    side = brush(vol, [[1, 3, 4], [3, 3, 4]], radius_mm=1.0, axis=1)
    assert side[:, 3].sum() == 3 + 3 * 2 + 2 and side.sum() == side[:, 3].sum()  # a capsule


def test_spec_starts_from_an_empty_label_and_accepts_colour_images():
    spec = get_tool("brush")
    out = spec.apply(np.zeros((5, 5, 3)), None, spacing=(1.0, 1.0), points=[[2, 2]],
                     radius_mm=1.0, channel_axis=-1)
    assert out.shape == (5, 5) and out.sum() == 5
    assert spec.required == ("points", "radius_mm")


@needs_shared("spinalcord_sct")
def test_brush_on_a_real_label_map_keeps_its_grid_and_other_labels():
    case = next(c for c in open_dataset(shared("spinalcord_sct")).cases if c.id == "t2")
    label = case.read_label()
    arr = label.array
    centre = np.argwhere(arr > 0).mean(axis=0)
    out = brush(arr, centre, radius_mm=2.0, value=7, spacing=label.spacing)
    expected = ball(arr.shape, centre, 2.0, spacing=label.spacing)
    assert np.array_equal(out == 7, expected)
    assert np.array_equal(out[~expected], arr[~expected])


@pytest.mark.parametrize(("points", "kwargs", "message"), [
    ([[9, 9]], {"radius_mm": 1}, r"points has a point \[9.0, 9.0\] outside the image"),
    ([], {"radius_mm": 1}, "points must be one or more points"),
    ([[1, 1]], {"radius_mm": 0}, "radius_mm must be a number in"),
    ([[1, 1]], {"radius_mm": 1, "value": -1}, "value must be a non-negative integer"),
    ([[1, 1]], {"radius_mm": 1, "spacing": (0.0, 1.0)}, "spacing must be 2 positive"),
    ([[1, 1]], {"radius_mm": 1, "axis": 0}, "axis=0 goes with a 3D array, got a 2D one"),
])
def test_bad_arguments_are_named(points, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        brush(np.zeros((4, 4), np.uint8), points, **kwargs)


def test_bad_label_maps_and_slices_are_refused():
    with pytest.raises(InvalidArgumentError, match="every point of points must lie on one slice"):
        brush(np.zeros((3, 4, 4), np.uint8), [[0, 1, 1], [2, 1, 1]], radius_mm=1, axis=0)
    with pytest.raises(InvalidArgumentError, match="label must hold whole numbers"):
        brush(np.full((3, 3), 0.5), [1, 1], radius_mm=1)
    with pytest.raises(InvalidArgumentError, match="2D or 3D"):
        brush(np.zeros((2, 2, 2, 2), np.uint8), [1, 1, 1, 1], radius_mm=1)


@pytest.mark.parametrize("shape", ["ab", (2, 2, 2, 2), (4, 0), (4.0, 4), (True, 4), 5])
def test_stroke_mask_refuses_a_bad_shape(shape):
    with pytest.raises(InvalidArgumentError, match="shape must be 2D or 3D"):
        stroke_mask(shape, [[0, 0]], radius_mm=1)


@pytest.mark.parametrize("erase", ["no", 0, None])
def test_erase_must_be_a_real_bool(erase):
    lab = np.ones((4, 4), np.uint8)
    with pytest.raises(InvalidArgumentError, match=f"erase must be true or false, got "
                                                   f"erase={erase!r}"):
        brush(lab, [1, 1], radius_mm=1, erase=erase)
    with pytest.raises(InvalidArgumentError, match="erase must be true or false"):
        get_tool("brush").apply(None, lab, spacing=None, points=[1, 1], radius_mm=1, erase=erase)


def test_points_must_be_numbers():
    with pytest.raises(InvalidArgumentError, match="points must be one or more points"):
        brush(np.zeros((4, 4), np.uint8), [["1", "2"]], radius_mm=1)
    with pytest.raises(InvalidArgumentError, match="points must be one or more points"):
        brush(np.zeros((4, 4), np.uint8), [[True, False]], radius_mm=1)


def test_spec_refuses_a_bad_channel_axis():
    with pytest.raises(InvalidArgumentError, match="channel_axis=True is not an axis"):
        get_tool("brush").apply(np.zeros((5, 5, 3)), None, spacing=None, points=[[2, 2]],
                                radius_mm=1.0, channel_axis=True)
