"""Evaluate predicted label files against reference label files.

This is the API behind ``segloop evaluate --pred P --truth T``.  ``P`` and
``T`` are both files (one case) or both folders; in folders, files are paired
by identical name (``case01.nii.gz`` with ``case01.nii.gz``).  Only regular,
non-hidden files whose extension :mod:`segloop.io` reads take part;
sub-folders and other files are ignored.  An image file present on one side
only is reported in :attr:`Evaluation.problems`; no pair at all is an error.

Each pair is read with ``read_image(..., kind="label")`` (a float mask holding
0.0/1.0 is accepted, non-integer values are refused by the reader), the two
must share a grid (else :class:`~segloop.errors.GeometryMismatchError` naming
both files), and every label is scored by
:func:`~segloop.metrics.multiclass.label_metrics` with the *truth's* spacing.
The first unreadable or mismatched pair stops the evaluation: a summary that
silently leaves out a case would mislead.

Non-finite values
-----------------
Empty masks give NaN (undefined precision or recall) or ``inf`` (surface
distances to an empty surface) -- see :mod:`segloop.metrics.overlap` and
:mod:`segloop.metrics.surface`.  The summary mean of a metric over cases
leaves out NaN and infinite values and reports how many cases had each
(``n_nan``, ``n_inf``), so one missed label does not make every mean
infinite but is not hidden either.  The JSON form writes non-finite values as
``null`` and explains them in a ``notes`` list beside them.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, write_image
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> truth = np.zeros((6, 6), np.uint8); truth[1:4, 1:4] = 1
>>> write_image(Image(truth, kind="label"), folder / "truth.nii.gz")
>>> write_image(Image(np.roll(truth, 1, axis=0), kind="label"), folder / "pred.nii.gz")
>>> result = evaluate(folder / "pred.nii.gz", folder / "truth.nii.gz", metrics=("dice", "hd95"))
>>> result.cases[0].metrics
{1: {'dice': 0.666..., 'hd95': 1.0}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segloop.errors import DatasetError, FileMissingError, InvalidArgumentError, SegloopError
from segloop.io import check_same_grid, format_of, read_image
from segloop.io.files import write_json
from segloop.metrics.lesions import LesionDetection, lesion_detection
from segloop.metrics.multiclass import (
    DEFAULT_METRICS,
    check_labels,
    check_metric_names,
    foreground_labels,
    label_metrics,
)

__all__ = [
    "CaseResult",
    "Evaluation",
    "MetricSummary",
    "evaluate",
    "pair_files",
]


@dataclass(frozen=True)
class CaseResult:
    """The scores of one prediction/reference pair.

    Attributes
    ----------
    name : str
        The file name shared by both sides (the truth's name for two files).
    pred, truth : pathlib.Path
        The two files.
    spacing : tuple of float
        The truth's voxel size (array order), used for the surface metrics.
    metrics : dict
        ``{label: {metric: value}}`` from :func:`label_metrics`.
    notes : dict
        ``{label: [note, ...]}`` for labels with an empty side or a
        non-finite value; labels without remarks are absent.
    lesions : dict
        ``{label: LesionDetection}`` when lesion detection was asked, else
        empty.
    """

    name: str
    pred: Path
    truth: Path
    spacing: tuple[float, ...]
    metrics: dict[int, dict[str, float]]
    notes: dict[int, list[str]] = field(default_factory=dict)
    lesions: dict[int, LesionDetection] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one label summarised over the cases.

    Attributes
    ----------
    mean : float
        Mean over the cases with a finite value (NaN if there is none).
    n : int
        Number of cases with a finite value.
    n_nan : int
        Cases where the metric is undefined (NaN), left out of the mean.
    n_inf : int
        Cases where the metric is infinite, left out of the mean.
    """

    mean: float
    n: int
    n_nan: int
    n_inf: int


@dataclass(frozen=True)
class Evaluation:
    """Everything :func:`evaluate` found: per-case scores, summary, problems.

    Attributes
    ----------
    pred, truth : pathlib.Path
        What was compared (files or folders).
    metrics : tuple of str
        The metric names, in column order.
    cases : list of CaseResult
        One entry per pair, sorted by name.
    summary : dict
        ``{label: {metric: MetricSummary}}`` over the cases holding the label.
    lesion_summary : dict
        ``{label: LesionDetection}`` with the counts summed over the cases
        (empty unless lesion detection was asked).
    problems : list of str
        Files present on one side only, and cases left out because both
        files are all background (with ``labels=None``).
    """

    pred: Path
    truth: Path
    metrics: tuple[str, ...]
    cases: list[CaseResult]
    summary: dict[int, dict[str, MetricSummary]]
    lesion_summary: dict[int, LesionDetection]
    problems: list[str]

    def to_dict(self) -> dict:
        """A JSON-ready dictionary: non-finite values become ``None`` with a note.

        Returns
        -------
        dict
            Keys ``pred``, ``truth``, ``metrics``, ``cases``, ``summary``,
            ``lesion_summary`` and ``problems``; label keys are strings.
        """
        return {
            "pred": str(self.pred),
            "truth": str(self.truth),
            "metrics": list(self.metrics),
            "cases": [_case_to_dict(case) for case in self.cases],
            "summary": {
                str(label): {m: _summary_to_dict(s) for m, s in per_metric.items()}
                for label, per_metric in self.summary.items()
            },
            "lesion_summary": {
                str(label): _lesions_to_dict(d) for label, d in self.lesion_summary.items()
            },
            "problems": list(self.problems),
        }

    def write_json(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write :meth:`to_dict` as strict JSON (no NaN/Infinity tokens), atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The output file.
        overwrite : bool
            Replace an existing file (the old one is kept as ``NAME.~N~``).

        Raises
        ------
        OutputExistsError
            If ``path`` exists and ``overwrite`` is false.
        """
        write_json(self.to_dict(), path, overwrite=overwrite)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _case_to_dict(case: CaseResult) -> dict:
    labels = {}
    for label, scores in case.metrics.items():
        entry: dict = {m: _finite_or_none(v) for m, v in scores.items()}
        if label in case.notes:
            entry["notes"] = list(case.notes[label])
        labels[str(label)] = entry
    out = {
        "name": case.name,
        "pred": str(case.pred),
        "truth": str(case.truth),
        "spacing": list(case.spacing),
        "labels": labels,
    }
    if case.lesions:
        out["lesions"] = {str(k): _lesions_to_dict(v) for k, v in case.lesions.items()}
    return out


def _summary_to_dict(summary: MetricSummary) -> dict:
    return {
        "mean": _finite_or_none(summary.mean),
        "n": summary.n,
        "n_nan": summary.n_nan,
        "n_inf": summary.n_inf,
    }


def _lesions_to_dict(detection: LesionDetection) -> dict:
    out = {
        k: _finite_or_none(v) if isinstance(v, float) else v for k, v in detection.as_dict().items()
    }
    undefined = [k for k in ("tpr", "fdr") if out[k] is None]
    if undefined:
        out["notes"] = [
            f"{', '.join(undefined)} undefined (no lesion on one side), written as null"
        ]
    return out


def _image_files(folder: Path) -> dict[str, Path]:
    """The readable image files directly in ``folder``, by name."""
    files = {}
    for entry in folder.iterdir():
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            format_of(entry)
        except SegloopError:
            continue
        files[entry.name] = entry
    return files


def pair_files(
    pred: str | os.PathLike, truth: str | os.PathLike
) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pair prediction and reference files.

    Parameters
    ----------
    pred, truth : str or os.PathLike
        Two files, or two folders whose image files are paired by name.

    Returns
    -------
    pairs : list of tuple
        ``(name, pred_file, truth_file)`` sorted by name.
    problems : list of str
        One line per image file found on one side only.

    Raises
    ------
    FileMissingError
        If ``pred`` or ``truth`` does not exist.
    InvalidArgumentError
        If one is a file and the other a folder.
    DatasetError
        If two folders have no file name in common.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ["p/a.nii.gz", "p/b.nii.gz", "t/a.nii.gz", "t/c.nii.gz", "t/notes.txt"]:
    ...     (root / rel).parent.mkdir(exist_ok=True); _ = (root / rel).write_bytes(b"x")
    >>> pairs, problems = pair_files(root / "p", root / "t")
    >>> [name for name, _, _ in pairs]
    ['a.nii.gz']
    >>> len(problems)
    2
    """
    pred, truth = Path(pred), Path(truth)
    for role, path in (("pred", pred), ("truth", truth)):
        if not path.exists():
            raise FileMissingError(f"{role} does not exist", path=path)
    if pred.is_dir() != truth.is_dir():
        kinds = {True: "a folder", False: "a file"}
        raise InvalidArgumentError(
            f"pred and truth must both be files or both be folders; pred {pred} is "
            f"{kinds[pred.is_dir()]} and truth {truth} is {kinds[truth.is_dir()]}"
        )
    if not pred.is_dir():
        return [(truth.name, pred, truth)], []
    pred_files, truth_files = _image_files(pred), _image_files(truth)
    common = sorted(pred_files.keys() & truth_files.keys())
    if not common:
        raise DatasetError(
            f"no file name is in both folders (pred {pred}: {len(pred_files)} image files, "
            f"truth {truth}: {len(truth_files)} image files)"
        )
    problems = [
        f"{files[name]}: no file of that name in the {other} folder {folder}"
        for files, other, folder in ((pred_files, "truth", truth), (truth_files, "pred", pred))
        for name in sorted(files.keys() - set(common))
    ]
    return [(name, pred_files[name], truth_files[name]) for name in common], problems


def _notes(pred: np.ndarray, truth: np.ndarray, label: int, scores: dict[str, float]):
    """Remarks on one label of one case: which side is empty, which values are non-finite."""
    in_pred, in_truth = bool(np.any(pred == label)), bool(np.any(truth == label))
    notes = []
    if not (in_pred and in_truth):
        side = {(False, True): "pred", (True, False): "truth", (False, False): "pred and truth"}
        notes.append(f"{side[in_pred, in_truth]} empty")
    bad = [f"{m}={v}" for m, v in scores.items() if not math.isfinite(v)]
    if bad:
        notes.append(f"non-finite values written as null: {', '.join(bad)}")
    return notes


def _summarise(cases: list[CaseResult], metrics: tuple[str, ...]):
    values: dict[int, dict[str, list[float]]] = {}
    for case in cases:
        for label, scores in case.metrics.items():
            per_label = values.setdefault(label, {m: [] for m in metrics})
            for metric in metrics:
                per_label[metric].append(scores[metric])
    summary = {}
    for label in sorted(values):
        summary[label] = {}
        for metric, vals in values[label].items():
            finite = [v for v in vals if math.isfinite(v)]
            summary[label][metric] = MetricSummary(
                mean=sum(finite) / len(finite) if finite else math.nan,
                n=len(finite),
                n_nan=sum(math.isnan(v) for v in vals),
                n_inf=sum(math.isinf(v) for v in vals),
            )
    return summary


def _pool_lesions(cases: list[CaseResult]) -> dict[int, LesionDetection]:
    totals: dict[int, list[int]] = {}
    for case in cases:
        for label, d in case.lesions.items():
            counts = totals.setdefault(label, [0, 0, 0, 0])
            for i, value in enumerate((d.n_truth, d.n_pred, d.tp_truth, d.fp_pred)):
                counts[i] += value
    return {
        label: LesionDetection.from_counts(n_truth=a, n_pred=b, tp_truth=c, fp_pred=d)
        for label, (a, b, c, d) in sorted(totals.items())
    }


def evaluate(
    pred: str | os.PathLike,
    truth: str | os.PathLike,
    *,
    labels: Iterable[int] | None = None,
    metrics: Iterable[str] = DEFAULT_METRICS,
    lesions: bool = False,
    connectivity: int | None = None,
) -> Evaluation:
    """Score predicted label files against reference label files.

    Parameters
    ----------
    pred, truth : str or os.PathLike
        Two label files, or two folders of label files paired by name.
    labels : iterable of int, optional
        Labels to score in every case.  None (default): in each case, every
        non-zero value present in either file.
    metrics : iterable of str, optional
        Names from :data:`segloop.metrics.multiclass.METRICS`.
    lesions : bool, optional
        Also count lesions (connected components) per label with
        :func:`~segloop.metrics.lesions.lesion_detection`.
    connectivity : int, optional
        Lesion connectivity (1 = faces only, None = full); only with
        ``lesions``.

    Returns
    -------
    Evaluation
        Per-case scores, the summary over cases, and the problems met.

    Raises
    ------
    FileMissingError, InvalidArgumentError, DatasetError
        For bad paths (see :func:`pair_files`) or a bad label or metric.
    GeometryMismatchError
        If a pair does not share a grid (both files are named).
    SegloopError
        If a file cannot be read as a label map.

    Notes
    -----
    Surface metrics use the truth's spacing (the grids agree within the
    reader's tolerance).  See the module docstring for the handling of
    empty masks and non-finite values.
    """
    names = check_metric_names(metrics)
    chosen = None if labels is None else check_labels(labels)
    pairs, problems = pair_files(pred, truth)
    cases = []
    for name, pred_file, truth_file in pairs:
        pred_image = read_image(pred_file, kind="label")
        truth_image = read_image(truth_file, kind="label")
        check_same_grid(pred_image, truth_image)
        p, t = pred_image.array, truth_image.array
        case_labels = foreground_labels(p, t) if chosen is None else chosen
        if not case_labels:
            problems.append(f"{name}: pred and truth are all background, no label to score")
            continue
        scores = label_metrics(p, t, labels=case_labels, spacing=truth_image.spacing, metrics=names)
        notes = {label: _notes(p, t, label, s) for label, s in scores.items()}
        detections = {}
        if lesions:
            detections = {
                label: lesion_detection(p == label, t == label, connectivity=connectivity)
                for label in case_labels
            }
        cases.append(
            CaseResult(
                name=name,
                pred=pred_file,
                truth=truth_file,
                spacing=tuple(truth_image.spacing),
                metrics=scores,
                notes={label: n for label, n in notes.items() if n},
                lesions=detections,
            )
        )
    return Evaluation(
        pred=Path(pred),
        truth=Path(truth),
        metrics=names,
        cases=cases,
        summary=_summarise(cases, names),
        lesion_summary=_pool_lesions(cases),
        problems=problems,
    )
