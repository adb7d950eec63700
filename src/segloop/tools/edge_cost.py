"""Edge costs of intelligent scissors (Mortensen & Barrett), spacing-aware.

The cost of the link from pixel ``p`` to its 8-neighbour ``q`` is

``l(p, q) = (w_Z f_Z(q) + w_G f_G(q) + w_D f_D(p, q) + w_L) * |q - p| / s``

(divided by the sum of the weights) with ``f_Z`` 0 on edge pixels and 1
elsewhere, ``f_G = 1 - G / G_max`` for the gradient magnitude ``G``
(``G_max`` its 99.5th percentile), ``f_D`` the gradient-direction term
that favours paths running along edges and penalises sharp turns, and
``w_L`` a cost of length alone. Edge pixels are the Laplacian-of-Gaussian
zero crossings (where the gradient exceeds 5 % of ``G_max``, so that noise in
flat regions does not count) and, for the links, the Canny edges too
(:func:`canny_edges`: where ``G`` is largest across the edge and above its
60th percentile, in chains that reach its 80th), as OpenCV's intelligent
scissors use them; the direction-free :func:`local_cost` (fast marching, 2D
and 3D) has the zero crossings only. ``|q - p|`` is the physical length of the link
and ``s`` the finest pixel size, so that a path's cost approximates the
integral of the local cost along it (Mortensen & Barrett scale only ``f_G`` by
the link length; scaling the whole cost keeps anisotropic pixels right). An
intensity window clips the image first, so that only edges inside it count; a
multi-channel image (``channel_axis``) sums the squared gradients and
Laplacians of its channels (the direction is the strongest channel's).

References
----------
.. [1] E. N. Mortensen and W. A. Barrett, "Interactive segmentation with
       intelligent scissors", Graphical Models and Image Processing 60(5),
       349-384, 1998.
.. [2] J. Canny, "A computational approach to edge detection", IEEE TPAMI
       8(6), 679-698, 1986.

Examples
--------
>>> import numpy as np
>>> image = np.zeros((6, 6)); image[:, 3:] = 1.0
>>> cost = local_cost(image)
>>> bool(cost[:, 2:4].mean() < cost[:, 0].mean())
True
>>> edge_costs(image).links.shape
(8, 6, 6)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.io.checks import check_spacing

__all__ = ["CANNY_QUANTILES", "DEFAULT_WEIGHTS", "MAX_COST_PER_LENGTH", "MIN_SIGMA", "OFFSETS",
           "EdgeCosts", "canny_edges", "check_image", "check_sigma", "check_window",
           "edge_costs", "local_cost"]

#: The 8 neighbour offsets ``(dy, dx)``, in the order of the link axis.
OFFSETS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])

#: Weights of the edge-pixel term (``zero_crossing``: LoG zero crossings and, in 2D, Canny
#: edges), gradient magnitude, gradient direction and length (Mortensen & Barrett used 0.43,
#: 0.14, 0.43 and no length term; these did better on chest X-ray lungs and CT organ slices,
#: and the length term keeps paths from wandering along noise and weak inner edges: measured
#: with the simulated annotator on the clicks benchmark's 2D objects).
DEFAULT_WEIGHTS = {"zero_crossing": 0.3, "magnitude": 0.3, "direction": 0.4, "length": 0.1}

#: Canny edges (2D): quantiles of the gradient magnitude for the weak and strong thresholds.
CANNY_QUANTILES = (0.6, 0.8)

_FLOOR = 1e-3  # every link costs at least this much per unit length (no free detours)

#: Upper bound of a link's cost per pixel of length (the weighted mean of terms of at most 1).
MAX_COST_PER_LENGTH = 1.0 + _FLOOR


def check_image(image, *, ndim: int | None = 2, channel_axis: int | None = None,
                spacing=None) -> tuple[np.ndarray, np.ndarray]:
    """Validate an image and its spacing; return ``(float image, spacing)``.

    The image comes back as float64 with the channels last, ``(y, x, c)`` (one
    channel for a grey image). ``ndim=None`` accepts 2D and 3D images.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A wrong number of axes, an empty image, NaN/Inf values or a bad spacing.

    Examples
    --------
    >>> arr, sp = check_image(np.zeros((4, 5, 3)), channel_axis=-1)
    >>> arr.shape, sp.tolist()
    ((4, 5, 3), [1.0, 1.0])
    """
    arr = np.asarray(image)
    if ndim is None:
        ndim = _spatial_ndim(arr, channel_axis)
    if channel_axis is not None:
        if not isinstance(channel_axis, numbers.Integral) or isinstance(channel_axis, bool) \
                or arr.ndim != ndim + 1 or not -arr.ndim <= channel_axis < arr.ndim:
            raise InvalidArgumentError(
                f"image with channel_axis={channel_axis} must have {ndim + 1} axes, "
                f"got shape {arr.shape}")
        arr = np.moveaxis(arr, channel_axis, -1)
    elif arr.ndim != ndim:
        raise InvalidArgumentError(
            f"image must be {ndim}D (pass channel_axis=-1 for colour), got shape {arr.shape}")
    else:
        arr = arr[..., None]
    if min(arr.shape[:-1]) < 2 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InvalidArgumentError(f"image must be a real array of size >= 2, got {arr.shape}, "
                                   f"dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"image has {int((~np.isfinite(arr)).sum())} NaN/Inf values")
    return arr, np.asarray(check_spacing(spacing, ndim), dtype=float)


def check_window(intensity_window) -> tuple[float, float] | None:
    """Validate an intensity window: None, or two finite numbers ``lo < hi``.

    Examples
    --------
    >>> check_window([0, 80])
    (0.0, 80.0)
    """
    if intensity_window is None:
        return None
    try:
        lo, hi = (float(v) if _is_number(v) else float("nan") for v in intensity_window)
    except (TypeError, ValueError):
        lo = hi = float("nan")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InvalidArgumentError(
            f"intensity_window must be two finite numbers lo < hi, got {intensity_window!r}")
    return lo, hi


def _is_number(value) -> bool:
    """A real number that is not a bool (nor a string)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


#: Smallest ``sigma`` (pixels): below it the Gaussian derivative kernels have radius 0.
MIN_SIGMA = 0.25


def check_sigma(sigma, shape) -> float:
    """Validate the scale of the image features: a number in ``[MIN_SIGMA, max(shape)]``.

    A scale beyond the image's largest extent (in pixels of the finest axis)
    smooths every feature away, and its Gaussian kernel would not fit in memory.

    Examples
    --------
    >>> check_sigma(2, (64, 80))
    2.0
    """
    top = max(shape)
    if not (_is_number(sigma) and np.isfinite(sigma) and MIN_SIGMA <= sigma <= top):
        raise InvalidArgumentError(
            f"sigma must be a number of pixels in [{MIN_SIGMA}, {top}] (the image's largest "
            f"extent), got sigma={sigma!r}")
    return float(sigma)


def _window(arr: np.ndarray, intensity_window) -> np.ndarray:
    window = check_window(intensity_window)
    if window is None:
        return arr
    lo, hi = window
    return (np.clip(arr, lo, hi) - lo) / (hi - lo)


def _features(arr, sp, sigma):
    """Gradient (strongest channel's components), magnitude and Laplacian of Gaussian."""
    ndim = arr.ndim - 1
    s = sp.min() * float(sigma) / sp
    grad = mag2 = lap = None
    for c in range(arr.shape[-1]):
        ch = arr[..., c].astype(np.float32)  # float32 derivatives: a third faster
        d, second = [], 0.0
        for k in range(ndim):  # smoothed across axis k once, for its first and second derivative
            across = ch
            for j in range(ndim):
                if j != k:
                    across = ndi.gaussian_filter1d(across, s[j], axis=j)
            d.append(ndi.gaussian_filter1d(across, s[k], axis=k, order=1) / np.float32(sp[k]))
            second = second + ndi.gaussian_filter1d(across, s[k], axis=k, order=2) / np.float32(
                sp[k] ** 2)
        m2 = sum(g * g for g in d)
        if grad is None:
            grad, mag2, lap = d, m2, second
            continue
        stronger = m2 > sum(g * g for g in grad)  # direction of the strongest channel
        grad = [np.where(stronger, new, old) for new, old in zip(d, grad, strict=True)]
        mag2, lap = mag2 + m2, lap + second
    return grad, np.sqrt(mag2), lap


def _zero_crossings(lap: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Pixels where the Laplacian changes sign towards an axis neighbour and is the nearer to 0."""
    out = np.zeros(lap.shape, dtype=bool)
    for axis in range(lap.ndim):
        a = lap.take(np.arange(lap.shape[axis] - 1), axis=axis)
        b = lap.take(np.arange(1, lap.shape[axis]), axis=axis)
        cross = (a * b) < 0
        first = cross & (np.abs(a) <= np.abs(b))
        second = cross & (np.abs(b) < np.abs(a))
        pad_lo, pad_hi = [(0, 0)] * lap.ndim, [(0, 0)] * lap.ndim
        pad_lo[axis], pad_hi[axis] = (0, 1), (1, 0)
        out |= np.pad(first, pad_lo) | np.pad(second, pad_hi)
    return out & strong


@dataclass(frozen=True)
class EdgeCosts:
    """Per-pixel edge features and the costs of the 8 links leaving each pixel.

    Attributes
    ----------
    links : ndarray of float32, shape (8, ny, nx), or None
        ``links[k, y, x]`` is the cost of the link from ``(y, x)`` to
        ``(y, x) + OFFSETS[k]`` (``inf`` for links leaving the image); None
        when not asked for.
    local : ndarray, the image's spatial shape
        Direction-free cost ``(w_Z f_Z + w_G f_G) / (w_Z + w_G)`` in [0, 1].
    magnitude : ndarray, the image's spatial shape
        Normalised gradient magnitude in [0, 1] (1 at the strongest edges).
    spacing : ndarray
        Pixel size per axis.
    """

    links: np.ndarray | None
    local: np.ndarray
    magnitude: np.ndarray
    spacing: np.ndarray


def _normalised(image, spacing, channel_axis, intensity_window, sigma, ndim=2):
    arr, sp = check_image(image, ndim=ndim, channel_axis=channel_axis, spacing=spacing)
    sigma = check_sigma(sigma, arr.shape[:-1])
    arr = _window(arr, intensity_window)
    grad, mag, lap = _features(arr, sp, sigma)
    top = float(np.percentile(mag, 99.5))
    norm = np.clip(mag / top, 0.0, 1.0, dtype=np.float64) if top > 0 else np.zeros(mag.shape)
    zero = _zero_crossings(lap, norm > 0.05)
    return sp, grad, norm, zero, mag


def canny_edges(grad, magnitude: np.ndarray, spacing, quantiles=CANNY_QUANTILES) -> np.ndarray:
    """Canny's edge pixels of a 2D image from its gradient (Canny 1986).

    Non-maximum suppression (a pixel stays if its ``magnitude`` is no smaller
    than that of its two neighbours across the edge, along the gradient
    direction rounded to 45 degrees), then hysteresis: pixels above the
    first quantile of ``magnitude``, in 8-connected chains holding one above
    the second.

    Parameters
    ----------
    grad : sequence of 2 ndarray
        Gradient components ``(d/dy, d/dx)`` in physical units.
    magnitude : ndarray
        Gradient magnitude (for several channels, of all of them).
    spacing : sequence of 2 float
        Pixel size.
    quantiles : (float, float)
        The weak and strong thresholds, as quantiles of ``magnitude``.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> image = np.zeros((7, 9)); image[:, 4:] = 1.0
    >>> grad, mag, _ = _features(image[..., None], np.ones(2), 1.0)
    >>> canny_edges(grad, mag, (1.0, 1.0)).any(axis=0).astype(int).tolist()
    [0, 0, 0, 1, 1, 0, 0, 0, 0]
    """
    # the gradient direction in pixel steps, folded onto [0, pi): 0 across columns
    angle = np.arctan2(grad[0] * spacing[0], grad[1] * spacing[1]) % np.pi
    sector = np.rint(angle / (np.pi / 4)).astype(np.int8) % 4  # 0, 45, 90, 135 degrees
    padded = np.pad(magnitude, 1, mode="edge")
    ny, nx = magnitude.shape
    keep = np.zeros(magnitude.shape, dtype=bool)
    for k, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
        behind = padded[1 - dy:1 - dy + ny, 1 - dx:1 - dx + nx]
        keep |= (sector == k) & (magnitude >= ahead) & (magnitude >= behind)
    weak, strong = np.percentile(magnitude, [100.0 * q for q in quantiles])
    keep &= magnitude > weak
    labels, n = ndi.label(keep, np.ones((3, 3), bool))
    good = np.zeros(n + 1, dtype=bool)
    good[labels[keep & (magnitude >= strong)]] = True
    good[0] = False
    return good[labels]


def _weights(weights) -> tuple[float, float, float, float]:
    w = dict(DEFAULT_WEIGHTS)
    bad = set(weights or {}) - set(w)
    if bad:
        raise InvalidArgumentError(f"weights has unknown keys {sorted(bad)}; known: {sorted(w)}")
    w.update(weights or {})
    vals = tuple(float(w[k]) if _is_number(w[k]) else float("nan")
                 for k in ("zero_crossing", "magnitude", "direction", "length"))
    if not all(np.isfinite(v) and v >= 0 for v in vals) or sum(vals) <= 0:
        raise InvalidArgumentError(f"weights must be non-negative, not all 0, got {weights!r}")
    return vals


def _spatial_ndim(image, channel_axis) -> int:
    ndim = np.ndim(image) - (channel_axis is not None)
    if ndim not in (2, 3):
        raise InvalidArgumentError(
            f"image must be 2D or 3D (plus a channel axis if channel_axis is given), "
            f"got shape {np.shape(image)} with channel_axis={channel_axis}")
    return ndim


def local_cost(image, *, spacing=None, channel_axis=None, intensity_window=None, sigma=1.0,
               weights=None) -> np.ndarray:
    """Direction-free edge cost per pixel (or voxel) in [0, 1]: low on edges.

    ``(w_Z f_Z + w_G f_G) / (w_Z + w_G)``, the part of the Mortensen & Barrett
    cost that does not depend on a link's direction; 2D or 3D.

    Parameters
    ----------
    image : array_like, 2D or 3D (plus a channel axis with ``channel_axis``)
        The image, ``(y, x)`` or ``(z, y, x)``.
    spacing : sequence of float, optional
        Pixel size per axis.
    channel_axis : int, optional
        Axis of the channels of a multi-channel image.
    intensity_window : (float, float), optional
        Clip the image to ``[lo, hi]`` first: only edges inside count.
    sigma : float
        Scale of the Gaussian derivatives, in pixels of the finest axis.
    weights : dict, optional
        Any of ``zero_crossing``, ``magnitude``, ``direction``, ``length``
        (the last two are ignored here).

    Returns
    -------
    ndarray of float, the image's spatial shape

    Examples
    --------
    >>> image = np.zeros((5, 8)); image[:, 4:] = 1.0
    >>> local_cost(image).argmin(axis=1).tolist()
    [3, 3, 3, 3, 3]
    """
    return edge_costs(image, spacing=spacing, channel_axis=channel_axis,
                      intensity_window=intensity_window, sigma=sigma, weights=weights,
                      links=False).local


def edge_costs(image, *, spacing=None, channel_axis=None, intensity_window=None, sigma=1.0,
               weights=None, links: bool = True) -> EdgeCosts:
    """Edge features and the costs of the 8 links leaving every pixel (Mortensen & Barrett).

    Parameters
    ----------
    image, spacing, channel_axis, intensity_window, sigma, weights
        As in :func:`local_cost`; ``weights`` default to :data:`DEFAULT_WEIGHTS`.
    links : bool
        Compute the link costs (2D only); otherwise ``links`` is None.

    Returns
    -------
    EdgeCosts

    Examples
    --------
    >>> image = np.zeros((5, 8)); image[:, 4:] = 1.0
    >>> ec = edge_costs(image)
    >>> bool(ec.links[6, 2, 3] < ec.links[4, 2, 3])   # along the edge is cheaper than across
    True
    """
    wz, wg, wd, wl = _weights(weights)
    ndim = _spatial_ndim(image, channel_axis)
    if links and ndim != 2:
        raise InvalidArgumentError(f"link costs need a 2D image, got shape {np.shape(image)}")
    sp, grad, norm, zero, mag = _normalised(image, spacing, channel_axis, intensity_window,
                                            sigma, ndim)
    local = (wz * (~zero) + wg * (1.0 - norm)) / (wz + wg) if wz + wg > 0 else 1.0 - norm
    out = None
    if links:
        edges = zero | canny_edges(grad, mag, sp) if norm.any() else zero
        out = _links(grad, norm, edges, sp, (wz, wg, wd, wl))
    return EdgeCosts(links=out, local=local, magnitude=norm, spacing=sp)


def _links(grad, norm, zero, sp, weights) -> np.ndarray:
    wz, wg, wd, wl = weights
    gy, gx = (g.astype(np.float32) for g in grad)
    ny, nx = norm.shape
    length = np.linalg.norm(OFFSETS * sp, axis=1)
    # unit edge direction D' (the gradient turned by 90 degrees), in physical coordinates; where
    # the gradient is 0 so are both components (arithmetic, not np.where: 10x faster)
    mag = np.hypot(gy, gx)
    safe = mag + (mag == 0)
    ey, ex = gx / safe, -gy / safe
    node = np.pad((wz * (~zero) + wg * (1.0 - norm) + wl).astype(np.float32), 1)
    links = np.full((8, ny, nx), np.inf, dtype=np.float32)
    total = wz + wg + wd + wl
    for k in range(4):  # a direction u and its opposite -u (OFFSETS[7 - k]) share D' . u
        (dy, dx), scale = OFFSETS[k], length[k] / sp.min()
        a = (ey * np.float32(dy * sp[0] / length[k]) + ex * np.float32(dx * sp[1] / length[k]))
        a = np.pad(a.clip(-1, 1), 1)  # D'(p) . u; 0 (acos = pi / 2) outside
        at_p = a[1:-1, 1:-1]
        acos_dp = np.arccos(np.abs(at_p))  # acos(|D'(p) . u|)
        # cost = (node(q) + wd 2 / (3 pi) f_D) * scale / total + floor * scale
        w_node, w_dir = np.float32(scale / total), np.float32(wd * 2 / (3 * np.pi) * scale / total)
        for sign, kk in ((1, k), (-1, 7 - k)):
            q = (slice(1 + sign * dy, 1 + sign * dy + ny), slice(1 + sign * dx, 1 + sign * dx + nx))
            # L(p, q) = +-(q - p), turned to agree with D'(p): +u where D'(p) . u >= 0 (> 0 for
            # the opposite link), else -u; d_q = D'(q) . L(p, q), and acos(-x) = pi - acos(x)
            turn = ((at_p >= 0) if sign > 0 else (at_p > 0)).astype(np.float32) * 2 - 1
            f_d = np.arccos(turn * a[q])
            f_d += acos_dp
            f_d *= w_dir
            f_d += node[q] * w_node
            inside = (slice(max(0, -sign * dy), ny - max(0, sign * dy)),
                      slice(max(0, -sign * dx), nx - max(0, sign * dx)))
            links[(kk,) + inside] = f_d[inside] + np.float32(_FLOOR * scale)
    return links
