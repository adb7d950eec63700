"""Label fusion: many raters' masks of one image -> a consensus, and what it says of the raters.

Raters are given as a mapping ``rater id -> array`` (or a sequence of arrays,
ids ``"0"``, ``"1"``, ...): label maps of non-negative integers of one shape,
2D or 3D, binary or multi-label.  Bad input (shapes that differ, NaN,
fractions, negative labels, labels where 0/1 masks are needed, no rater, bad
weights) raises :class:`~segloop.errors.InvalidArgumentError` naming the rater.

========================  ==================================================================
``vote``                  :func:`majority_vote` (ties: ``background`` / ``lowest`` /
                          ``highest``), :func:`weighted_vote`, :func:`rater_weights`
                          (leave-one-out kappa -> log-odds weights)
``staple``                :func:`staple` (binary STAPLE: posterior, sensitivity,
                          specificity; ``region=``), :func:`staple_cases` (rater
                          parameters shared over cases, raters missing from some cases)
``staple_multi``          :func:`multilabel_staple` (per-rater K x K confusion matrices)
``soft``                  :func:`soft_consensus` (``mean`` or ``staple`` posterior, float32),
                          :func:`fuse` and :data:`FUSION_METHODS`
``_checks``               :func:`check_raters` (ids + stacked array, the one input check)
``agreement``             :func:`rater_scores` (a rater vs the consensus: Dice, sensitivity,
                          specificity, volume and boundary bias), :func:`score_summary`;
                          ``boundary``: :func:`signed_surface_distance`; ``pairwise``:
                          :func:`pairwise_dice`, :func:`agreement_matrix`,
                          :func:`group_agreement`
``report``                :func:`rater_report` / :func:`score_raters` (a dataset's raters
                          against the consensus), :func:`rater_groups`;
                          ``report_files``: :func:`write_rater_report` (JSON, CSV, PNG)
``files``                 :func:`fuse_files` (``segloop fuse``), :func:`fuse_images`
========================  ==================================================================

Examples
--------
>>> import numpy as np
>>> raters = {"ann": [[0, 1, 1, 1]], "bob": [[0, 1, 1, 0]], "cyd": [[0, 0, 1, 1]]}
>>> majority_vote(raters).tolist()
[[0, 1, 1, 1]]
>>> result = staple(raters)
>>> result.posterior.round(2).tolist(), round(result.sensitivity["cyd"], 2)
([[0.0, 1.0, 1.0, 1.0]], 0.67)
>>> fuse(raters, "soft").round(2).tolist()
[[0.0, 0.67, 1.0, 0.67]]
"""

from segloop.fusion._checks import check_raters
from segloop.fusion.agreement import (
    AGREEMENT_KEYS,
    agreement_matrix,
    group_agreement,
    pairwise_dice,
    rater_scores,
    score_summary,
    signed_surface_distance,
)
from segloop.fusion.files import fuse_files, fuse_images
from segloop.fusion.rater_cases import rater_groups
from segloop.fusion.report import CONSENSUS_METHODS, rater_report, score_raters
from segloop.fusion.report_files import write_rater_report
from segloop.fusion.soft import FUSION_METHODS, SOFT_METHODS, fuse, soft_consensus
from segloop.fusion.staple import PooledStaple, StapleResult, staple, staple_cases
from segloop.fusion.staple_multi import MultiStapleResult, multilabel_staple
from segloop.fusion.vote import majority_vote, rater_weights, weighted_vote

__all__ = [
    "AGREEMENT_KEYS",
    "CONSENSUS_METHODS",
    "FUSION_METHODS",
    "SOFT_METHODS",
    "MultiStapleResult",
    "PooledStaple",
    "StapleResult",
    "agreement_matrix",
    "check_raters",
    "fuse",
    "fuse_files",
    "fuse_images",
    "group_agreement",
    "majority_vote",
    "multilabel_staple",
    "pairwise_dice",
    "rater_groups",
    "rater_report",
    "rater_scores",
    "rater_weights",
    "score_raters",
    "score_summary",
    "signed_surface_distance",
    "soft_consensus",
    "staple",
    "staple_cases",
    "weighted_vote",
    "write_rater_report",
]
