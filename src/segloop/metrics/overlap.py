"""Voxel-overlap metrics of a binary segmentation against a reference.

Every function takes a predicted mask ``pred`` and a reference mask ``truth``:
arrays of the same 2D or 3D shape whose non-zero voxels are foreground (boolean,
integer, or float 0/1 arrays are all accepted; NaN is refused).  With ``P``
the predicted and ``T`` the true foreground, ``TP = |P ∩ T|`` voxels are
right, ``FP = |P| - TP`` predicted wrongly and ``FN = |T| - TP`` missed:

* :func:`dice` ``= 2 TP / (|P| + |T|)``, in [0, 1];
* :func:`iou` ``= TP / |P ∪ T|``, in [0, 1] (Jaccard index);
* :func:`precision` ``= TP / |P|``, in [0, 1];
* :func:`recall` ``= TP / |T|``, in [0, 1] (sensitivity);
* :func:`relative_volume_difference` ``= (|P| - |T|) / |T|``, signed, in
  [-1, inf);
* :func:`overlap_scores` gives all five from one pass.

Empty masks
-----------
A ratio whose denominator is zero is decided once, here, and the same way by
every metric of :mod:`segloop.metrics` (it is the convention of most
segmentation challenges):

* both masks empty: the prediction is perfect; dice = iou = precision =
  recall = 1.0 and relative volume difference = 0.0;
* prediction empty, truth not: dice = iou = recall = 0.0, relative volume
  difference = -1.0, and precision is **NaN** -- with no predicted voxel there
  is no fraction of predicted voxels that is right;
* truth empty, prediction not: dice = iou = precision = 0.0, recall is
  **NaN** (no true voxel to find) and relative volume difference is **+inf**
  (a positive volume over a zero one).

Examples
--------
>>> import numpy as np
>>> pred = np.zeros((1, 8), bool); pred[0, 0:6] = True
>>> truth = np.zeros((1, 8), bool); truth[0, 2:8] = True
>>> dice(pred, truth), iou(pred, truth)
(0.666..., 0.5)
"""

from __future__ import annotations

import numpy as np

from segloop.errors import InvalidArgumentError

__all__ = [
    "FROM_COUNTS",
    "as_masks",
    "check_pair",
    "confusion_counts",
    "dice",
    "iou",
    "overlap_scores",
    "precision",
    "recall",
    "relative_volume_difference",
]


def _as_array(values, name: str) -> np.ndarray:
    """Return ``values`` as a 2D or 3D numeric array, refusing NaN and other dtypes."""
    array = np.asarray(values)
    if array.ndim not in (2, 3):
        raise InvalidArgumentError(f"{name} must be a 2D or 3D array, got shape {array.shape}")
    if array.dtype != bool and not np.issubdtype(array.dtype, np.number):
        raise InvalidArgumentError(f"{name} must be numeric or boolean, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
        raise InvalidArgumentError(f"{name} holds NaN or infinite values")
    return array


def check_pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction and a reference of the same 2D or 3D shape.

    Parameters
    ----------
    pred, truth : array_like
        Masks or label maps (boolean or numeric, finite).

    Returns
    -------
    tuple of numpy.ndarray
        Both inputs as arrays, unchanged in dtype.

    Raises
    ------
    InvalidArgumentError
        If an input is not 2D/3D, not numeric, holds NaN/inf, or if the two
        shapes differ (the message names both shapes).

    Examples
    --------
    >>> import numpy as np
    >>> check_pair(np.zeros((2, 3)), np.zeros((3, 2)))
    Traceback (most recent call last):
    ...
    segloop.errors.InvalidArgumentError: pred and truth must have the same shape, got pred (2, 3)...
    """
    p = _as_array(pred, "pred")
    t = _as_array(truth, "truth")
    if p.shape != t.shape:
        raise InvalidArgumentError(
            f"pred and truth must have the same shape, got pred {p.shape} and truth {t.shape}"
        )
    return p, t


def as_masks(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    """Validate two inputs (see :func:`check_pair`) and return boolean masks.

    Parameters
    ----------
    pred, truth : array_like
        Arrays whose non-zero voxels are foreground.

    Returns
    -------
    tuple of numpy.ndarray
        Two boolean arrays of the common shape.

    Examples
    --------
    >>> import numpy as np
    >>> p, t = as_masks(np.array([[0.0, 1.0]]), np.array([[2, 0]]))
    >>> p.tolist(), t.tolist()
    ([[False, True]], [[True, False]])
    """
    p, t = check_pair(pred, truth)
    return p.astype(bool, copy=False), t.astype(bool, copy=False)


def confusion_counts(pred, truth) -> tuple[int, int, int, int]:
    """Count true positive, false positive, false negative and true negative voxels.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.

    Returns
    -------
    tuple of int
        ``(tp, fp, fn, tn)``.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ or an input is not a finite 2D/3D array.

    Examples
    --------
    >>> import numpy as np
    >>> confusion_counts(np.array([[1, 1, 0, 0]]), np.array([[0, 1, 1, 0]]))
    (1, 1, 1, 1)
    """
    p, t = as_masks(pred, truth)
    tp = int(np.count_nonzero(p & t))
    n_pred = int(np.count_nonzero(p))
    n_truth = int(np.count_nonzero(t))
    fp = n_pred - tp
    fn = n_truth - tp
    return tp, fp, fn, p.size - tp - fp - fn


def _ratio(numerator: int, denominator: int, *, both_empty: bool) -> float:
    """``numerator / denominator``, or the convention when the denominator is 0.

    A zero denominator gives 1.0 when both masks are empty (a perfect empty
    prediction) and NaN otherwise (the ratio is undefined).
    """
    if denominator == 0:
        return 1.0 if both_empty else float("nan")
    return numerator / denominator


def _dice(tp: int, fp: int, fn: int) -> float:
    return _ratio(2 * tp, 2 * tp + fp + fn, both_empty=True)


def _iou(tp: int, fp: int, fn: int) -> float:
    return _ratio(tp, tp + fp + fn, both_empty=True)


def _precision(tp: int, fp: int, fn: int) -> float:
    return _ratio(tp, tp + fp, both_empty=tp + fp + fn == 0)


def _recall(tp: int, fp: int, fn: int) -> float:
    return _ratio(tp, tp + fn, both_empty=tp + fp + fn == 0)


def _rvd(tp: int, fp: int, fn: int) -> float:
    n_truth = tp + fn
    if n_truth == 0:
        return 0.0 if fp == 0 else float("inf")
    return (fp - fn) / n_truth


#: The overlap metrics by short name, each a function of ``(tp, fp, fn)``.
FROM_COUNTS = {
    "dice": _dice,
    "iou": _iou,
    "precision": _precision,
    "recall": _recall,
    "rvd": _rvd,
}


def overlap_scores(pred, truth) -> dict[str, float]:
    """Every overlap metric of this module from one pass over the masks.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.

    Returns
    -------
    dict of str to float
        Keys ``"dice"``, ``"iou"``, ``"precision"``, ``"recall"`` and
        ``"rvd"`` (relative volume difference), with the values and the
        empty-mask conventions of the single functions.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ or an input is not a finite 2D/3D array.

    Examples
    --------
    >>> import numpy as np
    >>> overlap_scores(np.array([[1, 1, 0, 0]]), np.array([[0, 1, 1, 1]]))
    {'dice': 0.4, 'iou': 0.25, 'precision': 0.5, 'recall': 0.333..., 'rvd': -0.333...}
    """
    tp, fp, fn, _ = confusion_counts(pred, truth)
    return {name: score(tp, fp, fn) for name, score in FROM_COUNTS.items()}


def dice(pred, truth) -> float:
    """Dice similarity coefficient, ``2 |P ∩ T| / (|P| + |T|)``.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.

    Returns
    -------
    float
        In [0, 1]; 1 is a perfect overlap.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ or an input is not a finite 2D/3D array.

    Notes
    -----
    Both masks empty gives 1.0; exactly one empty gives 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> dice(np.array([[1, 1, 0]]), np.array([[0, 1, 1]]))
    0.5
    >>> dice(np.zeros((2, 2)), np.zeros((2, 2)))
    1.0
    """
    tp, fp, fn, _ = confusion_counts(pred, truth)
    return _dice(tp, fp, fn)


def iou(pred, truth) -> float:
    """Intersection over union (Jaccard index), ``|P ∩ T| / |P ∪ T|``.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.

    Returns
    -------
    float
        In [0, 1]; equals ``dice / (2 - dice)``.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ or an input is not a finite 2D/3D array.

    Notes
    -----
    Both masks empty gives 1.0; exactly one empty gives 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> iou(np.array([[1, 1, 0]]), np.array([[0, 1, 1]]))
    0.333...
    """
    tp, fp, fn, _ = confusion_counts(pred, truth)
    return _iou(tp, fp, fn)


def precision(pred, truth) -> float:
    """Fraction of predicted voxels that are truly foreground, ``|P ∩ T| / |P|``.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.

    Returns
    -------
    float
        In [0, 1], or NaN when it is undefined (see Notes).

    Raises
    ------
    InvalidArgumentError
        If the shapes differ or an input is not a finite 2D/3D array.

    Notes
    -----
    Both masks empty gives 1.0.  An empty prediction with a non-empty truth
    gives NaN: no voxel was predicted, so there is no fraction to report (a
    value of 0 or 1 would reward or punish a prediction that made no claim).
    A non-empty prediction with an empty truth gives 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> precision(np.array([[1, 1, 1, 0]]), np.array([[0, 1, 1, 1]]))
    0.666...
    >>> precision(np.zeros((1, 3)), np.ones((1, 3)))
    nan
    """
    tp, fp, fn, _ = confusion_counts(pred, truth)
    return _precision(tp, fp, fn)


def recall(pred, truth) -> float:
    """Fraction of true foreground voxels that are predicted, ``|P ∩ T| / |T|``.

    Also called sensitivity or true-positive rate.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.

    Returns
    -------
    float
        In [0, 1], or NaN when it is undefined (see Notes).

    Raises
    ------
    InvalidArgumentError
        If the shapes differ or an input is not a finite 2D/3D array.

    Notes
    -----
    Both masks empty gives 1.0.  A non-empty prediction with an empty truth
    gives NaN (there is no true voxel to find).  An empty prediction with a
    non-empty truth gives 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> recall(np.array([[1, 1, 1, 0]]), np.array([[0, 1, 1, 1]]))
    0.666...
    >>> recall(np.ones((1, 3)), np.zeros((1, 3)))
    nan
    """
    tp, fp, fn, _ = confusion_counts(pred, truth)
    return _recall(tp, fp, fn)


def relative_volume_difference(pred, truth) -> float:
    """Signed relative volume difference, ``(|P| - |T|) / |T|``.

    Parameters
    ----------
    pred, truth : array_like
        Predicted and reference masks of the same 2D or 3D shape; non-zero is
        foreground.

    Returns
    -------
    float
        Negative for an under-segmentation (down to -1 for an empty
        prediction), positive for an over-segmentation, 0 for equal volumes.

    Raises
    ------
    InvalidArgumentError
        If the shapes differ or an input is not a finite 2D/3D array.

    Notes
    -----
    The value is a ratio of voxel counts, so it does not depend on the voxel
    spacing.  It says nothing about overlap: two disjoint masks of equal size
    give 0.  Both masks empty gives 0.0; an empty truth with a non-empty
    prediction gives ``+inf``.

    Examples
    --------
    >>> import numpy as np
    >>> relative_volume_difference(np.array([[1, 1, 1, 0]]), np.array([[0, 0, 1, 1]]))
    0.5
    >>> relative_volume_difference(np.ones((1, 2)), np.zeros((1, 2)))
    inf
    """
    tp, fp, fn, _ = confusion_counts(pred, truth)
    return _rvd(tp, fp, fn)
