"""Smoothing and margins of label maps, in millimetres.

* :func:`grow` / :func:`shrink` -- margin by a distance: exact Euclidean
  dilation / erosion by a ball of that radius in physical units, from one
  distance transform (the ``edt`` package, anisotropic);
* :func:`opening` / :func:`closing` -- shrink then grow / grow then shrink by
  the same radius (exact ball opening and closing);
* :func:`median` -- majority vote in a box of half-size ``radius_mm`` per axis
  (the median of a binary mask);
* :func:`gaussian` -- Gaussian blur of the mask (sigma in mm, kernel cut at
  :data:`GAUSSIAN_TRUNCATE` sigmas, edges extended), thresholded at 0.5.

Each works on every label of the map separately (or on ``value``), inside
that label's bounding box grown by the reach of the operation
(:func:`margin`, clipped to the image). Growth only
takes background voxels; where two labels grow into the same voxel, the
nearer one gets it. Outside the image counts neither as label nor as
background: an object touching the border is not eroded from it.

Sizes larger than the image cost no more than the image: a distance or
radius beyond the image's diagonal, or a median box beyond its extent,
selects the same voxels as the diagonal / the extent, so it is capped there;
a Gaussian kernel longer than the image along an axis is folded onto the
image (the part beyond each edge weighs that edge's value, exactly what
extending the edges gives), so a huge sigma costs at most a kernel of twice
the image's length and never allocates more than the image.

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
from scipy.special import erf

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import as_label, as_number, as_spacing
from segloop.tools._label_edit import edit_per_label, pad_box

__all__ = ["GAUSSIAN_TRUNCATE", "closing", "gaussian", "grow", "margin", "median", "opening",
           "shrink"]

#: The Gaussian kernel is cut at this many sigmas (as ``scipy.ndimage``'s ``truncate``).
GAUSSIAN_TRUNCATE = 3.0
#: Longest Gaussian kernel half-width (voxels) built explicitly; beyond, sums come from erf.
_EXPLICIT_RADIUS = 1 << 20


def _distance_outside(mask: np.ndarray, sp) -> np.ndarray:
    """Distance of each voxel to the nearest voxel of ``mask`` (0 inside)."""
    return edt.edt(np.ascontiguousarray(~mask), anisotropy=tuple(sp), black_border=False)


def _distance_inside(mask: np.ndarray, sp) -> np.ndarray:
    """Distance of each voxel of ``mask`` to the nearest voxel outside it (0 outside)."""
    return edt.edt(np.ascontiguousarray(mask), anisotropy=tuple(sp), black_border=False)


def _setup(label, size, name, spacing):
    """Checked label map, size (capped at the image's diagonal: larger changes nothing), spacing."""
    lab = as_label(label)
    sp = np.asarray(as_spacing(spacing, lab.ndim))
    return lab, min(as_number(size, name), _diagonal(lab.shape, sp)), sp


def _diagonal(shape, sp: np.ndarray) -> float:
    """The image's diagonal in physical units: no two voxel centres lie farther apart."""
    return float(np.linalg.norm(np.asarray(shape) * sp))


def _reach(size: float, sp: np.ndarray, shape, times: int = 1) -> np.ndarray:
    return np.minimum(np.ceil(times * size / sp) + 1, shape).astype(int)


def _median_half(radius: float, sp: np.ndarray, shape) -> np.ndarray:
    """Half-size of the median box in voxels, capped at the image: beyond it, it holds the same."""
    return np.minimum(np.rint(radius / sp), np.asarray(shape) - 1).astype(int)


def margin(operation: str, size_mm, spacing, shape) -> np.ndarray:
    """Voxels an operation adds around a label's bounding box (per axis, within the image).

    ``operation`` is a name of :data:`segloop.tools.smooth.OPERATIONS`; the
    benchmark uses this to give its reference call the tool's region.

    Examples
    --------
    >>> margin("grow", 2.0, (1.0, 0.5), (64, 64)).tolist()
    [3, 5]
    """
    sp = np.asarray(as_spacing(spacing, len(shape)))
    size = min(as_number(size_mm, "size_mm"), _diagonal(shape, sp))
    if operation == "grow":
        return _reach(size, sp, shape)
    if operation == "close":
        return _reach(size, sp, shape, 2)
    if operation in ("shrink", "open"):
        return np.ones(len(shape), int)
    if operation == "median":
        return np.minimum(2 * _median_half(size, sp, shape) + 1, shape)
    if operation == "gaussian":
        sigma = size / sp
        return np.minimum(np.ceil(GAUSSIAN_TRUNCATE * sigma).astype(int) + 1, shape)
    raise InvalidArgumentError(f"operation must be one of grow, shrink, open, close, median, "
                               f"gaussian, got operation={operation!r}")


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
                              pad=margin("grow", d, sp, lab.shape))
    best = np.full(lab.shape, np.inf, np.float32)  # distance to the nearest label so far
    out = lab.copy()
    for v, box in enumerate(ndi.find_objects(lab), start=1):
        if box is None:
            continue
        box = pad_box(box, margin("grow", d, sp, lab.shape), lab.shape)
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
    return edit_per_label(lab, lambda m: _distance_inside(m, sp) > d, value=value,
                          pad=margin("shrink", d, sp, lab.shape))


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

    return edit_per_label(lab, edit, value=value, pad=margin("close", r, sp, lab.shape))


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

    return edit_per_label(lab, edit, value=value, pad=margin("open", r, sp, lab.shape))


def median(label, *, radius_mm, spacing=None, value=None) -> np.ndarray:
    """Majority filter: a voxel takes a label when most of the box around it has it.

    The box spans ``round(radius_mm / spacing)`` voxels on each side along each
    axis (at most the image's extent: a larger box holds the same voxels);
    only its voxels inside the image vote (ties keep the label out).
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
    size = 2 * _median_half(r, sp, lab.shape) + 1

    def edit(m):
        votes = ndi.uniform_filter(m.astype(np.float32), size=size, mode="constant")
        voters = 1.0  # the share of each window that lies inside the image, axis by axis
        for axis, (n, k) in enumerate(zip(m.shape, size, strict=True)):
            inside = ndi.uniform_filter1d(np.ones(n, np.float32), k, mode="constant")
            voters = voters * inside.reshape([-1 if a == axis else 1 for a in range(m.ndim)])
        return votes > 0.5 * voters + 1e-6

    # no label voxel votes past the box's margin (one window)
    return edit_per_label(lab, edit, value=value, pad=margin("median", r, sp, lab.shape))


def _folded_kernel(sigma: float, n: int, truncate: float):
    """A Gaussian kernel of more than ``n - 1`` voxels' half-width, folded onto ``n`` voxels.

    Returns the kernel's weights at offsets ``-(n-1) .. n-1`` and, for each of
    the ``n`` output voxels, the weight falling beyond the first and beyond the
    last voxel (which edge extension gives to the edge values). Weights are
    normalised over the truncated kernel, as ``scipy.ndimage``'s. Half-widths
    up to :data:`_EXPLICIT_RADIUS` are summed explicitly; beyond, the sums come
    from ``erf`` (the midpoint rule's error, ~1/(24 sigma²), is then < 1e-12).
    """
    radius = int(truncate * sigma + 0.5)
    i = np.arange(n)
    if radius <= _EXPLICIT_RADIUS:
        d = np.arange(-radius, radius + 1, dtype=np.float64)
        w = np.exp(-0.5 * (d / sigma) ** 2)
        cum = np.cumsum(w / w.sum())  # cum[k]: weight at offsets -radius .. k - radius

        def below(offset):  # weight at offsets <= offset
            return cum[radius + offset]
    else:
        scale = np.sqrt(2.0) * sigma
        top = erf((radius + 0.5) / scale)

        def below(offset):
            return (erf((offset + 0.5) / scale) + top) / (2 * top)
    offsets = np.arange(-(n - 1), n)
    inner = np.diff(below(np.concatenate([[-n], offsets])))
    return inner, below(-i - 1), 1.0 - below(n - 1 - i)


def _blur(m: np.ndarray, sigma, truncate: float = GAUSSIAN_TRUNCATE) -> np.ndarray:
    """Gaussian blur of ``m`` (sigma in voxels per axis), edges extended ("nearest")."""
    out = m.astype(np.float32)
    for axis, (s, n) in enumerate(zip(sigma, out.shape, strict=True)):
        if s == 0 or n == 1:  # an axis of one voxel: extending it, every kernel gives it back
            continue
        if int(truncate * s + 0.5) < n:
            out = ndi.gaussian_filter1d(out, s, axis=axis, mode="nearest", truncate=truncate)
            continue
        inner, left, right = _folded_kernel(float(s), n, truncate)
        res = ndi.correlate1d(out, inner, axis=axis, mode="constant")
        along = [1] * out.ndim
        along[axis] = n
        first = np.take(out, [0], axis=axis)
        last = np.take(out, [n - 1], axis=axis)
        res += first * left.reshape(along).astype(np.float32)
        res += last * right.reshape(along).astype(np.float32)
        out = res
    return out


def gaussian(label, *, sigma_mm, spacing=None, value=None) -> np.ndarray:
    """Blur each label's mask by a Gaussian of ``sigma_mm`` and keep where it exceeds 0.5.

    The kernel is cut at :data:`GAUSSIAN_TRUNCATE` sigmas and the mask's
    edges are extended (``scipy.ndimage``'s ``mode="nearest"``); a kernel
    longer than the label's box is folded onto it (same result, bounded cost).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((9, 9), np.uint8); lab[2:7, 2:7] = 1
    >>> g = gaussian(lab, sigma_mm=1.0)
    >>> int(g[4, 4]), int(g[2, 2]), int(g.sum()) < 25
    (1, 0, True)
    """
    lab = as_label(label)
    sp = np.asarray(as_spacing(spacing, lab.ndim))
    sigma = as_number(sigma_mm, "sigma_mm") / sp
    pad = margin("gaussian", sigma_mm, sp, lab.shape)
    return edit_per_label(lab, lambda m: _blur(m, sigma) > 0.5, value=value, pad=pad)
