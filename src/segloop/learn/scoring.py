"""Scoring a model on prepared volumes: the one way per-case Dice is computed.

Training validates with it (every ``training.val_every`` epochs), tests
``best.pt`` with it (``metrics.json``), and :mod:`segloop.learn.evaluate`
(``segloop evaluate --model``) adds distances, lesions and a gallery on top:

* :func:`predict_cases` predicts each labelled :class:`~segloop.learn.data.Volume`
  (:func:`infer_volume`: a 2D model slices a volume along the volume's own
  ``slice_axis``) and gives the prediction and the truth on one grid. With
  ``native``, a case that preprocessing resampled or cropped is scored on its
  **native grid**: the outputs are brought back to the input grid
  (:meth:`segloop.learn.predict.Predictor.to_input_grid`, what
  :meth:`~segloop.learn.predict.Predictor.predict` gives on the case's
  images) and compared with the native annotation mapped to the config's
  classes (read again from ``data.path``), so resampling and cropping do not
  flatter the numbers. Otherwise (validation) cases are scored on the
  network's grid (the preprocessed arrays, the truth resampled
  nearest-neighbour); on cases preprocessing left alone both grids are one.
* :func:`score_case` scores one case: per class the Dice of the label against
  the truth (:func:`segloop.metrics.dice`), the soft Dice of the
  probabilities for soft labels (:func:`soft_dice`; the hard Dice then uses
  the truth thresholded at 0.5), and with ``distances`` HD95 / ASSD in mm and
  lesion-wise detection.
* :func:`score_cases` and :func:`summarize`: the cases and their means, as
  ``metrics.json`` holds them (``grid`` says which grid).

Examples
--------
>>> import numpy as np, torch
>>> from segloop.learn.config import load_config
>>> from segloop.learn.data import Volume
>>> from segloop.learn.networks import Segmenter
>>> from segloop.learn.predict import Predictor
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> conv = torch.nn.Conv2d(1, 2, 1)  # foreground where x > 0.5
>>> with torch.no_grad():
...     _ = conv.weight.copy_(torch.tensor([-10.0, 10.0]).view(2, 1, 1, 1))
...     _ = conv.bias.copy_(torch.tensor([5.0, -5.0]))
>>> predictor = Predictor(Segmenter(conv, "softmax"), cfg, in_channels=1)
>>> truth = np.zeros((3, 8, 8), np.uint8); truth[1, 2:6, 2:6] = 1
>>> vol = Volume("v", "s", truth[None].astype(np.float32), truth, (1.0, 1.0, 1.0), "v.nii.gz",
...              slice_axis=2)
>>> cases = score_cases(predictor, [vol])
>>> cases[0]["dice"], summarize(cases, cfg)["per_class"]
(1.0, {'foreground': 1.0})
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.learn.channel_cases import split_channels
from segloop.learn.config import Config
from segloop.learn.data import Volume, open_config_dataset, read_volume
from segloop.learn.predict import Predictor
from segloop.learn.preprocess import slice_axis_index
from segloop.metrics import dice as mask_dice
from segloop.metrics import label_metrics, lesion_detection

__all__ = ["LESION_KEYS", "Outcome", "infer_volume", "predict_cases", "score_case",
           "score_cases", "soft_dice", "summarize", "threshold_dice", "truth_masks"]

#: Thresholds of :func:`threshold_dice` (QUBIQ 2020: 0.1, 0.2, ..., 0.9).
THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))

#: Lesion-detection counts of a class (:func:`score_case` with ``distances``).
LESION_KEYS = ("n_truth", "n_pred", "tp_truth", "fp_pred")


def soft_dice(probabilities, truth) -> float:
    """``2 Σ p t / (Σ p + Σ t)`` (1.0 when both are empty).

    Examples
    --------
    >>> soft_dice(np.array([0.5, 1.0]), np.array([1.0, 1.0]))
    0.857...
    """
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2.0 * (p * t).sum() / total)


def threshold_dice(probabilities, truth, thresholds=THRESHOLDS) -> float:
    """Mean over ``thresholds`` of the Dice of ``p > τ`` against ``truth > τ`` (QUBIQ's score).

    Rewards outputs that follow the raters' agreement level, which a single
    threshold at 0.5 cannot see.

    Examples
    --------
    >>> t = np.array([[0.0, 0.3, 0.6, 1.0]])
    >>> threshold_dice(t, t), round(threshold_dice((t > 0.5).astype(float), t), 3)
    (1.0, 0.807)
    """
    p, t = np.asarray(probabilities), np.asarray(truth)
    return float(np.mean([mask_dice(p > tau, t > tau) for tau in thresholds]))


def truth_masks(label, n_classes: int, *, soft: bool = False) -> tuple[list, np.ndarray | None]:
    """Per-class true masks of a label, and the soft truth ``(n, *spatial)`` if soft.

    A hard label holds class indices ``(*spatial)``; a soft one ``(n, *spatial)``
    values in [0, 1], thresholded at 0.5 for the masks.

    Examples
    --------
    >>> masks, soft = truth_masks(np.array([[0, 1, 2]]), 2)
    >>> [m.astype(int).tolist() for m in masks], soft
    ([[[0, 1, 0]], [[0, 0, 1]]], None)
    """
    lab = np.asarray(label)
    if soft:
        if lab.shape[0] != n_classes:
            raise InvalidArgumentError(f"a soft label needs {n_classes} channels, got shape "
                                       f"{lab.shape}")
        values = lab.astype(np.float32)
        return [v >= 0.5 for v in values], values
    return [lab == c for c in range(1, n_classes + 1)], None


def score_case(pred, truth, *, classes, probabilities=None, soft: bool = False,
               offset: int = 1, spacing=None, distances: bool = False) -> dict:
    """Scores of one case: per-class Dice (and soft Dice), with ``distances`` HD95, ASSD, lesions.

    Parameters
    ----------
    pred : array_like
        Predicted class indices.
    truth : array_like
        True class indices, or with ``soft`` one channel per class in [0, 1].
    classes : sequence of str
        Class names (class ``i`` is the ``i``-th, from 1).
    probabilities : array_like, optional
        Activated outputs ``(K, *spatial)``; with a soft truth, adds the soft Dice.
    soft : bool
        ``truth`` is soft.
    offset : int
        Channel of class 1 in ``probabilities`` (1 for softmax, 0 otherwise).
    spacing : sequence of float, optional
        Voxel size (array order) for the distances.
    distances : bool
        Also HD95 and ASSD (mm) and lesion detection (connected components).

    Returns
    -------
    dict
        ``dice`` (mean over classes), ``per_class`` ``{name: dice}``; soft:
        ``soft_dice``, ``soft_per_class``, ``soft_mse`` (mean squared error of
        the probabilities against the soft truth) and ``threshold_dice``
        (:func:`threshold_dice`), means over classes; ``distances``: ``classes``
        ``{name: {"hd95", "assd", "n_truth", "n_pred", "tp_truth", "fp_pred"}}``.

    Examples
    --------
    >>> truth = np.zeros((6, 6), np.uint8); truth[1:4, 1:4] = 1
    >>> row = score_case(np.roll(truth, 1, axis=0), truth, classes=["tumour"], distances=True)
    >>> round(row["dice"], 3), row["classes"]["tumour"]["hd95"], row["classes"]["tumour"]["n_pred"]
    (0.667, 1.0, 1)
    """
    names = list(classes)
    masks, soft_truth = truth_masks(truth, len(names), soft=soft)
    p = np.asarray(pred)
    if p.shape != masks[0].shape:
        raise InvalidArgumentError(f"prediction shape {p.shape} differs from the truth's "
                                   f"{masks[0].shape}")
    out: dict = {"per_class": {}}
    if soft_truth is not None and probabilities is not None:
        probs = [np.asarray(probabilities)[i + offset] for i in range(len(names))]
        out["soft_per_class"] = {name: soft_dice(pr, t)
                                 for name, pr, t in zip(names, probs, soft_truth, strict=True)}
        out["soft_mse"] = float(np.mean([np.mean((pr - t) ** 2)
                                         for pr, t in zip(probs, soft_truth, strict=True)]))
        out["threshold_dice"] = float(np.mean([threshold_dice(pr, t)
                                               for pr, t in zip(probs, soft_truth, strict=True)]))
    if distances:
        out["classes"] = {}
    for i, (name, t) in enumerate(zip(names, masks, strict=True), start=1):
        mine = p == i
        out["per_class"][name] = mask_dice(mine, t)
        if distances:
            scores = label_metrics(mine.astype(np.uint8), t.astype(np.uint8), labels=[1],
                                   spacing=spacing, metrics=("hd95", "assd"))[1]
            found = lesion_detection(mine, t)
            out["classes"][name] = {**scores, **{k: getattr(found, k) for k in LESION_KEYS}}
    out["dice"] = float(np.mean(list(out["per_class"].values())))
    if "soft_per_class" in out:
        out["soft_dice"] = float(np.mean(list(out["soft_per_class"].values())))
    return out


def infer_volume(predictor: Predictor, volume, *, tta: bool = False):
    """Activated outputs ``(K, *spatial)`` of a pre-processed volume, and its slice axis.

    A 2D model on a volume runs along the volume's own ``slice_axis`` (what
    :func:`segloop.learn.preprocess.preprocess_image` recorded for it), else
    along ``data.slice_axis`` of the predictor's config; the axis is returned
    (None for 2D images and 3D models). A FiLM model is conditioned on the
    volume's ``meta`` vector.
    """
    image = np.asarray(volume.image)
    meta = getattr(volume, "meta", None)
    if predictor.dims != 2 or image.ndim != 4:
        return predictor.infer(image, tta=tta, meta=meta), None
    axis = getattr(volume, "slice_axis", None)
    axis = slice_axis_index(predictor.config.data.slice_axis) if axis is None else int(axis)
    return predictor.infer(image, tta=tta, slice_axis=axis, meta=meta), axis


@dataclass
class Outcome:
    """A labelled case predicted, on the grid it is scored on (see :func:`predict_cases`)."""

    volume: Volume
    probabilities: np.ndarray  #: activated outputs ``(K, *grid)``
    label: np.ndarray  #: predicted class indices ``(*grid)``
    truth: np.ndarray  #: class indices, or soft ``(n, *grid)``
    spacing: tuple[float, ...]
    slice_axis: int | None
    grid: str  #: ``native`` (the case's input grid) or ``network`` (the preprocessed one)
    restored: bool = False  #: the outputs were brought back to the input grid


def _changed(volume) -> bool:
    """Whether preprocessing resampled or cropped the volume (its grid is not the input's)."""
    info = getattr(volume, "info", None) or {}
    return bool(info.get("resampled") or info.get("crop"))


class _NativeTruth:
    """The native annotation of cases, mapped to the config's classes (dataset opened once)."""

    def __init__(self, cfg: Config):
        self.cfg, self.cases = cfg, None

    def __call__(self, case_id: str) -> np.ndarray:
        d = self.cfg.data
        if self.cases is None:  # opened as segloop.learn.data.prepare_data opens it
            cases = split_channels(open_config_dataset(d).cases, d.split_channels)
            self.cases = {c.id: c for c in cases}
        if case_id not in self.cases:
            raise InvalidArgumentError(f"case {case_id} is no longer in the dataset",
                                       path=d.path)
        native = d.model_copy(update={"spacing": None, "crop_foreground": False})
        return read_volume(self.cases[case_id], native).label


def predict_cases(predictor: Predictor, volumes, *, tta: bool = False,
                  native: bool = False) -> Iterator[Outcome]:
    """Predict every labelled volume, on the grid it is scored on.

    With ``native``, a volume that preprocessing resampled or cropped is
    brought back to its input grid and paired with its native annotation;
    see the module docstring. Cases without a label are skipped.
    """
    truth_of = _NativeTruth(predictor.config) if native else None
    for v in volumes:
        if v.label is None:
            continue
        probs, axis = infer_volume(predictor, v, tta=tta)
        truth, spacing = v.label, tuple(float(s) for s in v.spacing)
        restored = truth_of is not None and _changed(v)
        if restored:
            probs = predictor.to_input_grid(probs, v.info)
            truth, spacing = truth_of(v.id), tuple(float(s) for s in v.info["spacing"])
        yield Outcome(v, probs, predictor.to_label(probs, slice_axis=axis), truth, spacing,
                      axis, "network" if truth_of is None else "native", restored)


def score_cases(predictor: Predictor, volumes, *, tta: bool = False,
                native: bool = False) -> list[dict]:
    """Per-case Dice of ``predictor`` on prepared volumes (cases without a label are skipped).

    Parameters
    ----------
    predictor : Predictor
        The model and its config (classes, final activation, ``data.path``
        for the native annotation).
    volumes : sequence of Volume
        From :func:`segloop.learn.data.prepare_data`.
    tta : bool
        Average the flipped passes.
    native : bool
        Score on each case's input grid against its native annotation
        (:func:`predict_cases`); otherwise on the network's grid.

    Returns
    -------
    list of dict
        Per case: ``id``, ``grid`` and :func:`score_case`'s ``dice``,
        ``per_class`` (and ``soft_dice``, ``soft_per_class`` for soft labels).
    """
    cfg = predictor.config
    offset = 1 if predictor.activation == "softmax" else 0
    return [{"id": o.volume.id, "grid": o.grid,
             **score_case(o.label, o.truth, classes=cfg.data.classes, probabilities=o.probabilities,
                          soft=cfg.data.soft_labels, offset=offset)}
            for o in predict_cases(predictor, volumes, tta=tta, native=native)]


def summarize(cases: list[dict], cfg: Config) -> dict:
    """Means over cases: ``dice``, ``per_class`` and, soft, the other scores of :func:`score_case`.

    Soft labels add ``hard_dice`` (= ``dice``), ``soft_dice``, ``soft_mse`` and
    ``threshold_dice``. ``grid`` is the cases' grid (``native`` or ``network``),
    ``per_case`` the cases.
    """
    def mean(values):
        values = list(values)
        return float(np.mean(values)) if values else None

    out = {"dice": mean(c["dice"] for c in cases),
           "per_class": {n: mean(c["per_class"][n] for c in cases) for n in cfg.data.classes}}
    if cfg.data.soft_labels:
        out.update(hard_dice=out["dice"], soft_dice=mean(c["soft_dice"] for c in cases),
                   soft_mse=mean(c["soft_mse"] for c in cases),
                   threshold_dice=mean(c["threshold_dice"] for c in cases),
                   soft_per_class={n: mean(c["soft_per_class"][n] for c in cases)
                                   for n in cfg.data.classes})
    grids = {c.get("grid") for c in cases} - {None}
    out["grid"] = grids.pop() if len(grids) == 1 else None
    out["per_case"] = cases
    return out
