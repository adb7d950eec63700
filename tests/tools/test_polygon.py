import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon
from skimage.measure import approximate_polygon, find_contours

from conftest import needs_shared, shared
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.metrics import dice
from segloop.tools import get_tool
from segloop.tools.polygon import polygon, polygon_mask


def closed_polygon_brute_force(shape, vertices):
    """Pixel centres inside (even-odd) or on an edge of the polygon, one by one."""
    v = np.asarray(vertices, float)
    out = np.zeros(shape, bool)
    for i, j in np.ndindex(*shape):
        inside = on_edge = False
        for (ya, xa), (yb, xb) in zip(v, np.roll(v, -1, axis=0), strict=True):
            cross = (yb - ya) * (j - xa) - (xb - xa) * (i - ya)
            if (abs(cross) < 1e-9 and min(ya, yb) - 1e-9 <= i <= max(ya, yb) + 1e-9
                    and min(xa, xb) - 1e-9 <= j <= max(xa, xb) + 1e-9):
                on_edge = True
            if (ya <= i) != (yb <= i) and xa + (i - ya) * (xb - xa) / (yb - ya) > j:
                inside = not inside
        out[i, j] = inside or on_edge
    return out


def test_a_square_has_exactly_its_16_pixels():
    out = polygon_mask((6, 6), [[1, 1], [1, 4], [4, 4], [4, 1]])
    expected = np.zeros((6, 6), bool)
    expected[1:5, 1:5] = True
    assert np.array_equal(out, expected)


def test_half_pixel_square_holds_the_centres_inside():
    out = polygon_mask((6, 6), [[0.5, 0.5], [0.5, 3.5], [3.5, 3.5], [3.5, 0.5]])
    assert np.array_equal(np.argwhere(out).min(axis=0), [1, 1])
    assert out.sum() == 9


def test_random_polygons_match_a_brute_force_point_in_polygon_test():
    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(3, 8))
        v = rng.integers(0, 10, (n, 2)).astype(float) if trial % 2 else rng.uniform(0, 9, (n, 2))
        area = np.dot(v[:, 0], np.roll(v[:, 1], -1)) - np.dot(v[:, 1], np.roll(v[:, 0], -1))
        if area == 0:
            continue
        expected = closed_polygon_brute_force((10, 10), v)
        if not expected.any():  # a sliver between pixel centres: refused, never an empty mask
            with pytest.raises(InvalidArgumentError, match="enclose no pixel centre"):
                polygon_mask((10, 10), v)
            continue
        assert np.array_equal(polygon_mask((10, 10), v), expected)


def test_the_fill_holds_scikit_image_interior():
    rng = np.random.default_rng(0)
    v = rng.uniform(0, 63, (12, 2))
    inner = np.zeros((64, 64), bool)
    inner[draw_polygon(v[:, 0], v[:, 1], (64, 64))] = True
    out = polygon_mask((64, 64), v)
    assert np.all(out[inner])
    assert (out & ~inner).sum() <= 0.05 * inner.sum()  # only centres on an edge


def test_polygon_on_one_slice_of_a_volume_across_any_axis():
    vol = np.zeros((4, 5, 6), np.uint8)
    vol[0, 0, 0] = 9
    out = polygon(vol, [[0, 1, 1], [0, 1, 4], [3, 1, 4], [3, 1, 1]], axis=1, value=2)
    assert out[:, 1, 1:5].tolist() == [[2] * 4] * 4
    assert (out == 2).sum() == 16 and out[0, 0, 0] == 9
    with pytest.raises(InvalidArgumentError, match="every point of vertices must lie on one"):
        polygon(vol, [[0, 1, 1], [0, 2, 4], [3, 1, 4]], axis=1)


def test_value_zero_erases_inside_the_polygon():
    lab = np.ones((5, 5), np.uint8)
    out = polygon(lab, [[1, 1], [1, 3], [3, 3], [3, 1]], value=0)
    assert out.sum() == 25 - 9


def test_spec_fills_into_a_new_label():
    out = get_tool("polygon").apply(np.zeros((6, 6)), None, spacing=(1.0, 1.0),
                                    vertices=[[1, 1], [1, 4], [4, 4], [4, 1]])
    assert out.sum() == 16 and out.dtype == np.uint8


@needs_shared("cxr_lungs")
def test_twenty_vertices_on_the_lung_outline_reach_the_manual_mask():
    case = open_dataset(shared("cxr_lungs")).cases[0]
    truth = case.read_label().array > 0
    parts, _ = ndi.label(truth)
    lung = parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1
    contour = max(find_contours(lung.astype(float), 0.5), key=len)
    verts = approximate_polygon(contour, tolerance=4.0)[:-1]
    score = dice(polygon_mask(truth.shape, verts), lung)
    assert len(verts) <= 40 and score > 0.97, (len(verts), score)


@pytest.mark.parametrize(("vertices", "message"), [
    ([[1, 1], [2, 2]], "at least 3 points"),
    ([[0, 0], [1, 1], [2, 2]], "enclose no area"),
    ([[0, 0], [0, 9], [3, 3]], r"vertices has a point \[0.0, 9.0\] outside"),
    ([[0, 0], [0, np.nan], [3, 3]], "vertices must be one or more points"),
])
def test_bad_vertices_are_named(vertices, message):
    with pytest.raises(InvalidArgumentError, match=message):
        polygon(np.zeros((5, 5), np.uint8), vertices)


def test_volume_needs_axis_and_image_needs_none():
    with pytest.raises(InvalidArgumentError, match="must be 0, 1 or 2 on a volume, got axis=None"):
        polygon(np.zeros((3, 5, 5), np.uint8), [[1, 0, 0], [1, 0, 3], [1, 3, 3]])
    with pytest.raises(InvalidArgumentError, match="axis=1 applies to volumes"):
        polygon(np.zeros((5, 5), np.uint8), [[0, 0], [0, 3], [3, 3]], axis=1)
    with pytest.raises(InvalidArgumentError, match="fills 2D images"):
        polygon_mask((3, 3, 3), [[0, 0, 0], [0, 1, 1], [1, 1, 1]])


def test_a_polygon_holding_no_pixel_centre_is_refused_naming_its_vertices():
    tiny = [[1.1, 1.1], [1.2, 1.3], [1.3, 1.1]]
    with pytest.raises(InvalidArgumentError, match=r"vertices=\[\[1.1, 1.1\], \[1.2, 1.3\], "
                                                   r"\[1.3, 1.1\]\] enclose no pixel centre"):
        polygon_mask((64, 64), tiny)
    with pytest.raises(InvalidArgumentError, match="enclose no pixel centre"):
        get_tool("polygon").apply(np.zeros((64, 64)), None, spacing=None, vertices=tiny)
    sliver = [[2, 0.2, 0.2], [2, 0.2, 3.8], [2, 0.8, 0.2]]  # between rows 0 and 1 of slice 2
    with pytest.raises(InvalidArgumentError, match="enclose no pixel centre"):
        polygon(np.zeros((4, 5, 5), np.uint8), sliver, axis=0)


def test_spec_fills_a_colour_image_of_its_spatial_shape():
    out = get_tool("polygon").apply(np.zeros((6, 7, 3), np.uint8), None, spacing=(1.0, 1.0),
                                    vertices=[[1, 1], [1, 4], [4, 4], [4, 1]], channel_axis=-1)
    assert out.shape == (6, 7) and out.sum() == 16
