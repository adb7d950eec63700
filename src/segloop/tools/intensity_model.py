"""Intensity models of seed regions: the regional term of graph cuts.

A model is fitted on the intensities of the voxels a user marked (or of a
current segmentation) and gives, for any intensity, its negative
log-likelihood under the model. Two kinds, both multi-channel (RGB) aware:

* :class:`HistogramModel` -- a smoothed histogram on a regular grid of bins
  (joint over channels), the regional term of Boykov & Jolly (2001);
* :class:`GaussianMixture` -- a Gaussian mixture (full covariances) fitted by
  expectation-maximisation, as in GrabCut (Rother et al. 2004).

Per-voxel costs are looked up rather than evaluated: :func:`quantize` maps
the image once to integer codes on a grid of levels, a model is evaluated
once per code (:meth:`nll` on :attr:`Quantized.centres`) and the voxel costs
are ``table[codes]``. With 256 grey levels (32 per colour channel) the
rounding is far below the noise of medical images.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> dark, bright = rng.normal(0.2, 0.05, 500), rng.normal(0.8, 0.05, 500)
>>> gmm = fit_gmm(np.concatenate([dark, bright]), n_components=2)
>>> np.round(np.sort(gmm.means[:, 0]), 1)
array([0.2, 0.8])
>>> hist = fit_histogram(bright, lo=[0.0], hi=[1.0], bins=32)
>>> bool(hist.nll([[0.8]])[0] < hist.nll([[0.2]])[0])
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.tools.cut_checks import check_int

__all__ = ["MODELS", "GaussianMixture", "HistogramModel", "Quantized", "fit_gmm",
           "fit_histogram", "fit_model", "quantize"]

#: Names of the model kinds accepted by :func:`fit_model` (and ``model=`` of the cut tools).
MODELS = ("histogram", "gmm")

_LOG_2PI = float(np.log(2.0 * np.pi))


def _as_samples(samples, name: str = "samples") -> np.ndarray:
    """``(n,)`` or ``(n, C)`` values as a finite float64 ``(n, C)`` array."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(
            f"{name} must be a non-empty (n,) or (n, channels) array of finite numbers, "
            f"got shape {np.shape(samples)}")
    return arr


@dataclass(frozen=True)
class Quantized:
    """An image mapped to integer codes on a regular grid of intensity levels.

    Attributes
    ----------
    codes : ndarray of uint8, uint16 or int32
        (the smallest that holds ``levels**C`` codes: uint8 for 256 grey levels)
        Per voxel (spatial shape), ``sum_c level_c * levels**c``.
    centres : ndarray, shape (levels**C, C)
        Intensity at the centre of every code.
    lo, hi : ndarray, shape (C,)
        Intensity range mapped to the levels, per channel.
    levels : int
        Levels per channel.
    """

    codes: np.ndarray
    centres: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    levels: int

    def costs(self, model) -> np.ndarray:
        """Per-voxel negative log-likelihood under ``model`` (float32, spatial shape)."""
        return model.nll(self.centres).astype(np.float32)[self.codes]

    def cost_difference(self, fg_model, bg_model, codes=None) -> np.ndarray:
        """Per voxel, ``costs(bg_model) - costs(fg_model)`` (float32), with one look-up.

        ``codes`` (default :attr:`codes`) picks the voxels.
        """
        table = bg_model.nll(self.centres).astype(np.float32)
        table -= fg_model.nll(self.centres).astype(np.float32)
        return table[self.codes if codes is None else codes]


def quantize(image: np.ndarray, *, channel_axis: int | None = None,
             levels: int | None = None) -> Quantized:
    """Map an image to codes on ``levels`` levels per channel between its min and max.

    Parameters
    ----------
    image : ndarray
        Finite intensities, any number of spatial axes.
    channel_axis : int, optional
        Axis of the channels (e.g. ``-1`` for RGB); None for a grey image.
    levels : int, optional
        Levels per channel; default 256 for one channel, 32 for several.

    Returns
    -------
    Quantized

    Examples
    --------
    >>> q = quantize(np.array([[0.0, 0.5], [1.0, 1.0]]), levels=3)
    >>> q.codes
    array([[0, 1],
           [2, 2]], dtype=uint8)
    >>> q.centres[:, 0]
    array([0. , 0.5, 1. ])
    """
    arr = np.asarray(image)
    if channel_axis is not None:
        arr = np.moveaxis(arr, channel_axis, -1)
    else:
        arr = arr[..., None]
    n_ch = arr.shape[-1]
    if levels is None:
        levels = 256 if n_ch == 1 else 32
    check_int(levels, "levels", 2)
    if levels ** n_ch > 2**24:
        raise InvalidArgumentError(f"levels must be >= 2 and levels**channels <= 2**24, got "
                                   f"levels={levels} with {n_ch} channels")
    lo = np.array([arr[..., c].min() for c in range(n_ch)], dtype=np.float64)
    hi = np.array([arr[..., c].max() for c in range(n_ch)], dtype=np.float64)
    step = np.where(hi > lo, (hi - lo) / (levels - 1), 1.0)
    n_codes = levels**n_ch
    dtype = np.uint8 if n_codes <= 2**8 else np.uint16 if n_codes <= 2**16 else np.int32
    codes = None
    for c in range(n_ch):
        scaled = np.subtract(arr[..., c], np.float32(lo[c]), dtype=np.float32)
        scaled *= np.float32(1.0 / step[c])
        scaled += np.float32(0.5)
        level = scaled.astype(dtype)
        if c:
            level *= dtype(levels**c)
            codes += level
        else:
            codes = level
    grid = np.indices((levels,) * n_ch).reshape(n_ch, -1)[::-1].T  # code order: channel 0 fastest
    centres = lo + grid * step
    return Quantized(codes, centres, lo, hi, int(levels))


@dataclass(frozen=True)
class HistogramModel:
    """A smoothed joint histogram of intensities on a regular grid of bins.

    Attributes
    ----------
    lo, hi : ndarray, shape (C,)
        Range covered by the bins, per channel; values outside use the edge bins.
    log_density : ndarray, shape (bins,) * C
        Log probability of each bin (sums to one over bins, floored).
    """

    lo: np.ndarray
    hi: np.ndarray
    log_density: np.ndarray

    def bin_index(self, values) -> tuple[np.ndarray, ...]:
        """Bin of each of ``values`` (``(n,)`` or ``(n, C)``), one index array per channel."""
        vals = _as_samples(values, "values")
        bins = self.log_density.shape[0]
        width = np.where(self.hi > self.lo, (self.hi - self.lo) / bins, 1.0)
        idx = np.floor((vals - self.lo) / width).astype(np.int64)
        return tuple(np.clip(idx, 0, bins - 1).T)

    def nll(self, values) -> np.ndarray:
        """Negative log-likelihood of each of ``values`` (``(n,)`` or ``(n, C)``)."""
        return -self.log_density[self.bin_index(values)]


def fit_histogram(samples, *, lo, hi, bins: int = 64, smoothing: float = 1.0,
                  floor: float = 1e-3) -> HistogramModel:
    """Fit a smoothed histogram to ``samples``.

    Parameters
    ----------
    samples : array_like, shape (n,) or (n, C)
        Intensities of the region (C channels).
    lo, hi : sequence of C float
        Range of the bins per channel (use the image's range so that the
        histograms of two regions share their bins).
    bins : int
        Bins per channel.
    smoothing : float
        Standard deviation, in bins, of the Gaussian that smooths the counts
        (Parzen window); 0 for none.
    floor : float
        Every bin gets at least ``floor / bins**C`` probability before
        normalisation, so that an intensity never seen costs a finite amount.

    Returns
    -------
    HistogramModel

    Examples
    --------
    >>> h = fit_histogram([0.1, 0.1, 0.9], lo=[0.0], hi=[1.0], bins=2, smoothing=0)
    >>> np.round(np.exp(h.log_density), 3)
    array([0.667, 0.333])
    """
    vals = _as_samples(samples)
    lo, hi = np.asarray(lo, np.float64).ravel(), np.asarray(hi, np.float64).ravel()
    if lo.shape != (vals.shape[1],) or hi.shape != lo.shape:
        raise InvalidArgumentError(f"lo and hi must have one value per channel "
                                   f"({vals.shape[1]}), got lo={lo!r}, hi={hi!r}")
    bins = check_int(bins, "bins", 1, 2**24)
    if bins ** vals.shape[1] > 2**24:
        raise InvalidArgumentError(f"bins**channels must be <= 2**24, got bins={bins} with "
                                   f"{vals.shape[1]} channels")
    model = HistogramModel(lo, hi, np.zeros((bins,) * vals.shape[1]))
    flat = np.ravel_multi_index(model.bin_index(vals), model.log_density.shape)
    counts = np.bincount(flat, minlength=model.log_density.size).astype(np.float64)
    counts = counts.reshape(model.log_density.shape)
    if smoothing > 0:
        counts = ndi.gaussian_filter(counts, smoothing, mode="constant")
    prob = counts / counts.sum()
    prob = prob + floor / prob.size
    return HistogramModel(lo, hi, np.log(prob / prob.sum()))


@dataclass(frozen=True)
class GaussianMixture:
    """A Gaussian mixture with full covariances.

    Attributes
    ----------
    weights : ndarray, shape (K,)
    means : ndarray, shape (K, C)
    covariances : ndarray, shape (K, C, C)
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    def component_log_pdf(self, values) -> np.ndarray:
        """``log w_k + log N(x | mu_k, S_k)`` for each value and component, shape (n, K)."""
        vals = _as_samples(values, "values")
        chol = np.linalg.cholesky(self.covariances)  # (K, C, C)
        whiten = np.linalg.inv(chol)
        z = np.einsum("kij,nkj->nki", whiten, vals[:, None, :] - self.means[None])
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        const = np.log(self.weights) - 0.5 * (log_det + vals.shape[1] * _LOG_2PI)
        return const - 0.5 * np.einsum("nki,nki->nk", z, z)

    def nll(self, values) -> np.ndarray:
        """Negative log-likelihood of each of ``values`` (``(n,)`` or ``(n, C)``)."""
        return -_logsumexp_rows(self.component_log_pdf(values))


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]


def _initial_groups(vals: np.ndarray, k: int) -> np.ndarray:
    """Deterministic start: split groups in two until there are ``k`` of them.

    The group of largest spread is split at its mean across its principal axis
    (Orchard & Bouman 1991, as in GrabCut).
    """
    groups = np.zeros(len(vals), dtype=np.int64)
    for new in range(1, k):
        best = (-1.0, 0, None)
        for g in range(new):
            members = vals[groups == g]
            if len(members) < 2:
                continue
            centred = members - members.mean(axis=0)
            spread, axes = np.linalg.eigh(centred.T @ centred / len(members))
            if spread[-1] > max(best[0], 0.0):
                best = (spread[-1], g, axes[:, -1])
        _, g, axis = best
        if axis is None:
            break
        members = np.flatnonzero(groups == g)
        side = (vals[members] - vals[members].mean(axis=0)) @ axis > 0
        groups[members[side]] = new
    return groups


def fit_gmm(samples, *, n_components: int = 5, iterations: int = 10, tol: float = 1e-4,
            max_samples: int = 20000, reg: float = 1e-3) -> GaussianMixture:
    """Fit a Gaussian mixture to ``samples`` by expectation-maximisation.

    Parameters
    ----------
    samples : array_like, shape (n,) or (n, C)
        Intensities of the region (C channels).
    n_components : int
        Number of Gaussians K (fewer when there are fewer distinct samples).
    iterations : int
        Maximum EM iterations.
    tol : float
        Stop when the mean log-likelihood improves by less than this.
    max_samples : int
        Larger sample sets are thinned (every k-th sample) before fitting.
    reg : float
        Added to the covariance diagonals, relative to each channel's overall
        variance, so that a component on a single value stays proper.

    Returns
    -------
    GaussianMixture
        Deterministic: the start splits the samples in two, across the
        principal axis of the most spread group, until there are K groups
        (Orchard & Bouman 1991, as GrabCut does); no random numbers are drawn.

    Examples
    --------
    >>> g = fit_gmm([[0, 0], [0, 1], [5, 5], [5, 6]], n_components=2)
    >>> np.round(g.means, 1)
    array([[0. , 0.5],
           [5. , 5.5]])
    """
    vals = _as_samples(samples)
    n_components = check_int(n_components, "n_components", 1)
    iterations = check_int(iterations, "iterations", 0)
    max_samples = check_int(max_samples, "max_samples", 1)
    vals = vals[:: -(-len(vals) // max_samples)]
    n, c = vals.shape
    k = int(min(n_components, len(np.unique(vals, axis=0))))
    ridge = reg * np.diag(np.maximum(vals.var(axis=0), 1e-12)) + 1e-12 * np.eye(c)
    groups = _initial_groups(vals, k)
    resp = np.eye(groups.max() + 1)[groups]
    k = resp.shape[1]
    previous = -np.inf
    for step in range(iterations + 1):
        nk = resp.sum(axis=0) + 1e-12
        means = (resp.T @ vals) / nk[:, None]
        diff = vals[:, None, :] - means[None]
        covs = np.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk[:, None, None] + ridge
        gmm = GaussianMixture(nk / n, means, covs)
        if step == iterations:
            break
        logp = gmm.component_log_pdf(vals)
        total = _logsumexp_rows(logp)
        resp = np.exp(logp - total[:, None])
        mean_ll = float(total.mean())
        if mean_ll - previous < tol:
            break
        previous = mean_ll
    return gmm


def fit_model(kind: str, samples, *, lo, hi, **options):
    """Fit a model of kind ``"histogram"`` or ``"gmm"`` (see :data:`MODELS`).

    ``lo`` / ``hi`` (the image range per channel) are used by the histogram;
    ``options`` go to :func:`fit_histogram` or :func:`fit_gmm`.

    Examples
    --------
    >>> type(fit_model("gmm", [0.0, 1.0, 2.0], lo=[0], hi=[2])).__name__
    'GaussianMixture'
    """
    if kind == "histogram":
        return fit_histogram(samples, lo=lo, hi=hi, **options)
    if kind == "gmm":
        return fit_gmm(samples, **options)
    raise InvalidArgumentError(f"model must be one of {', '.join(MODELS)}, got model={kind!r}")
