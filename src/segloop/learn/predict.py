"""Inference with a trained checkpoint: pre-process, infer, post-process, on the input's grid.

:func:`load_model` reads a checkpoint into a :class:`Predictor`, whose
:meth:`~Predictor.predict` runs the fixed steps

1. **pre**: the input image is checked (a 3D model takes volumes only; the
   channels must match the network's) and pre-processed exactly as in
   training (:func:`segloop.learn.preprocess.preprocess_image`: channels,
   resampling, normalisation);
2. **infer**: slice by slice (2D models on volumes, along
   ``info["slice_axis"]``) or by sliding window (3D), optionally averaging
   flipped passes (:class:`segloop.learn.inference.ArrayPredictor`);
3. **post**: the probabilities are brought back to the input's grid
   (:func:`segloop.learn.preprocess.restore_geometry`, linear), then turned
   into class indices and post-processed
   (:meth:`~segloop.learn.inference.ArrayPredictor.to_label`).

A FiLM model (``model.film``) is conditioned on the image's metadata: the
``meta`` values given (``{field: value}``), completed by what the image itself
carries (:func:`segloop.learn.metadata_values.image_values`: ``model.film.table``
rows of its case or subject, its metadata, its contrast; a BIDS file name
gives the subject and the contrast), encoded as in
training; fields without a value take the network's *missing* encoding
(``model.film.on_missing: error`` makes that an error naming the image and
the field). Plain models ignore ``meta``.

The label is a ``uint8`` map of class indices (0 background, ``i`` the
``i``-th class of ``data.classes``) with the input's shape, spacing, origin
and direction. :meth:`~Predictor.uncertainty` adds entropy / variance maps and
scores; :func:`segloop.learn.predict_files.predict_paths` writes the
predictions of files and folders (``segloop predict``).

Examples
--------
>>> import numpy as np, torch
>>> from segloop.io import Image
>>> from segloop.learn.config import load_config
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x", "normalize": "none"},
...                    "model": {"channels": [4, 8], "num_res_units": 0}})
>>> _ = torch.manual_seed(0)
>>> predictor = Predictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
>>> result = predictor.predict(Image(np.zeros((3, 10, 12), np.float32), spacing=(3, 1, 1)),
...                            soft=True)
>>> result.label.shape, result.label.array.dtype.name, result.probabilities.array.shape
((3, 10, 12), 'uint8', (3, 10, 12, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io import Image
from segloop.learn.checkpoint import load_checkpoint, restore_network
from segloop.learn.inference import ArrayPredictor
from segloop.learn.metadata_values import case_values, image_values, read_table
from segloop.learn.preprocess import preprocess_image, restore_geometry
from segloop.learn.uncertainty import uncertainty_maps, uncertainty_scores

__all__ = ["Prediction", "Predictor", "Uncertainty", "load_model"]


@dataclass
class Prediction:
    """A segmentation on the input's grid.

    Attributes
    ----------
    label : Image
        ``uint8`` class indices (0 background).
    probabilities : Image or None
        ``float32`` activated outputs, channels last (``K`` channels: background
        first for softmax), when asked for.
    classes : tuple of str
        Names of the classes 1..n (``data.classes``).
    """

    label: Image
    probabilities: Image | None = None
    classes: tuple[str, ...] = ()


@dataclass
class Uncertainty:
    """Uncertainty of one image: voxel-wise maps on the input's grid and per-image scores.

    Attributes
    ----------
    maps : dict of str to Image
        ``entropy`` and ``variance`` (float32).
    scores : dict of str to float
        ``mean_entropy``, ``volume_cv``, ``inter_sample_dice``.
    prediction : Prediction
        The prediction of the samples' mean.
    n_samples : int
        MC-dropout passes plus test-time flips used.
    sources : dict of str to int
        ``{"mc": passes, "tta": flips}``.
    """

    maps: dict[str, Image]
    scores: dict[str, float]
    prediction: Prediction
    n_samples: int = 0
    sources: dict[str, int] = field(default_factory=dict)


def _images(image) -> list[Image]:
    images = [image] if isinstance(image, Image) else list(image)
    if not images or not all(isinstance(im, Image) for im in images):
        raise InvalidArgumentError("predict needs an Image or a sequence of Images (one per "
                                   "contrast)")
    return images


class Predictor(ArrayPredictor):
    """A network with its config: predicts images, arrays, and their uncertainty.

    Images are pre-processed like the training data and the results put back on
    their grid; arrays already on the network's grid go through the methods of
    :class:`~segloop.learn.inference.ArrayPredictor` (``infer``, ``samples``,
    ``to_label``), whose parameters the constructor takes.
    """

    # ------------------------------------------------------------------------- pre
    def check_image(self, image: Image | Sequence[Image]) -> None:
        """Refuse an image of a dimensionality or channel count the network cannot take."""
        images = _images(image)
        where = images[0].metadata.get("path") or "image"
        if self.dims == 3 and images[0].spatial_ndim != 3:
            raise InvalidArgumentError(
                f"a {images[0].spatial_ndim}D image; the model{self._named()} segments 3D "
                "volumes", path=where)
        chosen = self.config.data.channels
        n = sum(im.n_channels for im in images)
        contrasts = self.config.data.contrasts or []
        if chosen is None and n != self.in_channels:
            hint = (f" (data.contrasts: {', '.join(contrasts)}; one image per contrast, in this "
                    "order)" if len(contrasts) > 1 else "")
            split = self.config.data.split_channels
            if split and n == len(split):  # trained on each channel alone
                hint = (f" (data.split_channels: one of {', '.join(split)}; give a dataset "
                        "folder to predict every channel of its cases)")
            raise InvalidArgumentError(
                f"has {n} channel{'s' * (n != 1)}; the model{self._named()} takes "
                f"{self.in_channels}{hint}", path=where)
        if chosen is not None and max(chosen) >= n:
            raise InvalidArgumentError(
                f"has {n} channel{'s' * (n != 1)}; the model{self._named()} reads channels "
                f"{chosen}", path=where)

    def _named(self) -> str:
        return f" ({Path(self.source).name})" if self.source else ""

    def meta_vector(self, image: Image | Sequence[Image], meta=None) -> np.ndarray | None:
        """The metadata vector of ``image`` for a FiLM network (None for a plain one).

        ``meta``: ``{field: value}`` given by the caller; the fields it lacks
        (or gives as None) come from the image (see the module docstring).

        Raises
        ------
        InvalidArgumentError
            A field the model does not know.
        segloop.errors.DatasetError
            A missing value under ``on_missing: error``, an unknown category
            under ``on_unknown: error``, a numeric field that is not a number.
        """
        encoder = getattr(self.network, "meta_encoder", None)
        if not self.meta_dim or encoder is None:
            return None
        first = _images(image)[0]
        film = self.config.model.film
        values = {} if film is None else image_values(film, first, table=self._film_table())
        if meta:
            encoder.check_names(meta, what="meta")
            values.update({k: v for k, v in meta.items() if v is not None})
        return encoder.encode(values, where=str(first.metadata.get("path") or "image"))

    def _film_table(self) -> dict:
        """``model.film.table`` read once (a file absent on this machine: skipped)."""
        if not hasattr(self, "_meta_table"):
            film = self.config.model.film
            self._meta_table = read_table(film.table if film else None, required=False)
        return self._meta_table

    def case_meta(self, case) -> dict | None:
        """A dataset case's metadata values, as in training (None for a plain model).

        :func:`segloop.learn.metadata_values.case_values`: the ``model.film.table``
        row, the case's metadata (BIDS sidecar, ``participants.tsv``), its
        contrast; what :meth:`predict` takes as ``meta`` for the case's image.
        """
        film = self.config.model.film
        if not self.meta_dim or film is None:
            return None
        return case_values(film, case, table=self._film_table())

    def prepare(self, image: Image | Sequence[Image]) -> tuple[np.ndarray, dict]:
        """The network's input ``(C, *spatial)`` for ``image``, and what undoes the geometry."""
        self.check_image(image)
        array, info = preprocess_image(image, self.config.data)
        if array.shape[0] != self.in_channels:
            raise InvalidArgumentError(
                f"pre-processing gives {array.shape[0]} channels; the model{self._named()} takes "
                f"{self.in_channels}", path=_images(image)[0].metadata.get("path") or "image")
        return np.asarray(array, dtype=np.float32), info

    # ------------------------------------------------------------------------ post
    def to_input_grid(self, array: np.ndarray, info: dict, *,
                      probabilities: bool = True) -> np.ndarray:
        """``(K, *grid)`` outputs back on the input grid of ``info`` (linear interpolation).

        Outside a crop box the values are 0, except the background
        probability of softmax outputs (1) when ``probabilities``.
        """
        fill = [0.0] * array.shape[0]
        if probabilities and self.activation == "softmax":
            fill[0] = 1.0
        return np.asarray(restore_geometry(np.asarray(array, np.float32), info, 1, fill=fill),
                          dtype=np.float32)

    def _prediction(self, image: Image, probs: np.ndarray, info: dict, soft: bool) -> Prediction:
        label = self.to_label(probs, slice_axis=info.get("slice_axis"))
        meta = {"spacing_known": image.metadata.get("spacing_known", True)}
        geometry = {"spacing": image.spacing, "origin": image.origin,
                    "direction": image.direction.copy(), "metadata": meta}
        out = Prediction(Image(label, kind="label", **geometry), classes=self.classes)
        if soft:
            values = np.clip(np.moveaxis(probs, 0, -1), 0.0, 1.0).astype(np.float32)
            out.probabilities = Image(values, kind="soft", channels=True,
                                      **{**geometry, "metadata": dict(meta)})
        return out

    # ---------------------------------------------------------------------- public
    def predict(self, image: Image | Sequence[Image], *, tta: bool | None = None,
                soft: bool = False, meta=None) -> Prediction:
        """Segment ``image``; the result has its exact grid.

        Parameters
        ----------
        image : Image or sequence of Image
            2D image or 3D volume (channels last when it has several), or one
            image per contrast of ``data.contrasts`` (same grid).
        tta : bool, optional
            Average the flipped passes (default: ``inference.tta``).
        soft : bool
            Also return the probabilities.
        meta : dict, optional
            Metadata values ``{field: value}`` for a FiLM model (default: the
            image's own; see :meth:`meta_vector`).

        Raises
        ------
        InvalidArgumentError
            A 2D image for a 3D model, or the wrong number of channels (the
            file is named); an unknown metadata field.
        segloop.errors.DatasetError
            Metadata refused under ``model.film.on_missing`` / ``on_unknown: error``.
        """
        vector = self.meta_vector(image, meta)
        array, info = self.prepare(image)
        probs = self.infer(array, tta=tta, slice_axis=info.get("slice_axis"), meta=vector)
        probs = self.to_input_grid(probs, info, probabilities=True)
        return self._prediction(_images(image)[0], probs, info, soft)

    def uncertainty(self, image: Image | Sequence[Image], *, mc: int | None = None,
                    tta: bool | None = None, seed: int = 0, soft: bool = False,
                    meta=None) -> Uncertainty:
        """Entropy / variance maps and scores of ``image`` from MC dropout and/or TTA.

        ``mc`` defaults to ``inference.mc_samples``, ``tta`` to ``inference.tta``;
        with both the samples are the ``mc`` dropout passes followed by the
        flipped passes. Scores are computed on the network's grid. ``meta``:
        as for :meth:`predict`.
        """
        mc = self.config.inference.mc_samples if mc is None else mc
        tta = self.config.inference.tta if tta is None else bool(tta)
        vector = self.meta_vector(image, meta)
        array, info = self.prepare(image)
        image = _images(image)[0]
        samples = self.samples(array, mc=mc, tta=tta, seed=seed,
                               slice_axis=info.get("slice_axis"), meta=vector)
        scores = uncertainty_scores(samples, self.config.inference.threshold,
                                    activation=self.activation)
        maps = uncertainty_maps(samples, activation=self.activation)
        geometry = {"spacing": image.spacing, "origin": image.origin,
                    "direction": image.direction}
        images = {name: Image(self.to_input_grid(m[None], info, probabilities=False)[0],
                              **geometry) for name, m in maps.items()}
        probs = self.to_input_grid(samples.mean(axis=0), info, probabilities=True)
        flips = 2 ** self.dims if tta else 0
        return Uncertainty(images, scores, self._prediction(image, probs, info, soft),
                           n_samples=int(samples.shape[0]), sources={"mc": int(mc), "tta": flips})


def load_model(path, *, device=None) -> Predictor:
    """A :class:`Predictor` from a model file.

    A segloop checkpoint (``.pt``), a cascade's checkpoint (it runs both of its
    stages: :mod:`segloop.learn.cascade`) or a model exported by ``segloop
    export`` (``.onnx``, float32 or int8: :mod:`segloop.learn.onnx_model`).

    Raises
    ------
    segloop.errors.FileMissingError, segloop.errors.CorruptFileError
        No such file, not a segloop checkpoint, or weights of another architecture.
    """
    if Path(path).suffix.lower() == ".onnx":
        from segloop.learn.onnx_model import load_onnx_model

        return load_onnx_model(path, device=device)
    ck = load_checkpoint(path)
    if ck["config"].cascade is not None:
        from segloop.learn.cascade import load_cascade

        return load_cascade(ck, source=str(path), device=device)
    network = restore_network(ck)
    return Predictor(network, ck["config"], in_channels=int(ck.get("in_channels", 1)),
                     device=device, source=str(path))
