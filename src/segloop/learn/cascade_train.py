"""Training a cascade with one command: stage 1 first, then stage 2 on the crops.

``segloop train CASCADE.yaml`` (:func:`segloop.learn.train.train` of a config
with a ``cascade`` section) runs the stages **in sequence**; there is no
end-to-end gradient between them:

1. :func:`resolve_locate`: the locating model is ``cascade.locate``'s
   checkpoint, or its config (:func:`segloop.learn.cascade_data.locate_config`)
   trained into ``OUTPUT_DIR/locate`` by :func:`~segloop.learn.train.train`.
   A finished stage-1 run (``best.pt`` and ``metrics.json``) of the same
   config is reused while ``training.resume`` is on (run-only settings such
   as threads aside), an unfinished one resumes; a run of another stage-1
   config, or any with ``training.resume: false``, is trained afresh. A
   stage-2 ``last.pt`` that embeds another stage 1 is not resumed either;
2. :func:`prepare_cascade`: the stage-1 predictor, the stage-2 cases cropped
   to their boxes (:func:`segloop.learn.cascade_data.prepare_cascade_data`)
   and the stage-1 checkpoint's content that every stage-2 checkpoint embeds
   (``cascade_locate``: :func:`segloop.learn.cascade.embedded_locate`);
3. stage 2 trains and validates on the crops like any model; its test
   metrics (``metrics.json``) are scored by :func:`score_cascade` on the test
   cases' **whole images through the cascade** (locate, crop, segment, paste
   back), against their native annotation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segloop.errors import InvalidArgumentError
from segloop.learn.cascade import CascadePredictor, embedded_locate, region_classes
from segloop.learn.cascade_data import CascadeData, locate_config, prepare_cascade_data
from segloop.learn.checkpoint import load_checkpoint, restore_network
from segloop.learn.config import Config, load_config
from segloop.learn.data import contrast_sources, read_volume
from segloop.learn.optim import deterministic_runtime
from segloop.learn.predict import Predictor
from segloop.learn.resume import what_learns
from segloop.learn.scoring import score_case

__all__ = ["CascadeRun", "prepare_cascade", "resolve_locate", "score_cascade"]

def resolve_locate(cfg: Config, *, log=print, progress=None) -> dict:
    """The stage-1 checkpoint of cascade config ``cfg``: given, reused, or trained now.

    Returns
    -------
    dict
        ``checkpoint`` (loaded), ``path``, ``trained`` (by this call),
        ``seconds`` (its training time) and ``dice`` (its own test Dice, when
        its ``metrics.json`` is there).
    """
    from segloop.learn.train import train  # train imports this module

    stage1 = locate_config(cfg)
    trained = False
    if stage1 is None:
        path = Path(cfg.cascade.locate)
    else:
        out = Path(stage1.output.dir)
        path, last = out / "best.pt", out / "last.pt"
        same = cfg.training.resume and last.is_file() and what_learns(
            load_checkpoint(last)["config"]) == what_learns(stage1)
        if same and path.is_file() and (out / "metrics.json").is_file():
            log(f"locate: reusing {path} (a finished run of the same stage-1 config)")
        else:
            region_classes(stage1, cfg.cascade.classes)  # a bad name fails before training
            log(f"locate: training stage 1 into {out}" + (
                " (resuming)" if same else " (afresh)" if last.is_file() else ""))
            overrides = [] if same else ["training.resume=false"]
            train(load_config(stage1, overrides=overrides), log=log, progress=progress)
            trained = True
    ck = load_checkpoint(path)
    if ck["config"].cascade is not None:
        raise InvalidArgumentError("cascade.locate: this checkpoint is a cascade itself",
                                   path=path)
    region_classes(ck["config"], cfg.cascade.classes)
    metrics = Path(path).with_name("metrics.json")
    result = json.loads(metrics.read_text()) if metrics.is_file() else {}
    return {"checkpoint": ck, "path": str(path), "trained": trained,
            "seconds": result.get("seconds", ck.get("elapsed")), "dice": result.get("dice")}


@dataclass
class CascadeRun:
    """What :func:`segloop.learn.train.train` needs of a cascade's stage 1."""

    locate: Predictor  #: the stage-1 predictor
    embedded: dict  #: ``cascade_locate`` of every stage-2 checkpoint
    data: CascadeData  #: stage 2's cropped cases and the test cases
    info: dict  #: :func:`resolve_locate`'s ``path``, ``trained``, ``seconds``, ``dice``

    def resumes_another(self, last: Path) -> bool:
        """Whether the stage-2 checkpoint ``last`` embeds another stage 1 than this one."""
        if not last.is_file():
            return False
        old = (load_checkpoint(last).get("cascade_locate") or {}).get("model") or {}
        new = self.embedded["model"]
        return set(old) != set(new) or any(
            old[k].shape != new[k].shape or not torch.equal(old[k], new[k].cpu()) for k in new)

    def predictor(self, segment: Predictor) -> CascadePredictor:
        """The cascade of this stage 1 and the stage-2 predictor ``segment``."""
        return CascadePredictor(self.locate, segment, source=str(
            Path(segment.config.output.dir) / "best.pt"))


def prepare_cascade(cfg: Config, *, log=print, progress=None) -> CascadeRun:
    """Stage 1 resolved (trained when needed), the cropped stage-2 data (module docstring)."""
    found = resolve_locate(cfg, log=log, progress=progress)
    ck = found["checkpoint"]
    with deterministic_runtime(cfg):
        locate = Predictor(restore_network(ck), ck["config"],
                           in_channels=int(ck.get("in_channels", 1)), source=found["path"])
        ids = region_classes(ck["config"], cfg.cascade.classes)
        data = prepare_cascade_data(cfg, locate=locate, region_ids=ids, log=log)
    info = {k: found[k] for k in ("path", "trained", "seconds", "dice")}
    return CascadeRun(locate, embedded_locate(ck), data, info)


def score_cascade(predictor: CascadePredictor, cases, *, tta: bool | None = None) -> list[dict]:
    """Per-case scores of the cascade on whole images, against the native annotation.

    Each case's images are read on their native grid, predicted through the
    cascade (:meth:`~segloop.learn.cascade.CascadePredictor.predict`) and
    scored as :func:`segloop.learn.scoring.score_cases` scores (``dice``,
    ``per_class``, soft scores for soft labels), plus ``box`` (the crop, None
    for a fallback) and ``seconds`` (the prediction's wall time).
    """
    cfg = predictor.config
    d = cfg.data
    native = d.model_copy(update={"spacing": None, "crop_foreground": False})
    offset = 1 if predictor.activation == "softmax" else 0
    rows = []
    for case in cases:
        images = [case.read_image(n) for n in contrast_sources(case, d)]
        truth = read_volume(case, native).label
        if truth is None:
            continue
        start = time.perf_counter()
        pred = predictor.predict(images, tta=tta, soft=d.soft_labels)
        seconds = time.perf_counter() - start
        probs = None
        if pred.probabilities is not None:
            probs = np.moveaxis(pred.probabilities.array, -1, 0)
        rows.append({"id": case.id, "grid": "native",
                     **score_case(pred.label.array, truth, classes=d.classes,
                                  probabilities=probs, soft=d.soft_labels, offset=offset),
                     "box": pred.label.metadata.get("cascade_box"), "seconds": seconds})
    return rows
