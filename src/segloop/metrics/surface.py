"""Surface-distance metrics: Hausdorff distance, HD95 and ASSD.

The metrics compare the *surfaces* of two masks in physical units (mm when
``spacing`` is in mm).  One definition holds throughout :mod:`segloop.metrics`:

Surface
    The surface of a mask is the set of its voxels that have at least one
    face-neighbour (4-neighbour in 2D, 6-neighbour in 3D) outside the mask;
    voxels on the border of the array count as surface, the outside of the
    array being background.  It is the mask minus its binary erosion by the
    face-connected structuring element, the choice of MedPy and of most
    challenge scripts.  The resulting surface is one voxel thick and connected
    with full (8/26) connectivity.
Surface distance
    The Euclidean distance between voxel centres, with axis ``k`` scaled by
    ``spacing[k]``, from one surface voxel to the nearest surface voxel of the
    other mask (computed with :func:`scipy.ndimage.distance_transform_edt` and
    ``sampling=spacing``).  Two identical masks are at distance 0; a mask and
    its copy shifted by ``k`` voxels along an axis of spacing ``s`` have a
    Hausdorff distance of at most ``k * s``.

Empty masks
-----------
Both masks empty gives 0.0 for every metric (nothing to mis-place).  Exactly
one mask empty gives ``inf``: a surface has no nearest point on an empty one.
In :func:`surface_distances`, the distances *to* an empty surface are ``inf``
and the distances *from* it form an empty array.

Examples
--------
>>> import numpy as np
>>> truth = np.zeros((6, 6), bool); truth[1:4, 1:4] = True
>>> pred = np.roll(truth, 2, axis=1)  # the same square, 2 columns to the right
>>> hausdorff(pred, truth), hausdorff(pred, truth, spacing=(1.0, 0.5))
(2.0, 1.0)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from segloop.io.checks import check_spacing
from segloop.metrics.overlap import as_masks

__all__ = [
    "FROM_DISTANCES",
    "SurfaceDistances",
    "assd",
    "check_spacing",
    "hausdorff",
    "hausdorff95",
    "surface_distances",
    "surface_field",
    "surface_mask",
    "surface_scores",
    "symmetric_statistic",
]


class SurfaceDistances(NamedTuple):
    """Directed surface distances between a prediction and a reference.

    Attributes
    ----------
    pred_to_truth : numpy.ndarray
        For each surface voxel of ``pred`` (in C order of the voxels), the
        distance to the nearest surface voxel of ``truth``.
    truth_to_pred : numpy.ndarray
        For each surface voxel of ``truth``, the distance to the nearest
        surface voxel of ``pred``.
    """

    pred_to_truth: np.ndarray
    truth_to_pred: np.ndarray


def surface_mask(mask) -> np.ndarray:
    """The surface voxels of a mask: those with a face-neighbour outside it.

    Parameters
    ----------
    mask : array_like
        2D or 3D array; non-zero is foreground.

    Returns
    -------
    numpy.ndarray
        Boolean array of the same shape, true on the surface (see the module
        docstring for the definition).

    Examples
    --------
    >>> import numpy as np
    >>> square = np.zeros((5, 5), bool); square[1:4, 1:4] = True
    >>> surface_mask(square).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    mask, _ = as_masks(mask, mask)
    return _surface(mask)


def _surface(mask: np.ndarray) -> np.ndarray:
    face = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=face, border_value=0)


def _distances_to(surface: np.ndarray, sources: np.ndarray, spacing) -> np.ndarray:
    """Distance from each true voxel of ``sources`` to the nearest voxel of ``surface``."""
    if not surface.any():
        return np.full(np.count_nonzero(sources), np.inf)
    return ndimage.distance_transform_edt(~surface, sampling=spacing)[sources]


def surface_distances(pred, truth, *, spacing=None) -> SurfaceDistances:
    """Distances from each surface voxel of one mask to the surface of the other.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.
    spacing : sequence of float, optional
        Voxel size along each array axis, ``(z, y, x)`` or ``(y, x)``.  None
        means 1 along every axis (distances in voxels).

    Returns
    -------
    SurfaceDistances
        ``(pred_to_truth, truth_to_pred)``: two 1D float arrays, one value per
        surface voxel of ``pred`` and of ``truth`` respectively.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ, an input is not a finite 2D/3D array, or
        ``spacing`` is not one positive number per axis.

    Notes
    -----
    The work is done on the bounding box of the union of the two masks, which
    gives the same surfaces and distances as the whole array (every voxel
    outside the box is background in both masks) at a fraction of the cost.
    An empty mask has an empty surface: the distances from it form an empty
    array and the distances to it are all ``inf``.

    Examples
    --------
    >>> import numpy as np
    >>> pred = np.array([[1, 1, 1, 0]])
    >>> truth = np.array([[0, 0, 0, 1]])
    >>> d = surface_distances(pred, truth, spacing=(1.0, 2.0))
    >>> d.pred_to_truth.tolist(), d.truth_to_pred.tolist()
    ([6.0, 4.0, 2.0], [2.0])
    """
    p, t = as_masks(pred, truth)
    sampling = check_spacing(spacing, p.ndim)
    union = (p | t).astype(np.uint8)
    if not union.any():
        return SurfaceDistances(np.zeros(0), np.zeros(0))
    box = ndimage.find_objects(union)[0]
    p_surface = _surface(p[box])
    t_surface = _surface(t[box])
    return SurfaceDistances(
        pred_to_truth=_distances_to(t_surface, p_surface, sampling),
        truth_to_pred=_distances_to(p_surface, t_surface, sampling),
    )


def symmetric_statistic(distances: SurfaceDistances, statistic) -> float:
    """Apply ``statistic`` to both directed distance sets, with the empty-mask convention."""
    forward, backward = distances
    if forward.size == 0 and backward.size == 0:
        return 0.0
    if forward.size == 0 or backward.size == 0:
        return float("inf")
    return float(statistic(forward, backward))


def _hd95(forward: np.ndarray, backward: np.ndarray) -> float:
    return max(np.percentile(forward, 95), np.percentile(backward, 95))


def _hausdorff(forward: np.ndarray, backward: np.ndarray) -> float:
    return max(forward.max(), backward.max())


def _assd(forward: np.ndarray, backward: np.ndarray) -> float:
    return (forward.sum() + backward.sum()) / (forward.size + backward.size)


#: The surface metrics by short name, each a function of the two directed distance arrays.
FROM_DISTANCES = {"hd95": _hd95, "hausdorff": _hausdorff, "assd": _assd}


def hausdorff95(pred, truth, *, spacing=None) -> float:
    """95th-percentile Hausdorff distance (HD95) between two mask surfaces.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.
    spacing : sequence of float, optional
        Voxel size along each array axis; None means 1.

    Returns
    -------
    float
        In the units of ``spacing``; ``inf`` if exactly one mask is empty.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ, an input is not a finite 2D/3D array, or
        ``spacing`` is not one positive number per axis.

    Notes
    -----
    HD95 is the larger of the two *directed* 95th percentiles,
    ``max(P95(d(pred -> truth)), P95(d(truth -> pred)))``, the definition of
    MedPy's ``hd95`` and MONAI's ``compute_hausdorff_distance(percentile=95)``.
    (The 95th percentile of the pooled distances, used by some challenge
    scripts, can be smaller.)  Percentiles interpolate linearly between the
    sorted distances (:func:`numpy.percentile`'s default).  Both masks empty
    gives 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((8, 8), bool); truth[2:6, 2:6] = True
    >>> hausdorff95(np.roll(truth, 1, axis=0), truth, spacing=(3.0, 1.0))
    3.0
    """
    return symmetric_statistic(surface_distances(pred, truth, spacing=spacing), _hd95)


def hausdorff(pred, truth, *, spacing=None) -> float:
    """Hausdorff distance: the largest distance from one surface to the other.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.
    spacing : sequence of float, optional
        Voxel size along each array axis; None means 1.

    Returns
    -------
    float
        ``max(max d(pred -> truth), max d(truth -> pred))`` in the units of
        ``spacing``.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ, an input is not a finite 2D/3D array, or
        ``spacing`` is not one positive number per axis.

    Notes
    -----
    A single stray voxel far away sets the Hausdorff distance; HD95 is the
    robust variant.  Both masks empty gives 0.0; exactly one empty ``inf``.

    Examples
    --------
    >>> import numpy as np
    >>> pred = np.zeros((5, 5), bool); pred[0, 0] = True
    >>> truth = np.zeros((5, 5), bool); truth[3, 4] = True
    >>> hausdorff(pred, truth)
    5.0
    """
    return symmetric_statistic(surface_distances(pred, truth, spacing=spacing), _hausdorff)


def assd(pred, truth, *, spacing=None) -> float:
    """Average symmetric surface distance (ASSD).

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.
    spacing : sequence of float, optional
        Voxel size along each array axis; None means 1.

    Returns
    -------
    float
        The mean of the pooled directed distances, in the units of ``spacing``.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ, an input is not a finite 2D/3D array, or
        ``spacing`` is not one positive number per axis.

    Notes
    -----
    ``ASSD = (sum d(pred -> truth) + sum d(truth -> pred)) / (|S_pred| + |S_truth|)``
    where ``S`` are the surfaces: every surface voxel of either mask weighs
    the same, as in the definition of Heimann et al. (2009) and MONAI's
    ``compute_average_surface_distance(symmetric=True)``.  MedPy's ``assd``
    instead averages the two directed means, which differs when the surfaces
    have different sizes.  Both masks empty gives 0.0; exactly one empty
    ``inf``.

    References
    ----------
    .. [1] T. Heimann et al., "Comparison and evaluation of methods for liver
       segmentation from CT datasets", IEEE TMI 28(8), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> pred = np.array([[1, 1, 1, 0]])
    >>> truth = np.array([[0, 0, 0, 1]])
    >>> assd(pred, truth)  # (3 + 2 + 1 + 1) / 4
    1.75
    """
    return symmetric_statistic(surface_distances(pred, truth, spacing=spacing), _assd)


def surface_scores(pred, truth, *, spacing=None) -> dict[str, float]:
    """HD95, Hausdorff distance and ASSD from one computation of the distances.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.
    spacing : sequence of float, optional
        Voxel size along each array axis; None means 1.

    Returns
    -------
    dict of str to float
        Keys ``"hd95"``, ``"hausdorff"`` and ``"assd"``, with the values and
        empty-mask conventions of :func:`hausdorff95`, :func:`hausdorff` and
        :func:`assd`.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ, an input is not a finite 2D/3D array, or
        ``spacing`` is not one positive number per axis.

    Examples
    --------
    >>> import numpy as np
    >>> surface_scores(np.array([[1, 1, 1, 0]]), np.array([[0, 0, 0, 1]]))
    {'hd95': 2.9, 'hausdorff': 3.0, 'assd': 1.75}
    """
    distances = surface_distances(pred, truth, spacing=spacing)
    return {name: symmetric_statistic(distances, stat) for name, stat in FROM_DISTANCES.items()}


def surface_field(reference: np.ndarray, spacing) -> np.ndarray:
    """Signed distance (mm) of every voxel centre from the surface of ``reference``.

    Positive outside, negative inside, the surface lying midway between the
    reference's inner and outer boundary layers (:mod:`segloop.fusion.boundary` measures a
    rater's boundary bias on it).
    Voxels on the array border see the outside of the array as background only
    if the caller pads the array.

    Parameters
    ----------
    reference : ndarray of bool
        A non-empty mask that does not fill the whole array.
    spacing : tuple of float
        Voxel size per axis, array order.

    Returns
    -------
    ndarray of float64
        The signed distance; ``+-(spacing along k) / 2`` on the boundary layers
        of a surface normal to axis ``k``.
    """
    face = ndimage.generate_binary_structure(reference.ndim, 1)
    inner = reference & ~ndimage.binary_erosion(reference, face, border_value=0)
    outer = ndimage.binary_dilation(reference, face) & ~reference
    out = np.empty(reference.shape)
    edt = ndimage.distance_transform_edt
    outside = ~reference
    out[outside] = (edt(outside, sampling=spacing) + edt(~outer, sampling=spacing))[outside]
    out[reference] = -(edt(~inner, sampling=spacing) + edt(reference, sampling=spacing))[reference]
    return out / 2
