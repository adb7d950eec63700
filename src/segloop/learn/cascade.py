"""A cascade at inference: locate, crop with a margin, segment the crop, paste back.

A cascade is a stage-2 (segmenting) config with a ``cascade`` section
(:class:`segloop.learn.config.CascadeConfig`); its checkpoint embeds the
stage-1 (locating) checkpoint under ``cascade_locate`` (the locating model's
config, weights and preprocessing, without its optimiser or history:
:func:`embedded_locate`), so one file predicts:
:func:`segloop.learn.predict.load_model` hands such a checkpoint to
:func:`load_cascade`, whose :class:`CascadePredictor` runs on each image

1. **locate**: stage 1 predicts the whole image (its own preprocessing, e.g.
   a coarse ``data.spacing``), on the image's grid; the region is the union of
   ``cascade.classes`` (all its classes when null);
2. **crop**: the region's box grown by ``cascade.margin_mm`` (mm per axis:
   fewer voxels along a thick axis), to ``cascade.min_size_mm``, clamped to the
   image (:mod:`segloop.learn.cascade_crop`); the cropped image keeps its
   voxels' world positions;
3. **segment**: stage 2 predicts the crop (its own preprocessing);
4. **paste**: the label (0 outside the box) and the probabilities (the
   softmax background 1 outside) on the input's exact grid; the label's
   metadata holds the box (``cascade_box``, None for a whole-image fallback).

When stage 1 finds nothing, ``cascade.on_empty`` decides: ``whole`` segments
the whole image with stage 2 (a documented fallback: stage 2 was trained on
crops, so expect a weaker result), ``empty`` returns background.
:meth:`~CascadePredictor.uncertainty` samples stage 2 on the crop (maps 0
outside it; the scores are the crop's). Arrays on a network's grid
(:meth:`~CascadePredictor.infer`, ``segloop evaluate``) are refused: the
stages do not share a grid.

Examples
--------
>>> import numpy as np
>>> from segloop.io import Image
>>> from segloop.learn.config import load_config
>>> from segloop.learn.networks import build_network
>>> seg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]},
...                    "cascade": {"locate": "locate.pt", "margin_mm": 2}})
>>> loc = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> cascade = CascadePredictor(Predictor(build_network(loc, in_channels=1), loc, in_channels=1),
...                            Predictor(build_network(seg, in_channels=1), seg, in_channels=1))
>>> image = Image(np.random.default_rng(0).random((24, 20), dtype=np.float32), origin=(5, 7))
>>> result = cascade.predict(image, soft=True)
>>> result.label.shape, result.label.origin, result.probabilities.shape
((24, 20), (5.0, 7.0), (24, 20))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segloop.errors import CorruptFileError, InvalidArgumentError
from segloop.io import Image
from segloop.learn.cascade_crop import crop_image, paste_image, region_box
from segloop.learn.cascade_data import cascade_box
from segloop.learn.checkpoint import restore_network
from segloop.learn.config import Config, ConfigError, load_config, to_dict
from segloop.learn.predict import Prediction, Predictor, Uncertainty, _images
from segloop.learn.uncertainty import uncertainty_scores

__all__ = ["CascadePredictor", "embedded_locate", "load_cascade", "region_classes"]

#: Keys of a stage-1 checkpoint a cascade checkpoint keeps (``cascade_locate``).
EMBEDDED_KEYS = ("config", "in_channels", "model", "preprocess", "epoch", "best", "elapsed")


def region_classes(locate: Config, names: Sequence[str] | None) -> list[int]:
    """Class indices (1-based) of stage 1 forming the region: ``names``, or all of them.

    Raises
    ------
    InvalidArgumentError
        A name that is not a class of the locating model (its classes are listed).

    Examples
    --------
    >>> cfg = load_config({"data": {"path": "x", "classes": {"a": [1], "b": [2]}}})
    >>> region_classes(cfg, None), region_classes(cfg, ["b"])
    ([1, 2], [2])
    """
    known = list(locate.data.classes)
    if names is None:
        return list(range(1, len(known) + 1))
    missing = [n for n in names if n not in known]
    if missing:
        raise InvalidArgumentError(f"cascade.classes: {missing[0]!r} is not a class of the "
                                   f"locating model (its classes: {', '.join(known)})")
    return [known.index(n) + 1 for n in names]


def embedded_locate(checkpoint: dict) -> dict:
    """What a cascade checkpoint keeps of its stage-1 checkpoint (``ck["cascade_locate"]``)."""
    out = {k: checkpoint[k] for k in EMBEDDED_KEYS if k in checkpoint}
    if isinstance(out.get("config"), Config):
        out["config"] = to_dict(out["config"])
    return out


class CascadePredictor(Predictor):
    """Stage 1 locates, stage 2 segments the crop; a :class:`Predictor` of whole images.

    Parameters
    ----------
    locate : Predictor
        The locating model.
    segment : Predictor
        The segmenting model; its config's ``cascade`` section drives the
        cascade, and its config, classes and activation are the cascade's.
    source : str, optional
        The cascade's checkpoint (named in errors).
    """

    takes_arrays = False  #: :meth:`infer` and :meth:`samples` are refused (whole images only)

    def __init__(self, locate: Predictor, segment: Predictor, *, source: str | None = None):
        if segment.config.cascade is None:
            raise InvalidArgumentError("the segmenting model's config has no cascade section")
        super().__init__(segment.network, segment.config, in_channels=segment.in_channels,
                         device=segment.device, source=source or segment.source)
        self.locate, self.segment = locate, segment
        self.cascade = segment.config.cascade
        self.region = region_classes(locate.config, self.cascade.classes)

    # ---------------------------------------------------------------- stages
    def box(self, image: Image | Sequence[Image], mask=None) -> list[list[int]] | None:
        """The crop box of ``image`` (None: stage 1 found nothing).

        ``mask``: the region on the image's grid, when known (stage 1 is then not run).
        """
        first = _images(image)[0]
        if mask is None:
            found = self.locate.predict(image, tta=False).label.array
            mask = np.isin(found, self.region)
        found = region_box(mask)
        if found is None:
            return None
        return cascade_box(found, shape=first.shape, spacing=first.spacing, cfg=self.config,
                           where=first.metadata.get("path"))

    def _fill(self) -> list[float]:
        k = len(self.classes) + (1 if self.activation == "softmax" else 0)
        return [1.0 if (i == 0 and self.activation == "softmax") else 0.0 for i in range(k)]

    def _pasted(self, pred: Prediction, box, like: Image) -> Prediction:
        meta = {"spacing_known": like.metadata.get("spacing_known", True), "cascade_box": box}
        label = paste_image(pred.label, box, like)
        label.metadata = dict(meta)
        out = Prediction(label, classes=pred.classes)
        if pred.probabilities is not None:
            out.probabilities = paste_image(pred.probabilities, box, like, fill=self._fill())
            out.probabilities.metadata = dict(meta)
        return out

    def _empty(self, like: Image, soft: bool) -> Prediction:
        geometry = {"spacing": like.spacing, "origin": like.origin,
                    "direction": like.direction.copy()}
        meta = {"spacing_known": like.metadata.get("spacing_known", True), "cascade_box": None}
        out = Prediction(Image(np.zeros(like.shape, np.uint8), kind="label", **geometry,
                               metadata=dict(meta)), classes=self.classes)
        if soft:
            probs = np.broadcast_to(np.asarray(self._fill(), np.float32),
                                    (*like.shape, len(self._fill()))).copy()
            out.probabilities = Image(probs, kind="soft", channels=True, **geometry,
                                      metadata=dict(meta))
        return out

    def _checked(self, image) -> list[Image]:
        images = _images(image)
        self.locate.check_image(images)
        self.segment.check_image(images)
        return images

    # ---------------------------------------------------------------- public
    def predict(self, image: Image | Sequence[Image], *, tta: bool | None = None,
                soft: bool = False, **options) -> Prediction:
        """Locate, crop, segment, paste back: the label (and probabilities) on the input's grid.

        ``tta`` applies to stage 2; other keywords (``meta`` of a FiLM model)
        go to stage 2's :meth:`~segloop.learn.predict.Predictor.predict`.
        """
        images = self._checked(image)
        box = self.box(images)
        if box is None:
            if self.cascade.on_empty == "empty":
                return self._empty(images[0], soft)
            pred = self.segment.predict(images, tta=tta, soft=soft, **options)
            pred.label.metadata["cascade_box"] = None
            return pred
        crops = [crop_image(im, box) for im in images]
        return self._pasted(self.segment.predict(crops, tta=tta, soft=soft, **options), box,
                            images[0])

    def uncertainty(self, image: Image | Sequence[Image], *, mc: int | None = None,
                    tta: bool | None = None, seed: int = 0, soft: bool = False,
                    **options) -> Uncertainty:
        """Stage 2's uncertainty on the crop, its maps pasted back (0 outside the crop)."""
        images = self._checked(image)
        box = self.box(images)
        if box is None and self.cascade.on_empty == "whole":
            return self.segment.uncertainty(images, mc=mc, tta=tta, seed=seed, soft=soft,
                                            **options)
        if box is None:  # background everywhere, with certainty
            pred = self._empty(images[0], soft)
            fill = np.asarray(self._fill(), np.float32).reshape(1, -1, 1, 1)
            scores = uncertainty_scores(np.repeat(fill, 2, axis=0), activation=self.activation)
            zeros = {name: Image(np.zeros(images[0].shape, np.float32),
                                 spacing=images[0].spacing, origin=images[0].origin,
                                 direction=images[0].direction.copy())
                     for name in ("entropy", "variance")}
            return Uncertainty(zeros, scores, pred, n_samples=0, sources={"mc": 0, "tta": 0})
        crops = [crop_image(im, box) for im in images]
        result = self.segment.uncertainty(crops, mc=mc, tta=tta, seed=seed, soft=soft,
                                          **options)
        maps = {name: paste_image(m, box, images[0]) for name, m in result.maps.items()}
        return Uncertainty(maps, result.scores, self._pasted(result.prediction, box, images[0]),
                           n_samples=result.n_samples, sources=result.sources)

    def infer(self, array, **_):
        """Refused: a cascade segments images (:meth:`predict`); its stages' grids differ."""
        raise InvalidArgumentError(
            f"the cascade{self._named()} segments whole images (predict: locate, crop, segment, "
            "paste back); arrays on a network's grid (evaluate, scoring of preprocessed "
            "volumes) would run stage 2 alone on uncropped data")

    def samples(self, array, **_):
        """Refused, as :meth:`infer`."""
        return self.infer(array)


def load_cascade(checkpoint: dict, *, source: str | None = None,
                 device=None) -> CascadePredictor:
    """The :class:`CascadePredictor` of a cascade checkpoint (stage 2 + embedded stage 1).

    Parameters
    ----------
    checkpoint : dict
        :func:`segloop.learn.checkpoint.load_checkpoint` of a stage-2 checkpoint
        (its config has a ``cascade`` section).
    source : str, optional
        Its file (named in errors).
    device : str or torch.device, optional
        As for :func:`segloop.learn.predict.load_model`.

    Raises
    ------
    segloop.errors.CorruptFileError
        No embedded locating model (``cascade_locate``), or one whose config or
        weights do not fit.
    """
    source = source or checkpoint.get("path")
    embedded = checkpoint.get("cascade_locate")
    if not isinstance(embedded, dict) or "model" not in embedded or "config" not in embedded:
        raise CorruptFileError("a cascade checkpoint without its locating model "
                               "(cascade_locate): save it with segloop train of the cascade "
                               "config", path=source)
    try:
        locate_cfg = load_config(embedded["config"])
    except ConfigError as exc:
        raise CorruptFileError(f"the locating model's config is not valid ({exc})",
                               path=source) from None
    located = {**embedded, "config": locate_cfg, "path": source}
    locate = Predictor(restore_network(located), locate_cfg,
                       in_channels=int(embedded.get("in_channels", 1)), device=device,
                       source=f"{source} (locate)" if source else None)
    segment = Predictor(restore_network(checkpoint), checkpoint["config"],
                        in_channels=int(checkpoint.get("in_channels", 1)), device=device,
                        source=source)
    return CascadePredictor(locate, segment, source=source)
