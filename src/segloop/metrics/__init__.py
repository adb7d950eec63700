"""Segmentation metrics on NumPy arrays (no torch): overlap, surface, lesions.

* :mod:`~segloop.metrics.overlap` -- Dice, IoU, precision, recall, relative
  volume difference, from voxel counts;
* :mod:`~segloop.metrics.surface` -- HD95, Hausdorff distance and ASSD in
  physical units (``spacing=`` in array order ``(z, y, x)`` / ``(y, x)``);
* :mod:`~segloop.metrics.lesions` -- lesion-wise detection counts;
* :mod:`~segloop.metrics.multiclass` -- all of the above per label of a label
  map;
* :mod:`~segloop.metrics.evaluate` -- files and folders of labels, the API of
  ``segloop evaluate``.

Empty masks follow one convention everywhere (details in each module): both
masks empty is a perfect prediction (dice 1, distances 0); exactly one empty
gives dice 0, infinite surface distances, and NaN for a ratio with nothing to
count (precision without predicted voxels, recall without true voxels).

Examples
--------
>>> import numpy as np
>>> truth = np.zeros((8, 8), np.uint8); truth[2:6, 2:6] = 1
>>> pred = np.roll(truth, 1, axis=1)
>>> round(dice(pred, truth), 3), hausdorff95(pred, truth, spacing=(1.0, 0.8))
(0.75, 0.8)
"""

from segloop.metrics.evaluate import CaseResult, Evaluation, MetricSummary, evaluate, pair_files
from segloop.metrics.lesions import LesionDetection, lesion_detection
from segloop.metrics.multiclass import (
    DEFAULT_METRICS,
    METRICS,
    foreground_labels,
    label_metrics,
    mean_over_labels,
)
from segloop.metrics.overlap import (
    confusion_counts,
    dice,
    iou,
    overlap_scores,
    precision,
    recall,
    relative_volume_difference,
)
from segloop.metrics.surface import (
    SurfaceDistances,
    assd,
    hausdorff,
    hausdorff95,
    surface_distances,
    surface_mask,
    surface_scores,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "CaseResult",
    "Evaluation",
    "LesionDetection",
    "MetricSummary",
    "SurfaceDistances",
    "assd",
    "confusion_counts",
    "dice",
    "evaluate",
    "foreground_labels",
    "hausdorff",
    "hausdorff95",
    "iou",
    "label_metrics",
    "lesion_detection",
    "mean_over_labels",
    "overlap_scores",
    "pair_files",
    "precision",
    "recall",
    "relative_volume_difference",
    "surface_distances",
    "surface_mask",
    "surface_scores",
]
