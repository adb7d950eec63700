"""How far a click reaches: a hard seed ball and a geodesic soft prior.

Used by box + clicks (:mod:`segloop.tools.boxclicks`). A click at ``p`` on a
voxel the current segmentation gets wrong says more than "this voxel": the
user clicked there because a region around it is wrong. Let ``d`` be the
distance from ``p`` to the nearest voxel that already has the clicked label
(for a negative click, the box's outside counts as background); the click
gives

* a **hard seed**: the ball of radius ``max(radius, d / 2)`` around ``p``,
  but always less than ``d``, so that it reaches no voxel that already has
  the clicked label (nor, on a band one voxel wide, the voxel across the
  band, which has the other label and is right);
* a **soft prior** for the clicked label, ``strength * exp(-g / (reach * d))``
  nats added to the cost of the other label, where ``g`` is the geodesic
  distance from the seed ball (fast marching, :mod:`skfmm`) with speed
  ``1 / (1 + edge * |grad I| / mean |grad I|)``: it spreads through
  homogeneous tissue about as far as the click is from the current boundary
  and stops at edges (after Price et al. 2010, geodesic graph cut).

References
----------
Price, B., Morse, B., Cohen, S. (2010). Geodesic graph cut for interactive
image segmentation. CVPR.

Examples
--------
>>> mask = np.zeros((9, 30), bool); mask[:, :10] = True   # current foreground on the left
>>> grad = edge_strength(np.zeros((9, 30, 1), np.float32), spacing=(1.0, 1.0))
>>> c = click_prior(mask, (4, 20), True, gradient=grad, spacing=(1.0, 1.0), radius=1.0)
>>> c.distance, int(c.seed_mask(mask.shape).sum())
(11.0, 87)
>>> c.window
(slice(0, 9, None), slice(0, 30, None))
>>> np.round(c.prior[4, [20, 26, 29]], 1)   # 8 nats on the seed, fading with the distance
array([8. , 7.8, 6.5], dtype=float32)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import skfmm

__all__ = ["Click", "ClickPrior", "click_prior", "edge_strength", "paint_clicks"]

_BALL_CAP = 0.99  # the seed ball stays within the click's distance to the clicked label


@dataclass(frozen=True)
class ClickPrior:
    """The reach of one click.

    Attributes
    ----------
    seeds : tuple of ndarray
        Index arrays of the hard seed voxels.
    window : tuple of slice
        Where ``prior`` lies in the image.
    prior : ndarray of float32
        Nats added to the cost of the label opposite to the click.
    distance : float
        Distance from the click to the nearest voxel of the clicked label.
    """

    seeds: tuple
    window: tuple
    prior: np.ndarray
    distance: float

    def seed_mask(self, shape) -> np.ndarray:
        """The hard seeds as a boolean mask of ``shape``."""
        out = np.zeros(shape, dtype=bool)
        out[self.seeds] = True
        return out


@dataclass
class Click:
    """A click of a session: where, which label, its reach, and the state before it."""

    point: tuple[int, ...]  # image coordinates
    positive: bool
    reach: ClickPrior  # hard seeds and soft prior, box coordinates
    before: tuple  # the session's state before the click, restored by undo


def edge_strength(pixels: np.ndarray, *, spacing) -> np.ndarray:
    """Gradient magnitude (all channels) over its mean: 1 is an average edge.

    ``pixels`` has a trailing channel axis, as :func:`segloop.tools.cutgraph.check_image`
    returns it.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    sp = sp / sp.min()  # the ratio to the mean does not depend on the unit; no overflow
    grads = np.gradient(pixels, *sp, axis=tuple(range(pixels.ndim - 1)))
    mag = np.sqrt(sum(np.square(g).sum(axis=-1) for g in grads))
    return mag / max(float(mag.mean()), 1e-12)


def click_prior(mask: np.ndarray, point, positive: bool, *, gradient: np.ndarray, spacing,
                radius: float, strength: float = 8.0, reach: float = 1.5, edge: float = 3.0,
                outside_background: bool = True) -> ClickPrior:
    """Seed ball and geodesic prior of a click on the current segmentation ``mask``.

    Parameters
    ----------
    mask : ndarray of bool
        The current segmentation (of the box).
    point : sequence of int
        The click, in ``mask`` coordinates.
    positive : bool
        A foreground click (else background).
    gradient : ndarray
        :func:`edge_strength` of the image, ``mask``'s shape.
    spacing : sequence of float
        Voxel size.
    radius : float
        Smallest seed radius, physical units (but the seed ball stays within
        the distance ``d`` to the clicked label: on a band one voxel wide it
        is the clicked voxel alone).
    strength, reach, edge : float
        Prior height (nats), decay length (in units of the click's distance
        to the clicked label) and how much an average edge slows the spread.
    outside_background : bool
        Whether the voxels around ``mask`` count as background.

    Returns
    -------
    ClickPrior
    """
    shape, sp = np.asarray(mask.shape), np.asarray(spacing, dtype=np.float64)
    p = np.asarray(point, dtype=np.int64)
    same = mask if positive else ~mask
    near = [] if positive or not outside_background else [
        float(np.min(np.minimum(p + 1, shape - p) * sp))]
    if same.any():
        near.append(float(np.sqrt(np.min(np.sum(((np.argwhere(same) - p) * sp) ** 2, axis=1)))))
    dist = min(near) if near else float(np.min(shape * sp)) / 4
    scale = reach * max(dist, radius)
    half = np.minimum(np.ceil(3 * scale / sp), 128 if len(shape) == 2 else 32).astype(int)
    lo, hi = np.maximum(p - half, 0), np.minimum(p + half + 1, shape)
    window = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    grids = np.ogrid[window]
    ball = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, sp, strict=True))
    ball = ball <= min(max(radius, 0.5 * dist), _BALL_CAP * dist) ** 2
    seeds = tuple(i + a for i, a in zip(np.nonzero(ball), lo, strict=True))
    if ball.all():
        travel = np.zeros(ball.shape)
    else:
        speed = 1.0 / (1.0 + edge * gradient[window])
        travel = skfmm.travel_time(np.where(ball, -1.0, 1.0), speed, dx=sp, narrow=4 * scale)
        travel = np.ma.filled(travel, np.inf)
        travel[ball] = 0.0  # fast marching also measures inwards
    prior = (strength * np.exp(-travel / scale)).astype(np.float32)
    return ClickPrior(seeds, window, prior, dist)


def paint_clicks(clicks, fg: np.ndarray, bg: np.ndarray, prior: np.ndarray) -> None:
    """Write the hard seeds and priors of ``clicks`` in order (a later click wins).

    ``clicks`` have ``positive`` and ``reach`` (a :class:`ClickPrior`);
    ``fg``, ``bg`` (seed masks) and ``prior`` (nats added to the background
    cost minus those added to the foreground cost) are overwritten in place.
    """
    fg[...] = False
    bg[...] = False
    prior[...] = 0.0
    for c in clicks:
        mine, other = (fg, bg) if c.positive else (bg, fg)
        mine[c.reach.seeds] = True
        other[c.reach.seeds] = False
        if c.positive:
            prior[c.reach.window] += c.reach.prior
        else:
            prior[c.reach.window] -= c.reach.prior
