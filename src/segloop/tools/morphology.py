"""Smoothing and margins of label maps, in millimetres.

* :func:`grow` / :func:`shrink` -- margin by a distance: exact Euclidean
  dilation / erosion by a ball of that radius in physical units, from one
  distance transform (the ``edt`` package, anisotropic);
* :func:`opening` / :func:`closing` -- shrink then grow / grow then shrink by
  the same radius (exact ball opening and closing);
* :func:`median` -- majority vote in a box of half-size ``radius_mm`` per axis
  (the median of a binary mask);
* :func:`gaussian` -- Gaussian blur of the mask (sigma in mm), thresholded at 0.5.

Each works on every label of the map separately (or on ``value``), inside
that label's bounding box grown by the reach of the operation. Growth only
takes background voxels; where two labels grow into the same voxel, the
nearer one gets it. Outside the image counts neither as label nor as
background: an object touching the border is not eroded from it.

Examples
--------
>>> import numpy as np
>>> lab = np.zeros((1, 9), np.uint8); lab[0, 4] = 1
>>> grow(lab, distance_mm=2, spacing=(1.0, 1.0))
array([[0, 0, 1, 1, 1, 1, 1, 0, 0]], dtype=uint8)
>>> shrink(grow(lab, distance_mm=2), distance_mm=1)
array([[0, 0, 0, 1, 1, 1, 0, 0, 0]], dtype=uint8)
"""

from __future__ import annotations

import edt
import numpy as np
from scipy import ndimage as ndi

from segloop.tools._edit_checks import as_label, as_number, as_spacing
from segloop.tools._label_edit import edit_per_label, pad_box

__all__ = ["closing", "gaussian", "grow", "median", "opening", "shrink"]


def _distance_outside(mask: np.ndarray, sp) -> np.ndarray:
    """Distance of each voxel to the nearest voxel of ``mask`` (0 inside)."""
    return edt.edt(np.ascontiguousarray(~mask), anisotropy=tuple(sp), black_border=False)


def _distance_inside(mask: np.ndarray, sp) -> np.ndarray:
    """Distance of each voxel of ``mask`` to the nearest voxel outside it (0 outside)."""
    return edt.edt(np.ascontiguousarray(mask), anisotropy=tuple(sp), black_border=False)


def _setup(label, size, name, spacing):
    lab = as_label(label)
    sp = np.asarray(as_spacing(spacing, lab.ndim))
    return lab, as_number(size, name), sp


def _reach(size: float, sp: np.ndarray, times: int = 1) -> np.ndarray:
    return (np.ceil(times * size / sp) + 1).astype(int)


def grow(label, *, distance_mm, spacing=None, value=None) -> np.ndarray:
    """Grow each label by ``distance_mm`` into the background (exact Euclidean margin).

    Parameters
    ----------
    label : array_like
        2D or 3D label map.
    distance_mm : float
        Margin in physical units (>= 0): a voxel is added when its centre
        lies within this distance of a voxel of the label.
    spacing : sequence of float, optional
        Voxel size in array order (default 1).
    value : int, optional
        Only grow this label (default: every label; the nearest wins).

    Returns
    -------
    ndarray
        The grown label map (a new array).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((5, 5), np.uint8); lab[2, 2] = 1
    >>> grow(lab, distance_mm=2, spacing=(2.0, 1.0))[:, 2]
    array([0, 1, 1, 1, 0], dtype=uint8)
    """
    lab, d, sp = _setup(label, distance_mm, "distance_mm", spacing)
    if value is not None or int(lab.max()) <= 1:
        return edit_per_label(lab, lambda m: _distance_outside(m, sp) <= d, value=value,
                              pad=_reach(d, sp))
    best = np.full(lab.shape, np.inf, np.float32)  # distance to the nearest label so far
    out = lab.copy()
    for v, box in enumerate(ndi.find_objects(lab), start=1):
        if box is None:
            continue
        box = pad_box(box, _reach(d, sp), lab.shape)
        sub = lab[box]
        dist = _distance_outside(sub == v, sp)
        take = (dist <= d) & (sub == 0) & (dist < best[box])
        best[box][take] = dist[take]
        out[box][take] = v
    return out


def shrink(label, *, distance_mm, spacing=None, value=None) -> np.ndarray:
    """Shrink each label by ``distance_mm`` (exact Euclidean erosion by a ball).

    A voxel stays when no voxel outside its label (background or another
    label) lies within ``distance_mm`` of it.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((7, 7), np.uint8); lab[1:6, 1:6] = 1
    >>> int(shrink(lab, distance_mm=1).sum()), int(shrink(lab, distance_mm=2).sum())
    (9, 1)
    """
    lab, d, sp = _setup(label, distance_mm, "distance_mm", spacing)
    return edit_per_label(lab, lambda m: _distance_inside(m, sp) > d, value=value, pad=1)


def closing(label, *, radius_mm, spacing=None, value=None) -> np.ndarray:
    """Morphological closing by a ball of ``radius_mm``: fills gaps and dents.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[1, 1, 0, 1, 1]], np.uint8)
    >>> closing(lab, radius_mm=1)
    array([[1, 1, 1, 1, 1]], dtype=uint8)
    """
    lab, r, sp = _setup(label, radius_mm, "radius_mm", spacing)

    def edit(m):
        grown = _distance_outside(m, sp) <= r
        return _distance_inside(grown, sp) > r

    return edit_per_label(lab, edit, value=value, pad=_reach(r, sp, 2))


def opening(label, *, radius_mm, spacing=None, value=None) -> np.ndarray:
    """Morphological opening by a ball of ``radius_mm``: removes spurs and thin bridges.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((5, 9), np.uint8); lab[1:4, 0:3] = 1; lab[2, 3:6] = 1
    >>> opening(lab, radius_mm=1)[2]
    array([1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=uint8)
    """
    lab, r, sp = _setup(label, radius_mm, "radius_mm", spacing)

    def edit(m):
        core = _distance_inside(m, sp) > r
        return (_distance_outside(core, sp) <= r) & m if core.any() else core

    return edit_per_label(lab, edit, value=value, pad=1)


def median(label, *, radius_mm, spacing=None, value=None) -> np.ndarray:
    """Majority filter: a voxel takes a label when most of the box around it has it.

    The box spans ``round(radius_mm / spacing)`` voxels on each side along each
    axis; only its voxels inside the image vote (ties keep the label out).
    For a binary mask this is the median filter.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((6, 7), np.uint8); lab[1:5, 1:5] = 1; lab[2, 2] = 0; lab[5, 6] = 1
    >>> median(lab, radius_mm=1)
    array([[0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 0, 0, 0],
           [0, 1, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    lab, r, sp = _setup(label, radius_mm, "radius_mm", spacing)
    size = 2 * np.rint(r / sp).astype(int) + 1

    def edit(m):
        votes = ndi.uniform_filter(m.astype(np.float32), size=size, mode="constant")
        voters = 1.0  # the share of each window that lies inside the image, axis by axis
        for axis, (n, k) in enumerate(zip(m.shape, size, strict=True)):
            inside = ndi.uniform_filter1d(np.ones(n, np.float32), k, mode="constant")
            voters = voters * inside.reshape([-1 if a == axis else 1 for a in range(m.ndim)])
        return votes > 0.5 * voters + 1e-6

    return edit_per_label(lab, edit, value=value, pad=size)  # no label voxel votes past it


def gaussian(label, *, sigma_mm, spacing=None, value=None) -> np.ndarray:
    """Blur each label's mask by a Gaussian of ``sigma_mm`` and keep where it exceeds 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((9, 9), np.uint8); lab[2:7, 2:7] = 1
    >>> g = gaussian(lab, sigma_mm=1.0)
    >>> int(g[4, 4]), int(g[2, 2]), int(g.sum()) < 25
    (1, 0, True)
    """
    lab, s, sp = _setup(label, sigma_mm, "sigma_mm", spacing)
    sigma = s / sp

    def edit(m):
        return ndi.gaussian_filter(m.astype(np.float32), sigma, mode="nearest", truncate=3.0) > 0.5

    return edit_per_label(lab, edit, value=value, pad=np.ceil(3 * sigma).astype(int) + 1)
