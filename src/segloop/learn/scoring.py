"""Scoring a model on preprocessed volumes: outputs, per-case Dice and their means.

What training validates with (every ``training.val_every`` epochs) and tests
``best.pt`` with: :func:`infer_volume` runs a predictor on a
:class:`~segloop.learn.data.Volume` (a 2D model slices a volume along the
volume's own ``slice_axis``), :func:`score_cases` gives each case's foreground
Dice (and soft Dice for soft labels) on the network's grid, :func:`summarize`
their means, as ``metrics.json`` holds them. :mod:`segloop.learn.evaluate`
scores a split in more depth (HD95, ASSD, lesions, a gallery).

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

import numpy as np

from segloop.learn.config import Config
from segloop.learn.evaluate import soft_dice
from segloop.learn.predict import Predictor
from segloop.learn.preprocess import slice_axis_index
from segloop.metrics import dice as mask_dice

__all__ = ["infer_volume", "score_cases", "summarize"]


def infer_volume(predictor: Predictor, volume, *, tta: bool = False):
    """Activated outputs ``(K, *spatial)`` of a pre-processed volume, and its slice axis.

    A 2D model on a volume runs along the volume's own ``slice_axis`` (what
    :func:`segloop.learn.preprocess.preprocess_image` recorded for it), else
    along ``data.slice_axis`` of the predictor's config; the axis is returned
    (None for 2D images and 3D models).
    """
    image = np.asarray(volume.image)
    if predictor.dims != 2 or image.ndim != 4:
        return predictor.infer(image, tta=tta), None
    axis = getattr(volume, "slice_axis", None)
    axis = slice_axis_index(predictor.config.data.slice_axis) if axis is None else int(axis)
    return predictor.infer(image, tta=tta, slice_axis=axis), axis


def score_cases(predictor: Predictor, volumes, *, tta: bool = False) -> list[dict]:
    """Per-case foreground Dice of ``predictor`` on pre-processed volumes.

    Each case: ``id``, ``dice`` (mean over classes), ``per_class``
    (:func:`segloop.metrics.dice` of the predicted label against the truth);
    with soft labels the truth is thresholded at 0.5 for this hard Dice and
    ``soft_dice`` / ``soft_per_class`` compare the probabilities with the soft
    labels (:func:`segloop.learn.evaluate.soft_dice`). Cases without a label are skipped.
    """
    cfg = predictor.config
    names, soft = list(cfg.data.classes), cfg.data.soft_labels
    offset = 1 if cfg.model.final_activation == "softmax" else 0
    cases = []
    for volume in volumes:
        if volume.label is None:
            continue
        probs, axis = infer_volume(predictor, volume, tta=tta)
        label = predictor.to_label(probs, slice_axis=axis)
        case = {"id": volume.id, "per_class": {}}
        if soft:
            case["soft_per_class"] = {}
        for c, name in enumerate(names, start=1):
            if soft:
                truth = volume.label[c - 1]
                case["soft_per_class"][name] = soft_dice(probs[c - 1 + offset], truth)
                case["per_class"][name] = mask_dice(label == c, truth >= 0.5)
            else:
                case["per_class"][name] = mask_dice(label == c, volume.label == c)
        case["dice"] = float(np.mean(list(case["per_class"].values())))
        if soft:
            case["soft_dice"] = float(np.mean(list(case["soft_per_class"].values())))
        cases.append(case)
    return cases


def summarize(cases: list[dict], cfg: Config) -> dict:
    """Means over cases: ``dice``, ``per_class`` (and ``soft_dice``, ``hard_dice`` when soft)."""
    def mean(values):
        values = list(values)
        return float(np.mean(values)) if values else None

    out = {"dice": mean(c["dice"] for c in cases),
           "per_class": {n: mean(c["per_class"][n] for c in cases) for n in cfg.data.classes}}
    if cfg.data.soft_labels:
        out.update(hard_dice=out["dice"], soft_dice=mean(c["soft_dice"] for c in cases),
                   soft_per_class={n: mean(c["soft_per_class"][n] for c in cases)
                                   for n in cfg.data.classes})
    out["per_case"] = cases
    return out
