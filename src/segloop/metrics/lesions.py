"""Lesion-wise detection: how many true lesions were found, how many false alarms.

Voxel metrics such as Dice are dominated by large lesions; in multiple
sclerosis, metastases or tumour follow-up a missed small lesion matters as
much as a large one.  Here each connected component of a mask is one lesion:

* a true lesion is *detected* when at least ``min_overlap_voxels`` of its
  voxels are predicted foreground;
* a predicted lesion is a *false positive* when fewer than
  ``min_overlap_voxels`` of its voxels are true foreground (with the default
  of 1: when it touches no true lesion).

Empty masks
-----------
The rates follow the convention of :mod:`segloop.metrics.overlap`
(``tpr`` is lesion-wise recall, ``fdr`` is one minus lesion-wise precision):
no lesion on either side gives ``tpr = 1.0`` and ``fdr = 0.0``; no true
lesion but some predicted ones gives ``tpr = nan`` and ``fdr = 1.0``; no
predicted lesion but some true ones gives ``tpr = 0.0`` and ``fdr = nan``.

Examples
--------
>>> import numpy as np
>>> truth = np.array([[1, 1, 0, 0, 0, 1]])
>>> pred = np.array([[0, 1, 0, 1, 0, 0]])
>>> r = lesion_detection(pred, truth)
>>> r.n_truth, r.n_pred, r.tp_truth, r.fp_pred, r.tpr, r.fdr
(2, 2, 1, 1, 0.5, 0.5)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from segloop.errors import InvalidArgumentError
from segloop.metrics.overlap import as_masks

__all__ = ["LesionDetection", "lesion_detection"]


@dataclass(frozen=True)
class LesionDetection:
    """Lesion counts and rates from :func:`lesion_detection`.

    Attributes
    ----------
    n_truth : int
        Number of true lesions (connected components of ``truth``).
    n_pred : int
        Number of predicted lesions.
    tp_truth : int
        True lesions that were detected.
    fp_pred : int
        Predicted lesions that match no true lesion.
    tpr : float
        Lesion-wise true-positive rate, ``tp_truth / n_truth``.
    fdr : float
        False-detection rate, ``fp_pred / n_pred``.
    """

    n_truth: int
    n_pred: int
    tp_truth: int
    fp_pred: int
    tpr: float
    fdr: float

    @classmethod
    def from_counts(
        cls, *, n_truth: int, n_pred: int, tp_truth: int, fp_pred: int
    ) -> LesionDetection:
        """Build the result from the four counts, deriving the rates.

        Parameters
        ----------
        n_truth, n_pred, tp_truth, fp_pred : int
            The counts (for example summed over several cases).

        Returns
        -------
        LesionDetection
            With ``tpr`` and ``fdr`` following the empty-mask convention of
            the module docstring.

        Examples
        --------
        >>> LesionDetection.from_counts(n_truth=4, n_pred=0, tp_truth=0, fp_pred=0).fdr
        nan
        """
        if n_truth == 0:
            tpr = 1.0 if n_pred == 0 else float("nan")
        else:
            tpr = tp_truth / n_truth
        if n_pred == 0:
            fdr = 0.0 if n_truth == 0 else float("nan")
        else:
            fdr = fp_pred / n_pred
        return cls(n_truth, n_pred, tp_truth, fp_pred, tpr, fdr)

    def as_dict(self) -> dict[str, int | float]:
        """The fields as a plain dictionary (for tables and JSON)."""
        return asdict(self)


def _structure(ndim: int, connectivity) -> np.ndarray:
    """The labelling structuring element; ``connectivity`` as in scikit-image."""
    if connectivity is None:
        connectivity = ndim
    if isinstance(connectivity, bool) or not isinstance(connectivity, int | np.integer):
        raise InvalidArgumentError(f"connectivity must be an integer, got {connectivity!r}")
    if not 1 <= connectivity <= ndim:
        raise InvalidArgumentError(
            f"connectivity must be between 1 and {ndim} for a {ndim}D mask, got {connectivity}"
        )
    return ndimage.generate_binary_structure(ndim, int(connectivity))


def _matched(labels: np.ndarray, n: int, other: np.ndarray, min_overlap: int) -> int:
    """Number of the ``n`` components of ``labels`` with ``>= min_overlap`` voxels in ``other``."""
    overlap = np.bincount(labels[other], minlength=n + 1)[1:]
    return int(np.count_nonzero(overlap >= min_overlap))


def lesion_detection(pred, truth, *, connectivity=None, min_overlap_voxels=1) -> LesionDetection:
    """Count detected and false-positive lesions (connected components).

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground (for a label map, pass ``labels == k`` to study label ``k``).
    connectivity : int, optional
        Which neighbours join voxels into one lesion, as in scikit-image:
        1 = face neighbours only, ``ndim`` = every neighbour (faces, edges and
        corners).  None (default) means ``ndim``, the full connectivity.
    min_overlap_voxels : int, optional
        How many voxels a lesion must share with the other mask to count as a
        match (default 1: touching is enough).

    Returns
    -------
    LesionDetection
        Counts ``n_truth``, ``n_pred``, ``tp_truth``, ``fp_pred`` and rates
        ``tpr``, ``fdr``.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ, an input is not a finite 2D/3D array,
        ``connectivity`` is not in ``1..ndim`` or ``min_overlap_voxels`` is
        not a positive integer.

    Notes
    -----
    A true lesion is matched against the whole predicted mask, and a predicted
    lesion against the whole true mask: one large prediction covering two
    true lesions detects both, and is one true-positive prediction.  Hence
    ``tp_truth + fp_pred`` need not equal ``n_pred``.  For the empty-mask
    values of ``tpr`` and ``fdr`` see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((5, 5), int); truth[0, 0] = truth[1, 1] = 1
    >>> lesion_detection(truth, truth).n_truth  # diagonal neighbours: one lesion
    1
    >>> lesion_detection(truth, truth, connectivity=1).n_truth
    2
    """
    p, t = as_masks(pred, truth)
    structure = _structure(p.ndim, connectivity)
    if (
        isinstance(min_overlap_voxels, bool)
        or not isinstance(min_overlap_voxels, int | np.integer)
        or min_overlap_voxels < 1
    ):
        raise InvalidArgumentError(
            f"min_overlap_voxels must be a positive integer, got {min_overlap_voxels!r}"
        )
    truth_labels, n_truth = ndimage.label(t, structure=structure)
    pred_labels, n_pred = ndimage.label(p, structure=structure)
    return LesionDetection.from_counts(
        n_truth=int(n_truth),
        n_pred=int(n_pred),
        tp_truth=_matched(truth_labels, n_truth, p, min_overlap_voxels),
        fp_pred=n_pred - _matched(pred_labels, n_pred, t, min_overlap_voxels),
    )
