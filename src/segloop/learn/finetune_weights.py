"""The numerical parts of BIFSeg: the CRF, the loss weights and the weighted fine-tuning steps.

* :class:`ProbabilityCut` -- a graph cut (the CRF of BIFSeg, Wang et al. 2018)
  whose regional term is a probability map (``-log p`` for the object,
  ``-log(1 - p)`` for the background) and whose boundary term is the
  contrast-sensitive one of :func:`segloop.tools.cutgraph.boundary_weights`;
  scribbles are hard constraints; the graph is built once per region and
  re-solved from its previous flow when the probabilities change
  (:class:`segloop.tools.cutgraph.CutGraph`). With a box, the outside of the
  box is fixed background (:func:`segloop.tools.cutgraph.box_links`).
* :class:`ScribbleCosts` -- the scribbles' own regional costs added to the
  CNN's in the CRF: the geodesic prior of :mod:`segloop.tools.cutgraph` and
  the intensity histograms of :mod:`segloop.tools.intensity_model`, as
  segloop's graph cut uses them;
* :func:`pixel_weights` -- the per-pixel weights of the fine-tuning loss:
  ``weight`` on scribbled pixels, 0 on pixels whose label is uncertain (the
  CNN's probability within ``band`` of 0.5, or the cut's label opposite to a
  scribble geodesically closer than ``near``), 1 elsewhere.
* :func:`weighted_steps` -- Adam steps of the per-pixel weighted binary
  cross-entropy of one class's probability against the cut
  (:func:`class_log_probs` for softmax, sigmoid and normrelu outputs).
* :func:`geodesic_distance` -- the geodesic distance to a set of seeds in the
  image's metric (fast marching, :func:`segloop.tools.fast_marching.travel_time`;
  edges slow the front down, so a pixel across an edge from a scribble is far
  from it).

Examples
--------
>>> label = np.array([[1, 1, 1, 0, 0, 0]], bool)
>>> prob = np.array([[0.9, 0.9, 0.6, 0.2, 0.1, 0.1]])
>>> fg = np.zeros((1, 6), bool); fg[0, 0] = True
>>> bg = np.zeros((1, 6), bool); bg[0, 5] = True
>>> pixel_weights(label, prob, fg, bg, weight=5.0, near=0.0, band=0.2).tolist()
[[5.0, 1.0, 0.0, 1.0, 1.0, 5.0]]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.learn.networks import normalized_relu
from segloop.tools.cutgraph import (
    CutGraph,
    GeodesicPrior,
    boundary_weights,
    box_links,
    hard_capacity,
    keep_seeded,
    model_options,
    tlinks,
)
from segloop.tools.fast_marching import travel_time
from segloop.tools.graphcut import DEFAULT_BALANCE
from segloop.tools.intensity_model import fit_model, quantize

__all__ = ["PROBABILITY_FLOOR", "ProbabilityCut", "ScribbleCosts", "class_log_probs",
           "geodesic_distance", "geodesic_speed", "padded_logits", "pixel_weights",
           "probability_costs", "weighted_steps"]

#: Probabilities are clipped to ``[floor, 1 - floor]`` before their logarithm: a certain
#: CNN costs at most ``-log(floor)`` ~ 9.2 nats per pixel, which a scribble still overrules.
PROBABILITY_FLOOR = 1e-4


def probability_costs(probability) -> np.ndarray:
    """Per pixel, ``-log(1 - p) - (-log p)``: the background's cost minus the object's (nats).

    Examples
    --------
    >>> np.round(probability_costs(np.array([0.5, 0.9, 0.0])), 3).tolist()
    [0.0, 2.197, -9.21]
    """
    p = np.clip(np.asarray(probability, dtype=np.float64), PROBABILITY_FLOOR,
                1.0 - PROBABILITY_FLOOR)
    return (np.log(p) - np.log1p(-p)).astype(np.float32)


class ProbabilityCut:
    """The CRF of one region: boundary term fixed, regional term from probabilities.

    Parameters
    ----------
    pixels : ndarray, shape (spatial..., C)
        The region's intensities, channels last.
    spacing : sequence of float
        Voxel size in array order.
    lam : float
        Weight of the regional term (nats) against the boundary term (each
        n-link weighs at most 1).
    sigma : float, optional
        Intensity scale of the boundary term (default: from the region).
    box : (lo, hi), optional
        Only ``lo:hi`` is cut; the rest of the region is fixed background.
    connectivity : int
        1: 4/6-neighbours; ndim: 8/26-neighbours.

    Examples
    --------
    >>> img = np.zeros((1, 8, 1)); img[0, 4:] = 1.0               # an edge at x = 4
    >>> p = np.array([[0.9, 0.9, 0.8, 0.6, 0.4, 0.3, 0.1, 0.1]])  # unsure at the edge
    >>> cut = ProbabilityCut(img, spacing=(1, 1), lam=0.5)
    >>> cut.cut(p).astype(int).tolist()
    [[1, 1, 1, 1, 0, 0, 0, 0]]
    >>> bg = np.zeros((1, 8), bool); bg[0, 3] = True              # a background scribble
    >>> cut.cut(p, background=bg).astype(int).tolist()
    [[1, 1, 1, 0, 0, 0, 0, 0]]
    """

    def __init__(self, pixels: np.ndarray, *, spacing, lam: float, sigma=None, box=None,
                 connectivity: int = 1):
        self.shape = pixels.shape[:-1]
        self.lam, self.connectivity = float(lam), int(connectivity)
        self.window = tuple(slice(None) for _ in self.shape)
        self._out = None
        if box is None:
            self.weights, self.sigma = boundary_weights(pixels, spacing=spacing, sigma=sigma,
                                                        connectivity=connectivity)
            self.hard = hard_capacity(self.weights)
        else:
            lo, hi = box
            self.weights, self._out, self.hard, self.sigma = box_links(
                pixels, lo, hi, spacing=spacing, sigma=sigma, connectivity=connectivity)
            self.window = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        self._graph: CutGraph | None = None

    def cut(self, probability, foreground=None, background=None, *, prior=None,
            connected: bool = False) -> np.ndarray:
        """The cut of these probabilities and scribbles (bool, the region's shape).

        ``prior``: regional costs added to those of the probabilities (the
        background's minus the object's, nats; e.g. a weighted
        :func:`~segloop.tools.cutgraph.geodesic_prior`). ``connected``: keep
        only the pieces holding a foreground scribble (when there is one).
        """
        w = self.window
        fg = None if foreground is None else np.asarray(foreground, bool)[w]
        bg = None if background is None else np.asarray(background, bool)[w]
        diff = probability_costs(np.asarray(probability)[w])
        if prior is not None:
            diff += np.asarray(prior, dtype=np.float32)[w]
        source, sink = tlinks(diff, lam=self.lam, hard=self.hard, fg_seeds=fg, bg_seeds=bg)
        if self._out is not None:
            sink += self._out
        if self._graph is None:
            self._graph = CutGraph(self.weights, source, sink)
        else:
            self._graph.update(source, sink)
        inner = self._graph.mask()
        if connected and fg is not None and fg.any():
            inner = keep_seeded(inner, fg, connectivity=self.connectivity)
        out = np.zeros(self.shape, dtype=bool)
        out[w] = inner
        return out


class ScribbleCosts:
    """Regional costs from the scribbles themselves, for one region (added to the CNN's).

    ``geodesic`` times :class:`~segloop.tools.cutgraph.GeodesicPrior` (balance
    :data:`~segloop.tools.graphcut.DEFAULT_BALANCE`) plus ``intensity`` times
    the difference of the negative log-likelihoods under smoothed histograms
    of each class's scribbled pixels (refitted at every call), in nats,
    positive where the object is preferred. The region's speed map and
    intensity codes are computed once.

    Examples
    --------
    >>> img = np.zeros((1, 10, 1)); img[0, 5:] = 1.0
    >>> fg = np.zeros((1, 10), bool); fg[0, 0] = True
    >>> bg = np.zeros((1, 10), bool); bg[0, 9] = True
    >>> costs = ScribbleCosts(img, spacing=(1, 1), geodesic=0.0, intensity=1.0)
    >>> (costs(fg, bg) > 0).astype(int).tolist()
    [[1, 1, 1, 1, 1, 0, 0, 0, 0, 0]]
    >>> costs(fg, bg & False) is None                       # a class without scribbles
    True
    """

    def __init__(self, pixels: np.ndarray, *, spacing, geodesic: float, intensity: float):
        self.geodesic, self.intensity = float(geodesic), float(intensity)
        self.pixels = pixels
        self.prior = GeodesicPrior(pixels, spacing=spacing) if self.geodesic else None
        self.codes = quantize(pixels, channel_axis=-1) if self.intensity else None

    def __call__(self, foreground, background) -> np.ndarray | None:
        """The costs of these scribbles (None: both weights 0, or a class has none)."""
        fg, bg = np.asarray(foreground, bool), np.asarray(background, bool)
        if (self.prior is None and self.codes is None) or not (fg.any() and bg.any()):
            return None
        costs = np.zeros(fg.shape, np.float32)
        if self.prior is not None:
            costs += np.float32(self.geodesic) * self.prior(fg, bg, balance=DEFAULT_BALANCE)
        if self.codes is not None:
            q, flat = self.codes, self.pixels.reshape(-1, self.pixels.shape[-1])
            opts = model_options("histogram", flat.shape[-1])
            fit = [fit_model("histogram", flat[np.flatnonzero(m)], lo=q.lo, hi=q.hi, **opts)
                   for m in (fg, bg)]
            costs += np.float32(self.intensity) * q.cost_difference(*fit)
        return costs


def geodesic_speed(pixels: np.ndarray, *, spacing, contrast: float = 10.0) -> np.ndarray:
    """Fast-marching speed ``1 / (1 + contrast |grad I| / RMS |grad I|)`` of an image.

    ``pixels`` is ``(spatial..., C)``; the gradient (of the Gaussian-smoothed
    channels, one voxel of the finest axis) is summed over channels. A flat
    image gives speed 1 everywhere: geodesic distances are then Euclidean
    (in voxels of the finest axis).
    """
    sp = np.asarray(spacing, dtype=np.float64)
    grad2 = np.zeros(pixels.shape[:-1])
    for c in range(pixels.shape[-1]):
        channel = ndi.gaussian_filter(pixels[..., c].astype(np.float64), sp.min() / sp)
        for axis in np.flatnonzero(np.asarray(channel.shape) > 1):
            grad2 += np.square(np.gradient(channel, axis=axis) / (sp[axis] / sp.min()))
    rms = float(np.sqrt(grad2.mean()))
    if rms == 0:
        return np.ones(pixels.shape[:-1])
    return 1.0 / (1.0 + float(contrast) * np.sqrt(grad2) / rms)


def geodesic_distance(seeds, *, speed=None, spacing=None) -> np.ndarray:
    """Geodesic distance of every pixel to ``seeds`` (0 on them, ``inf`` with no seed).

    In voxels of the finest axis, at the speed of :func:`geodesic_speed`
    (default 1: Euclidean, up to the first-order fast-marching error).

    Examples
    --------
    >>> seeds = np.zeros((1, 5), bool); seeds[0, 0] = True
    >>> geodesic_distance(seeds).tolist()
    [[0.0, 1.0, 2.0, 3.0, 4.0]]
    """
    s = np.asarray(seeds, dtype=bool)
    if not s.any():
        return np.full(s.shape, np.inf)
    sp = np.ones(s.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)
    sp = sp / sp.min()
    speed = np.ones(s.shape) if speed is None else speed
    # the front starts half a voxel around the seeds: half a voxel more to their centres
    t = travel_time(speed, s, spacing=sp) + 0.5
    t[s] = 0.0
    return np.maximum(t, 0.0)


def pixel_weights(label, probability, foreground, background, *, weight: float = 5.0,
                  near: float = 3.0, band: float = 0.2, speed=None, spacing=None) -> np.ndarray:
    """BIFSeg's weights of the fine-tuning loss, per pixel.

    Parameters
    ----------
    label : array_like of bool
        The CRF's segmentation (the fine-tuning target).
    probability : array_like of float
        The CNN's probability of the object before this fine-tuning.
    foreground, background : array_like of bool
        The scribbles of each class.
    weight : float
        Weight of the scribbled pixels (their labels are certain).
    near : float
        A pixel whose label is the opposite of a scribble's class, within
        this geodesic distance of it (voxels of the finest axis), is
        uncertain (weight 0): the CRF put a boundary there, close to where
        the user said the other class is. 0: no pixel is.
    band : float
        A pixel with ``|p - 0.5| < band`` is uncertain (weight 0); 0: none.
    speed : ndarray, optional
        The metric of the geodesic distance (:func:`geodesic_speed`; default
        1, Euclidean).
    spacing : sequence of float, optional
        Voxel size in array order.

    Returns
    -------
    ndarray of float32
        ``weight`` on scribbles, 0 on uncertain pixels, 1 elsewhere.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        Arrays of different shapes, or a negative weight, distance or band.
    """
    lab = np.asarray(label, dtype=bool)
    p = np.asarray(probability, dtype=np.float64)
    fg, bg = np.asarray(foreground, dtype=bool), np.asarray(background, dtype=bool)
    for name, arr in (("probability", p), ("foreground", fg), ("background", bg)):
        if arr.shape != lab.shape:
            raise InvalidArgumentError(f"pixel_weights: {name} has shape {arr.shape}, the "
                                       f"label {lab.shape}")
    for name, value in (("weight", weight), ("near", near), ("band", band)):
        if not (np.isfinite(value) and value >= 0):
            raise InvalidArgumentError(f"pixel_weights: {name} must be a number >= 0, got "
                                       f"{name}={value!r}")
    w = np.ones(lab.shape, dtype=np.float32)
    if band > 0:
        w[np.abs(p - 0.5) < band] = 0.0
    if near > 0:
        if bg.any():  # labelled object, geodesically close to a background scribble
            w[lab & (geodesic_distance(bg, speed=speed, spacing=spacing) < near)] = 0.0
        if fg.any():
            w[~lab & (geodesic_distance(fg, speed=speed, spacing=spacing) < near)] = 0.0
    w[fg | bg] = np.float32(weight)
    return w


def class_log_probs(logits: torch.Tensor, *, activation: str, label: int):
    """``log p`` and ``log (1 - p)`` of class ``label`` (1-based), per pixel, from logits.

    Softmax: ``1 - p`` is the sum of the other channels (background and the
    other classes); sigmoid: ``label - 1``'s own channel; normrelu: its
    normalised output, clamped to ``[1e-6, 1 - 1e-6]``.

    Examples
    --------
    >>> lp, l1mp = class_log_probs(torch.zeros(1, 3, 1, 1), activation="softmax", label=2)
    >>> round(float(lp.exp()), 4), round(float(l1mp.exp()), 4)
    (0.3333, 0.6667)
    """
    if activation == "softmax":
        logp = torch.log_softmax(logits, dim=1)
        other = [i for i in range(logits.shape[1]) if i != label]
        return logp[:, label], torch.logsumexp(logp[:, other], dim=1)
    z = logits[:, label - 1]
    if activation == "sigmoid":
        return F.logsigmoid(z), F.logsigmoid(-z)
    p = normalized_relu(logits)[:, label - 1].clamp(1e-6, 1 - 1e-6)
    return torch.log(p), torch.log1p(-p)


def padded_logits(network, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``network.logits`` of ``x`` padded to a multiple of ``multiple``, cropped back."""
    spatial = x.shape[2:]
    pad = []
    for s in reversed(spatial):
        extra = -s % multiple
        pad += [extra // 2, extra - extra // 2]
    y = network.logits(F.pad(x, pad) if any(pad) else x)
    crop = tuple(slice(pad[2 * i], pad[2 * i] + s) for i, s in enumerate(reversed(spatial)))
    return y[(slice(None), slice(None), *crop[::-1])]


def weighted_steps(network, batch, *, steps: int, lr: float, activation: str, label: int,
                   multiple: int = 1, device="cpu") -> list[float]:
    """Adam steps of the weighted binary cross-entropy of class ``label`` against a target.

    Parameters
    ----------
    network : Segmenter
        Trained in place (eval mode: dropout off, batch-norm statistics kept;
        its mode is restored).
    batch : callable
        ``batch() -> (x, y, w)``: NumPy image ``(B, C, *sp)``, target
        ``(B, *sp)`` in {0, 1} and weights ``(B, *sp)`` of one step.
    steps, lr
        Number of steps and learning rate.
    activation, label
        The network's final activation and the class (1-based).
    multiple : int
        Inputs are padded to a multiple of this (the U-Net's total stride).

    Returns
    -------
    list of float
        The loss of each step: ``sum(w * BCE) / max(sum(w), 1)``.
    """
    params = [p for p in network.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    was_training, losses = network.training, []
    network.eval()
    try:
        for _ in range(steps):
            x, y, w = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in batch())
            with torch.enable_grad():
                logp, log1mp = class_log_probs(padded_logits(network, x, multiple),
                                               activation=activation, label=label)
                loss = -(w * (y * logp + (1 - y) * log1mp)).sum() / w.sum().clamp_min(1.0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    finally:
        network.train(was_training)
        for p in params:
            p.grad = None
    return losses
