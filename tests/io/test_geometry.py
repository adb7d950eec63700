import numpy as np
import pytest

from segloop.errors import GeometryMismatchError, InvalidArgumentError
from segloop.io import Image, check_same_grid, reorient, resample, same_grid
from segloop.io.convert import from_nibabel, from_sitk, nibabel_affine, to_nibabel, to_sitk
from segloop.io.image import default_direction


def _ramp(shape=(3, 4, 5), **kw):
    return Image(np.arange(np.prod(shape), dtype=np.float32).reshape(shape), **kw)


@pytest.mark.parametrize("code", ["RAS", "LPS", "PSR", "LAS", "IRP", "ASL"])
def test_reorient_keeps_every_voxel_at_its_world_position(code):
    img = _ramp(spacing=(3.0, 2.0, 0.5), origin=(5.0, -7.0, 11.0))
    out = reorient(img, code)
    assert out.orientation == code
    # every voxel value sits at the same world point before and after
    for idx in np.ndindex(out.shape):
        world = out.index_to_world(idx)
        src = np.rint(img.world_to_index(world)).astype(int)
        assert img.array[tuple(src)] == out.array[idx]
    back = reorient(out, "LPS")
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.origin, img.origin, atol=1e-9)
    assert back.spacing == img.spacing


def test_reorient_2d_and_bad_codes():
    img = Image(np.arange(6.0).reshape(2, 3))
    out = reorient(img, "RA")  # flip both axes relative to LP
    np.testing.assert_array_equal(out.array, img.array[::-1, ::-1])
    with pytest.raises(InvalidArgumentError, match="names a world axis twice"):
        reorient(_ramp(), "RLS")
    with pytest.raises(InvalidArgumentError, match="must have 3 letters"):
        reorient(_ramp(), "RA")
    with pytest.raises(InvalidArgumentError, match="letter 'Q'"):
        reorient(_ramp(), "RAQ")


def test_sitk_round_trip_with_oblique_direction():
    theta = np.deg2rad(20)
    rot = np.array([[1, 0, 0], [0, np.cos(theta), -np.sin(theta)],
                    [0, np.sin(theta), np.cos(theta)]])
    img = _ramp(spacing=(4.0, 1.5, 0.7), origin=(1, 2, 3), direction=rot @ default_direction(3))
    s = to_sitk(img)
    assert s.GetSize() == (5, 4, 3)
    assert s.GetSpacing() == pytest.approx((0.7, 1.5, 4.0))
    # SimpleITK's own index->world must agree with ours
    np.testing.assert_allclose(s.TransformIndexToPhysicalPoint((4, 3, 2)),
                               img.index_to_world((2, 3, 4)), atol=1e-9)
    back = from_sitk(s)
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-12)


def test_nibabel_round_trip_and_ras_affine():
    img = _ramp(spacing=(3.0, 2.0, 0.5), origin=(5.0, -7.0, 11.0))
    nii = to_nibabel(img)
    assert nii.shape == (5, 4, 3)  # file order (x, y, z)
    # nibabel maps file voxel (i, j, k) to RAS; LPS x and y change sign
    ras = nii.affine @ np.array([4, 3, 2, 1.0])
    lps = img.index_to_world((2, 3, 4))
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-9)
    back = from_nibabel(nii)
    np.testing.assert_array_equal(back.array, img.array)
    assert back.spacing == pytest.approx(img.spacing)
    np.testing.assert_allclose(nibabel_affine(back), nii.affine, atol=1e-9)


def test_4d_nibabel_becomes_channels():
    import nibabel as nib

    data = np.zeros((5, 4, 3, 7), np.int16)
    data[1, 2, 0, 6] = 9
    img = from_nibabel(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])))
    assert img.channels and img.shape == (3, 4, 5) and img.n_channels == 7
    assert img.array[0, 2, 1, 6] == 9


def test_same_grid_reports_what_differs():
    a = _ramp(spacing=(1, 1, 1))
    assert same_grid(a, a.copy()) == (True, "")
    ok, why = same_grid(a, _ramp(spacing=(1, 1, 2)))
    assert not ok and why == "spacing (1, 1, 1) vs (1, 1, 2) mm"
    ok, why = same_grid(a, _ramp(origin=(0, 0, 5)))
    assert not ok and why.startswith("origin")
    ok, why = same_grid(a, reorient(a, "RAS"))
    assert not ok and "orientation LPS vs RAS" in why
    b = _ramp()
    b.metadata["path"] = "label.nii.gz"
    a.metadata["path"] = "image.nii.gz"
    with pytest.raises(GeometryMismatchError, match="image.nii.gz and label.nii.gz do not share"):
        check_same_grid(a, _ramp(shape=(3, 4, 6), metadata={"path": "label.nii.gz"}))


def test_resample_label_nearest_and_image_linear():
    lab = Image(np.array([[0, 0, 3, 3]] * 2, np.uint8), kind="label", spacing=(1.0, 1.0))
    up = resample(lab, spacing=(1.0, 0.5))
    assert up.shape == (2, 8)
    assert up.label_values() == [0, 3]  # no interpolated in-between values
    # half-voxel-centred field of view: each old voxel becomes two new ones
    np.testing.assert_array_equal(up.array[0], [0, 0, 0, 0, 3, 3, 3, 3])
    img = Image(np.array([[0.0, 0.0, 4.0, 4.0]] * 2, np.float32), spacing=(1.0, 1.0))
    up_img = resample(img, spacing=(1.0, 0.5))
    assert 0.0 < up_img.array[0, 3] < 4.0  # linear blend at the edge
    # world extent is preserved
    np.testing.assert_allclose(np.asarray(up_img.shape) * up_img.spacing,
                               np.asarray(img.shape) * img.spacing)


def test_resample_onto_reference_grid():
    src = _ramp(spacing=(2.0, 2.0, 2.0))
    ref = Image(np.zeros((6, 8, 10), np.uint8), spacing=(1.0, 1.0, 1.0), origin=(-0.5,) * 3)
    out = resample(src, reference=ref)
    assert out.shape == ref.shape and out.spacing == ref.spacing
    with pytest.raises(InvalidArgumentError, match="exactly one of"):
        resample(src)


def test_linear_resampling_of_integers_rounds_instead_of_truncating():
    img = Image(np.array([[0, 10, 10, 0]], np.int16))
    out = resample(img, spacing=(1.0, 0.5))
    assert out.array.dtype == np.int16
    np.testing.assert_array_equal(out.array[0], [0, 2, 8, 10, 10, 8, 2, 0])


def test_resample_refuses_bad_or_huge_spacing():
    from segloop.errors import ImageTooLargeError

    img = _ramp()
    with pytest.raises(InvalidArgumentError, match="positive finite"):
        resample(img, spacing=(np.nan, 1, 1))
    with pytest.raises(ImageTooLargeError, match="resampling would need"):
        resample(img, spacing=(1e-5, 1e-5, 1e-5))
