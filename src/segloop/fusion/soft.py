"""Soft consensus (a float label for SoftSeg training) and :func:`fuse`, one entry to every method.

:func:`soft_consensus` turns binary raters into a foreground probability per
voxel: ``"mean"`` is the fraction of raters that drew the voxel, ``"staple"``
STAPLE's posterior (raters weighted by their estimated sensitivity and
specificity).  :func:`fuse` dispatches on :data:`FUSION_METHODS`:

============  ==============================================================
``majority``  :func:`~segloop.fusion.vote.majority_vote` (options: ``ties``)
``weighted``  :func:`~segloop.fusion.vote.weighted_vote` (``weights``, ``ties``)
``staple``    binary 0/1 raters: STAPLE posterior ``> threshold`` (0.5) as
              0/1 labels (options of :func:`~segloop.fusion.staple.staple` and
              ``threshold``); other label maps:
              :func:`~segloop.fusion.staple_multi.multilabel_staple` labels
              (``prior``, ``max_iter``, ``tol``)
``soft``      :func:`soft_consensus`, float32 in [0, 1] (``soft="mean"`` or
              ``"staple"`` -- its ``method``, renamed since ``method`` names
              the fusion here --, ``region`` and STAPLE's options)
============  ==============================================================

Examples
--------
>>> raters = {"a": [[1, 1, 0]], "b": [[1, 0, 0]], "c": [[1, 1, 1]], "d": [[0, 0, 0]]}
>>> soft_consensus(raters).tolist()
[[0.75, 0.5, 0.25]]
>>> fuse(raters).tolist(), fuse(raters, "majority", ties="highest").tolist()
([[1, 0, 0]], [[1, 1, 0]])
"""

from __future__ import annotations

import numbers

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.fusion._checks import check_raters, check_region
from segloop.fusion.staple import staple
from segloop.fusion.staple_multi import multilabel_staple
from segloop.fusion.vote import majority_vote, weighted_vote

__all__ = ["FUSION_METHODS", "SOFT_METHODS", "fuse", "soft_consensus"]

FUSION_METHODS = ("majority", "weighted", "staple", "soft")
SOFT_METHODS = ("mean", "staple")

_STAPLE_OPTIONS = ("region", "prior", "max_iter", "tol", "disputed_only")
_OPTIONS = {
    "majority": ("ties",),
    "weighted": ("weights", "ties"),
    "staple": (*_STAPLE_OPTIONS, "threshold"),
    "soft": ("soft", *_STAPLE_OPTIONS),
}


def _check_options(method: str, options: dict, allowed) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidArgumentError(
            f"fusion method {method!r} takes no option {', '.join(unknown)}; its options: "
            f"{', '.join(allowed) or 'none'}"
        )


def soft_consensus(raters, *, method: str = "mean", region=None, **staple_options) -> np.ndarray:
    """Foreground probability per voxel from binary raters, as float32 in [0, 1].

    Parameters
    ----------
    raters : Mapping[str, array] or Sequence[array]
        0/1 (or boolean) masks of one shape.  For a label map pick a class
        first, e.g. ``{r: m == k for r, m in raters.items()}``.
    method : {"mean", "staple"}
        ``"mean"``: the fraction of raters voting foreground (any number of
        raters >= 1).  ``"staple"``: STAPLE's posterior (2 raters or more).
    region : array, optional
        Voxels to fuse; 0 outside.  For ``"staple"`` also the voxels EM sees.
    **staple_options
        ``prior``, ``max_iter``, ``tol``, ``disputed_only`` of
        :func:`~segloop.fusion.staple.staple` (``"staple"`` only;
        ``disputed_only`` is accepted and has no effect for ``"mean"``).

    Returns
    -------
    ndarray of float32
        Shape of a rater.

    Raises
    ------
    InvalidArgumentError
        An unknown method or option, raters that are not 0/1 masks (the message
        names the rater and its values), a bad region.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1, 1], [0, 0]]); b = np.array([[1, 0], [0, 0]])
    >>> soft_consensus([a, b], method="staple").tolist()
    [[1.0, 0.5], [0.0, 0.0]]
    """
    if method not in SOFT_METHODS:
        raise InvalidArgumentError(
            f"method must be one of {', '.join(SOFT_METHODS)}; got method={method!r}"
        )
    if method == "staple":
        return staple(raters, region=region, **_staple_only(staple_options)).posterior
    _check_options("soft (mean)", staple_options, ("region", "disputed_only"))
    _, stack = check_raters(raters, binary=True)
    mean = np.count_nonzero(stack, axis=0).astype(np.float32) / np.float32(len(stack))
    mask = check_region(region, stack.shape[1:])
    if mask is not None:
        mean[~mask] = 0.0
    return mean


def _staple_only(options: dict) -> dict:
    _check_options("soft (staple)", options, ("prior", "max_iter", "tol", "disputed_only"))
    return options


def fuse(raters, method: str = "majority", **options) -> np.ndarray:
    """Fuse raters' label maps with one of :data:`FUSION_METHODS`.

    Parameters
    ----------
    raters : Mapping[str, array] or Sequence[array]
        Label maps of one shape.
    method : {"majority", "weighted", "staple", "soft"}
        The fusion (table in the module docstring).
    **options
        Keyword options of the method's function; for ``soft``, ``soft="mean"``
        or ``"staple"`` chooses :func:`soft_consensus`'s method.

    Returns
    -------
    ndarray
        A label map (integer, dtype of the raters' stack) for ``majority``,
        ``weighted`` and ``staple``; float32 in [0, 1] for ``soft``.

    Raises
    ------
    InvalidArgumentError
        An unknown method (the message lists :data:`FUSION_METHODS`), an option
        the method does not take, or bad raters for the method.

    Examples
    --------
    >>> raters = [[[0, 1, 1, 0]], [[0, 1, 0, 0]], [[1, 1, 1, 0]]]
    >>> fuse(raters, "staple").tolist()
    [[0, 1, 1, 0]]
    >>> fuse(raters, "soft").round(2).tolist()
    [[0.33, 1.0, 0.67, 0.0]]
    >>> fuse(raters, "soft", soft="staple").round(2).tolist()
    [[0.0, 1.0, 1.0, 0.0]]
    """
    if not isinstance(method, str) or method not in FUSION_METHODS:
        raise InvalidArgumentError(
            f"unknown fusion method {method!r}: expected one of {', '.join(FUSION_METHODS)}"
        )
    _check_options(method, options, _OPTIONS[method])
    if method == "majority":
        return majority_vote(raters, **options)
    if method == "weighted":
        return weighted_vote(raters, **options)
    if method == "soft":
        return soft_consensus(raters, method=options.pop("soft", "mean"), **options)
    _, stack = check_raters(raters)
    if stack.max() <= 1:
        threshold = options.pop("threshold", 0.5)
        ok = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
        if not (ok and 0 <= threshold < 1):
            raise InvalidArgumentError(
                f"threshold must be a number in [0, 1), got threshold={threshold!r}"
            )
        posterior = staple(raters, **options).posterior
        return (posterior > threshold).astype(stack.dtype)
    if "region" in options or "threshold" in options or options.pop("disputed_only", False):
        raise InvalidArgumentError(
            "region=, threshold= and disputed_only= apply to binary STAPLE only; these raters "
            f"hold labels up to {int(stack.max())} (multi-label STAPLE)"
        )
    return multilabel_staple(raters, **options).labels
