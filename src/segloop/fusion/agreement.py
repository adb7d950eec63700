"""How each rater agrees with the consensus and with the other raters.

* :func:`rater_scores` -- one rater's mask against the consensus: Dice,
  sensitivity, specificity, volume bias and boundary bias (the
  :data:`AGREEMENT_KEYS`);
* :func:`score_summary` -- consistency over cases: mean, standard deviation,
  median and count of each score;
* :func:`pairwise_dice`, :func:`agreement_matrix`, :func:`group_agreement`
  -- rater against rater (defined in :mod:`segloop.fusion.pairwise`,
  re-exported here).

The boundary bias is measured by
:func:`~segloop.fusion.boundary.signed_surface_distance`.

Empty masks
-----------
The conventions are those of :mod:`segloop.metrics`: a ratio with nothing to
count is NaN, except that two empty masks agree perfectly.

* consensus empty (in the region): dice 1 if the rater drew nothing too, else
  0; sensitivity 1 or NaN (no true voxel to find); volume bias 0 or ``+inf``;
  boundary bias 0 or NaN;
* rater empty, consensus not: dice 0, sensitivity 0, volume bias -1, boundary
  bias NaN;
* specificity is the sensitivity of the background: NaN when the consensus
  covers the whole region and the rater does not, 1 when both do.

Examples
--------
>>> import numpy as np
>>> consensus = np.zeros((6, 6), bool); consensus[1:5, 1:5] = True
>>> rater = consensus.copy(); rater[1, 1:5] = False  # misses one row
>>> scores = rater_scores(rater, consensus)
>>> scores["dice"], scores["sensitivity"], scores["specificity"], scores["volume_bias"]
(0.857..., 0.75, 1.0, -0.25)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.fusion.boundary import as_binary, signed_surface_distance
from segloop.fusion.pairwise import agreement_matrix, confusion, group_agreement, pairwise_dice
from segloop.metrics.overlap import FROM_COUNTS, relative_volume_difference

__all__ = [
    "AGREEMENT_KEYS",
    "agreement_matrix",
    "group_agreement",
    "pairwise_dice",
    "rater_scores",
    "score_summary",
    "signed_surface_distance",
]

AGREEMENT_KEYS = ("dice", "sensitivity", "specificity", "volume_bias", "boundary_bias_mm")
"""The scores of :func:`rater_scores`, in order."""


def rater_scores(mask, consensus, *, spacing=None, region=None) -> dict[str, float]:
    """Score one rater's mask against the consensus.

    Parameters
    ----------
    mask : array_like
        The rater's 0/1 (or boolean) mask, 2D ``(y, x)`` or 3D ``(z, y, x)``.
    consensus : array_like
        The consensus (or any reference) 0/1 mask of the same shape.
    spacing : sequence of float, optional
        Voxel size in mm per axis, array order (default 1); only the boundary
        bias depends on it.
    region : array_like of bool, optional
        The voxels that count (default: the whole image), e.g. the field of
        view of a fundus photograph.  The voxel scores are computed on ``mask &
        region`` against ``consensus & region``; the boundary bias on the faces
        of the mask inside the region (see
        :func:`~segloop.fusion.boundary.signed_surface_distance`).  Specificity
        depends on the region most: the background far from the object is
        mostly easy true negatives, so a larger region gives a specificity
        closer to 1.

    Returns
    -------
    dict of str to float
        The :data:`AGREEMENT_KEYS`:

        ``dice``
            ``2 TP / (2 TP + FP + FN)``;
        ``sensitivity``
            ``TP / (TP + FN)``, the fraction of the consensus the rater drew;
        ``specificity``
            ``TN / (TN + FP)``, the fraction of the consensus background the
            rater left empty;
        ``volume_bias``
            ``(|mask| - |consensus|) / |consensus|``
            (:func:`segloop.metrics.relative_volume_difference`);
        ``boundary_bias_mm``
            :func:`~segloop.fusion.boundary.signed_surface_distance`: > 0
            when the rater draws outside the consensus, < 0 inside.

        Empty masks follow the module docstring (NaN where nothing is counted).

    Raises
    ------
    InvalidArgumentError
        Shapes differ, values other than 0/1, a bad spacing, a region of the
        wrong shape or an empty region.

    Examples
    --------
    >>> import numpy as np
    >>> consensus = np.zeros((8, 8), bool); consensus[2:6, 2:6] = True
    >>> wide = np.zeros_like(consensus); wide[1:7, 1:7] = True
    >>> s = rater_scores(wide, consensus, spacing=(0.5, 0.5))
    >>> s["sensitivity"], round(s["specificity"], 3), s["volume_bias"], s["boundary_bias_mm"]
    (1.0, 0.583, 1.25, 0.5)
    """
    whole = as_binary(mask, "mask")
    reference = as_binary(consensus, "consensus", shape=whole.shape)
    if region is not None:
        region = as_binary(region, "region", shape=whole.shape)
        if not region.any():
            raise InvalidArgumentError("region is empty: no voxel to score")
        m, c, background = whole & region, reference & region, region
    else:
        m, c, background = whole, reference, np.ones(whole.shape, bool)
    tp, fp, fn = confusion(m, c)
    tn_fp_fn = confusion(background & ~m, background & ~c)
    boundary = signed_surface_distance(whole, reference, spacing=spacing, region=region)
    return {
        "dice": FROM_COUNTS["dice"](tp, fp, fn),
        "sensitivity": FROM_COUNTS["recall"](tp, fp, fn),
        "specificity": FROM_COUNTS["recall"](*tn_fp_fn),
        "volume_bias": relative_volume_difference(m, c),
        "boundary_bias_mm": boundary,
    }


def score_summary(scores: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Consistency of a rater over cases: statistics of each score.

    Parameters
    ----------
    scores : sequence of mapping
        One :func:`rater_scores` dict (or any ``name -> float``) per case.

    Returns
    -------
    dict
        For each key found: ``{"mean", "std", "median", "min", "max", "n",
        "n_undefined"}``.  Only finite values are used (``n`` of them; the
        standard deviation is the population one, 0 for one value); NaN and
        infinite values (see the empty-mask conventions) are counted in
        ``n_undefined``.  Statistics of no value are NaN.

    Examples
    --------
    >>> summary = score_summary([{"dice": 0.8}, {"dice": 0.9}, {"dice": float("nan")}])
    >>> summary["dice"]["mean"], summary["dice"]["std"], summary["dice"]["n"]
    (0.85..., 0.05..., 2)
    >>> summary["dice"]["n_undefined"]
    1
    """
    if isinstance(scores, Mapping) or not isinstance(scores, Sequence):
        raise InvalidArgumentError("scores must be a sequence of per-case dicts of scores")
    keys: list[str] = []
    for case in scores:
        if not isinstance(case, Mapping):
            raise InvalidArgumentError(f"scores: each case must be a dict of scores, got {case!r}")
        keys += [k for k in case if k not in keys]
    out = {}
    for key in keys:
        values = np.array([float(case[key]) for case in scores if key in case], dtype=float)
        ok = values[np.isfinite(values)]
        stats = (
            (ok.mean(), ok.std(), np.median(ok), ok.min(), ok.max()) if ok.size else (np.nan,) * 5
        )
        out[key] = dict(
            zip(("mean", "std", "median", "min", "max"), map(float, stats), strict=True)
        )
        out[key].update(n=int(ok.size), n_undefined=int(values.size - ok.size))
    return out
