import re

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import needs_shared, shared
from segloop.data.phantoms import disk, phantom_2d
from segloop.errors import InvalidArgumentError
from segloop.io import open_dataset
from segloop.metrics import dice
from segloop.tools import get_tool
from segloop.tools.contour import fill_contour, mask_contour, resample_contour
from segloop.tools.fast_marching import speed_map
from segloop.tools.geodesic import (
    GeodesicSession,
    geodesic_contour,
    geodesic_mask,
    geodesic_path_3d,
)


def anchors_at(mask, n):
    return [tuple(a) for a in np.rint(resample_contour(mask_contour(mask), n)).astype(int)]


def blurred_disk(seed=0):
    truth = disk((96, 96), (47.3, 49.1), 30)
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(truth * 0.5 + 0.25, 0.7) + rng.normal(0, 0.05, truth.shape), truth


def test_path_runs_along_a_step_edge():
    image = np.zeros((30, 30))
    image[:, 15:] = 1.0
    s = GeodesicSession(image)
    s.add_anchor((2, 14))
    assert set(s.path_to((27, 14))[:, 1].tolist()) == {14}


def test_sharp_disk_from_four_anchors():
    image, truth = blurred_disk()
    anchors = anchors_at(truth, 4)
    assert dice(geodesic_mask(image, anchors), truth) >= 0.97
    assert dice(fill_contour(anchors, truth.shape), truth) < 0.8


def test_weak_blob_with_an_intensity_window():
    ph = phantom_2d((128, 128), seed=0, noise=0.12)
    (weak,) = ph.labels_of("weak")
    truth = ph.label == weak
    anchors = anchors_at(truth, 4)
    window = (0.25, ph.info[weak]["intensity"])
    plain = dice(geodesic_mask(ph.image, anchors), truth)
    windowed = dice(geodesic_mask(ph.image, anchors, intensity_window=window), truth)
    assert windowed >= 0.95 and windowed > plain + 0.05


def test_intensity_metric_follows_a_thin_bright_curve():
    ph = phantom_2d((128, 128), seed=3, n_thin=1)
    curve = ph.label == ph.labels_of("thin")[0]
    pts = np.argwhere(curve)
    along = (pts - pts.mean(0)) @ np.linalg.svd(pts - pts.mean(0), full_matrices=False)[2][0]
    order = np.argsort(along)
    a, b = tuple(pts[order[len(order) // 5]]), tuple(pts[order[4 * len(order) // 5]])
    away = ndi.distance_transform_edt(~curve)
    path = geodesic_contour(ph.image, [a, b], closed=False, metric="intensity")
    assert tuple(path[0]) == a and tuple(path[-1]) == b
    assert away[tuple(path.T)].max() <= 1.0 and away[tuple(path.T)].mean() <= 0.4
    edge = geodesic_contour(ph.image, [a, b], closed=False)  # beside it, along its edges
    assert away[tuple(edge.T)].max() <= 2.0


def test_windowed_fronts_give_the_same_paths_as_whole_image_fronts():
    image, _ = blurred_disk(seed=1)
    near, whole = GeodesicSession(image, window=6), GeodesicSession(image, window=None)
    for s in (near, whole):
        s.add_anchor((17, 49))
    assert not near._tree(0).complete and whole._tree(0).complete
    for t in map(tuple, np.random.default_rng(0).integers(0, 96, (25, 2))):
        np.testing.assert_array_equal(near.path_to(t), whole.path_to(t))


def test_intensity_session_takes_its_reference_from_the_first_anchor():
    image = np.full((20, 30), 0.2)
    image[10, :] = 1.0
    s = GeodesicSession(image, metric="intensity", sigma=0.5)
    with pytest.raises(InvalidArgumentError, match="needs an anchor or a reference"):
        s.speed()
    s.add_anchor((10, 2))
    assert s.reference == pytest.approx(ndi.gaussian_filter(image, 0.5)[10, 2])
    assert set(s.path_to((10, 27))[:, 0].tolist()) == {10}
    given = GeodesicSession(image, metric="intensity", reference=0.2)
    assert given.speed()[0, 0] > given.speed()[10, 5]  # follows the background instead
    assert speed_map(image).shape == (20, 30)
    with pytest.raises(InvalidArgumentError, match="needs a reference"):
        speed_map(image, metric="intensity")


def test_path_3d_follows_a_tube_with_anisotropic_voxels():
    z, y, x = np.mgrid[:12, :30, :40]
    centre_y = 15 + 8 * np.sin(x / 40 * 2 * np.pi)  # a wavy tube along x
    vol = np.where((z - 6) ** 2 / 4 + (y - centre_y) ** 2 <= 4, 1.0, 0.1)
    vol = vol + np.random.default_rng(0).normal(0, 0.05, vol.shape)
    start, end = (6, 15, 1), (6, int(round(15 + 8 * np.sin(38 / 40 * 2 * np.pi))), 38)
    path = geodesic_path_3d(vol, start, end, spacing=(2.0, 1.0, 1.0))
    assert tuple(path[0]) == start and tuple(path[-1]) == end
    assert np.abs(np.diff(path, axis=0)).max() == 1
    assert (vol[tuple(path.T)] > 0.5).mean() >= 0.95


def test_bad_input_is_named():
    image, _ = blurred_disk()
    with pytest.raises(InvalidArgumentError, match="metric must be one of"):
        GeodesicSession(image, metric="vesselness")
    with pytest.raises(InvalidArgumentError, match="eps must be a positive number"):
        GeodesicSession(image, eps=0)
    with pytest.raises(InvalidArgumentError, match="tolerance must be a positive number"):
        GeodesicSession(image, metric="intensity", tolerance=-1.0)
    with pytest.raises(InvalidArgumentError, match="use geodesic_path_3d for volumes"):
        GeodesicSession(np.zeros((4, 10, 10)))
    with pytest.raises(InvalidArgumentError, match=r"volume must be 3D.*\(96, 96\)"):
        geodesic_path_3d(image, (0, 0), (1, 1))
    with pytest.raises(InvalidArgumentError, match=r"end=\(0, 0, 9\) lies outside"):
        geodesic_path_3d(np.zeros((4, 5, 6)), (0, 0, 0), (0, 0, 9))
    with pytest.raises(InvalidArgumentError, match="NaN/Inf"):
        geodesic_path_3d(np.full((4, 5, 6), np.nan), (0, 0, 0), (1, 1, 1))
    with pytest.raises(InvalidArgumentError, match="closed contour needs at least 3 anchors"):
        geodesic_mask(image, [(1, 1), (5, 5)])


def test_spec_in_2d_and_3d():
    spec = get_tool("geodesic")
    image, truth = blurred_disk()
    out = spec.apply(image, None, spacing=None, anchors=anchors_at(truth, 4), value=2)
    assert dice(out == 2, truth) >= 0.97
    vol = np.full((6, 8, 20), 0.1)
    vol[3, 4, :] = 1.0
    line = spec.apply(vol, None, spacing=(2.0, 1.0, 1.0),
                      anchors=[[3, 4, 1], [3, 4, 10], [3, 4, 18]])
    assert line.sum() == 18 and line[3, 4, 1:19].all()
    with pytest.raises(InvalidArgumentError, match="closed contours are 2D only"):
        spec.apply(vol, None, spacing=None, anchors=[[3, 4, 1], [3, 4, 10]], closed=True)


def two_levels():
    """Left half 0.2, right half 0.8, with a bright line in each half."""
    image = np.full((30, 40), 0.2)
    image[:, 20:] = 0.8
    return image


def test_intensity_reference_is_forgotten_with_the_first_anchor():
    image = two_levels()
    s = GeodesicSession(image, metric="intensity", sigma=0.5)
    s.add_anchor((15, 5))  # reference 0.2
    assert s.reference == pytest.approx(0.2)
    s.clear()
    s.add_anchor((15, 35))  # a new contour in the bright half: reference 0.8, as a fresh session
    fresh = GeodesicSession(image, metric="intensity", sigma=0.5)
    fresh.add_anchor((15, 35))
    assert s.reference == pytest.approx(0.8) == fresh.reference
    np.testing.assert_array_equal(s.speed(), fresh.speed())
    np.testing.assert_array_equal(s.path_to((5, 25)), fresh.path_to((5, 25)))
    s.remove_last_anchor()  # undoing the first anchor forgets its reference too
    assert s.reference is None
    s.add_anchor((15, 5))
    assert s.reference == pytest.approx(0.2)
    s.add_anchor((15, 10))
    s.remove_last_anchor()  # a later anchor keeps it
    assert s.reference == pytest.approx(0.2)
    given = GeodesicSession(image, metric="intensity", sigma=0.5, reference=0.5)
    given.add_anchor((15, 35))
    given.clear()
    assert given.reference == 0.5 and given.speed() is not None  # a given reference stays


def test_identical_anchors_and_enclosing_nothing_are_errors():
    image, truth = blurred_disk()
    anchors = anchors_at(truth, 4)
    with pytest.raises(InvalidArgumentError, match="anchors must be distinct"):
        geodesic_mask(image, [anchors[0]] * 3)
    with pytest.raises(InvalidArgumentError, match="anchors must be distinct"):
        get_tool("geodesic").apply(np.zeros((6, 8, 20)), None, spacing=None,
                                   anchors=[[3, 4, 1], [3, 4, 1], [3, 4, 5]])
    with pytest.raises(InvalidArgumentError, match=r"start and end are the same voxel \[1, 1, 1\]"):
        geodesic_path_3d(np.zeros((6, 8, 20)), (1, 1, 1), (1.2, 1, 0.9))
    s = GeodesicSession(image)
    s.add_anchor(anchors[0])
    with pytest.raises(InvalidArgumentError, match=r"is anchors\[0\] already"):
        s.add_anchor(anchors[0])
    s.add_anchor(anchors[1])
    with pytest.raises(InvalidArgumentError, match="encloses no area"):
        s.mask()  # two anchors: the way back is the way there
    assert not s.closed and len(s.segments) == 1 and len(s.anchors) == 2
    s.add_anchor((anchors[1][0] + 1, anchors[1][1]))  # next to the last anchor, on the same edge
    mask = s.mask()  # three: the way back keeps off the contour (here a chord across)
    traced = np.zeros(truth.shape, bool)
    for seg in s.segments[:2]:
        traced[tuple(seg.T)] = True
    assert not traced[tuple(s.segments[2][3:-3].T)].any() and 0.1 < dice(mask, truth) < 0.5
    s.remove_last_anchor()  # reopens
    s.remove_last_anchor()
    for a in anchors[2:]:
        s.add_anchor(a)
    assert dice(s.mask(), truth) >= 0.97


def test_absurd_tolerance_reference_eps_and_sigma_are_named():
    image, _ = blurred_disk()
    vol = np.random.default_rng(0).random((20, 20, 20))
    for tolerance in (1e-300, 1e300, np.nan, True, "1"):
        with pytest.raises(InvalidArgumentError, match=r"tolerance must be a positive number "
                                                       r"in \["):
            geodesic_mask(image, anchors_at(disk((96, 96), (48, 48), 30), 4), metric="intensity",
                          tolerance=tolerance)
        with pytest.raises(InvalidArgumentError, match="tolerance must be"):
            geodesic_path_3d(vol, (1, 1, 1), (5, 5, 5), tolerance=tolerance)
    for reference in (1e300, -1e300, np.nan, np.inf, "x", True):
        with pytest.raises(InvalidArgumentError, match=r"reference must be a number in .*"
                                                       + re.escape(f"reference={reference!r}")):
            GeodesicSession(image, metric="intensity", reference=reference)
        with pytest.raises(InvalidArgumentError, match="reference must be a number in"):
            geodesic_path_3d(vol, (1, 1, 1), (5, 5, 5), reference=reference)  # not a 1-voxel path
    for eps in (1e-300, 1e300, True):
        with pytest.raises(InvalidArgumentError, match=r"eps must be a positive number in "
                                                       r"\[1e-06, 1e\+06\]"):
            GeodesicSession(image, eps=eps)
    with pytest.raises(InvalidArgumentError, match=r"sigma must be a number of pixels in "
                                                   r"\[0.25, 20\]"):
        geodesic_path_3d(vol, (1, 1, 1), (5, 5, 5), sigma=1e9)
    for closed in ("no", 0):
        with pytest.raises(InvalidArgumentError, match="closed must be true or false"):
            get_tool("geodesic").apply(image, None, spacing=None, anchors=[[1, 1], [5, 5]],
                                       closed=closed)
    # the bounds themselves still give paths along the right structure
    tube = np.full((8, 8, 20), 0.1)
    tube[4, 4, :] = 1.0
    for kw in ({"eps": 1e-6}, {"eps": 1e6}, {"reference": 1.0, "tolerance": 0.9 / 1e6}):
        path = geodesic_path_3d(tube, (4, 4, 1), (4, 4, 18), **kw)
        assert tuple(path[0]) == (4, 4, 1) and tuple(path[-1]) == (4, 4, 18)
        assert (path[:, :2] == 4).all()


# --------------------------------------------------------------------------- real images

@needs_shared("cxr_lungs")
def test_chest_xray_lungs_from_six_anchors():
    case = next(c for c in open_dataset(shared("cxr_lungs")).cases if c.id == "1")
    image = case.read_image().array.astype(float)
    pieces, n = ndi.label(case.read_label().array > 0)
    for k in range(1, n + 1):
        truth = pieces == k
        anchors = anchors_at(truth, 6)
        got = dice(geodesic_mask(image, anchors), truth)  # 0.95 and 0.96
        assert got >= 0.93 and got >= dice(fill_contour(anchors, truth.shape), truth) + 0.02


@needs_shared("ct_slices_sammed2d")
def test_ct_organs_from_six_anchors():
    cases = {c.id: c for c in open_dataset(shared("ct_slices_sammed2d")).cases}
    got = []
    for cid, name in [("amos_0006_90", "aorta"), ("s0114_111", "heart_atrium_right"),
                      ("s0114_111", "lung_lower_lobe_left")]:
        truth = cases[cid].read_label(name).array > 0
        pieces, n = ndi.label(truth)
        truth = pieces == 1 + np.argmax(ndi.sum_labels(truth, pieces, range(1, n + 1)))
        anchors = anchors_at(truth, 6)
        image = cases[cid].read_image().array.astype(float)
        got.append((dice(geodesic_mask(image, anchors), truth),
                    dice(fill_contour(anchors, truth.shape), truth)))
    got = np.array(got)  # geodesic 0.95-0.97, polygon 0.88-0.92
    assert (got[:, 0] >= 0.93).all() and got[:, 0].mean() >= got[:, 1].mean() + 0.03


@needs_shared("spinalcord_sct", "t2")
def test_spinal_cord_slice_and_centreline():
    case = next(c for c in open_dataset(shared("spinalcord_sct")).cases if c.id == "t2")
    volume, cord = case.read_image(), case.read_label().array > 0
    k = 27  # the cord runs along the second array axis: axial slices are [:, k, :]
    image, truth = volume.array[:, k, :].astype(float), cord[:, k, :]
    anchors = anchors_at(truth, 4)
    got = dice(geodesic_mask(image, anchors), truth)  # 0.93; polygon 0.89
    assert got >= 0.9 and got > dice(fill_contour(anchors, truth.shape), truth)
    top = np.rint(ndi.center_of_mass(cord[:, 2, :])).astype(int)
    bottom = np.rint(ndi.center_of_mass(cord[:, -3, :])).astype(int)
    start, end = (top[0], 2, top[1]), (bottom[0], cord.shape[1] - 3, bottom[1])
    path = geodesic_path_3d(volume.array.astype(float), start, end, spacing=volume.spacing)
    assert len(path) >= cord.shape[1] - 5 and cord[tuple(path.T)].mean() >= 0.95
