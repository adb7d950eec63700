"""Inference with a trained checkpoint: pre-process, infer, post-process, on the input's grid.

:func:`load_model` reads a checkpoint into a :class:`Predictor`, whose
:meth:`~Predictor.predict` runs the fixed steps

1. **pre**: the input image is checked (a 3D model takes volumes only; the
   channels must match the network's) and pre-processed exactly as in
   training (:func:`segloop.learn.data.preprocess_image`: channels,
   resampling, normalisation);
2. **infer**: a 2D model runs slice by slice along ``data.slice_axis``
   (slices batched by ``inference.batch_size``), a 3D model by MONAI's
   sliding window (``inference.roi_size`` or ``data.patch_size``, else 96³;
   ``overlap``; Gaussian blending); a whole 2D slice is padded to a multiple of
   the network's downsampling. Test-time augmentation averages the
   predictions of every flipped copy (:func:`segloop.learn.uncertainty.tta_samples`);
3. **post**: the probabilities are brought back to the input's grid
   (:func:`segloop.learn.data.restore_geometry`, linear), then softmax
   outputs take the argmax and sigmoid / normrelu outputs the most probable
   class reaching ``inference.threshold``; ``inference.largest_component`` and
   ``inference.fill_holes`` apply :mod:`segloop.tools.islands`.

The label is a ``uint8`` map of class indices (0 background, ``i`` the
``i``-th class of ``data.classes``) with the input's shape, spacing, origin
and direction. :func:`predict_paths` writes the predictions of files and
folders (``segloop predict``).

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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from segloop.errors import InvalidArgumentError, SegloopError
from segloop.io import Image
from segloop.learn.checkpoint import load_checkpoint, restore_network
from segloop.learn.config import Config
from segloop.learn.data import preprocess_image, restore_geometry
from segloop.learn.uncertainty import (
    mc_dropout,
    tta_samples,
    uncertainty_maps,
    uncertainty_scores,
)
from segloop.tools.islands import fill_holes, keep_largest

__all__ = ["Prediction", "Predictor", "Uncertainty", "list_inputs", "load_model",
           "output_suffix", "predict_paths", "slice_axis_index"]

_AXES = {"axial": 0, "coronal": 1, "sagittal": 2}


def slice_axis_index(axis) -> int:
    """Array axis of ``data.slice_axis`` in ``(z, y, x)`` order (axial 0, coronal 1, sagittal 2)."""
    return _AXES[axis] if isinstance(axis, str) else int(axis)


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


def _device(config: Config, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    wanted = config.training.device
    return torch.device("cuda" if wanted != "cpu" and torch.cuda.is_available() else "cpu")


def _round_up(n: int, k: int) -> int:
    return int(math.ceil(n / k) * k)


class Predictor:
    """A network with its config: predicts images, arrays, and their uncertainty.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``(B, C, *spatial)`` to activated outputs ``(B, K, *spatial)``.
    config : Config
        The run's config (``data`` for pre-processing, ``model``, ``inference``).
    in_channels : int
        Input channels of the network.
    preprocess : dict, optional
        The checkpoint's ``preprocess`` record.
    device : str or torch.device, optional
        Default: CUDA when present and ``training.device`` allows it, else CPU.
    source : str, optional
        The checkpoint file (named in error messages).
    """

    def __init__(self, network: nn.Module, config: Config, *, in_channels: int,
                 preprocess: dict | None = None, device=None, source: str | None = None):
        self.config = config
        self.in_channels = int(in_channels)
        self.preprocess = dict(preprocess or {})
        self.device = _device(config, device)
        self.network = network.to(self.device)
        self.source = source
        strides = config.model.strides or [2] * (len(config.model.channels) - 1)
        self.divisor = int(np.prod(strides))

    # ------------------------------------------------------------------ properties
    @property
    def dims(self) -> int:
        """Spatial dimensions the network takes (2 or 3)."""
        return self.config.data.dims

    @property
    def activation(self) -> str:
        """``softmax``, ``sigmoid`` or ``normrelu``."""
        return self.config.model.final_activation

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names; class ``i`` (1-based) is the ``i``-th."""
        return tuple(self.config.data.classes)

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
        if chosen is None and n != self.in_channels:
            raise InvalidArgumentError(
                f"has {n} channel{'s' * (n != 1)}; the model{self._named()} takes "
                f"{self.in_channels}", path=where)
        if chosen is not None and max(chosen) >= n:
            raise InvalidArgumentError(
                f"has {n} channel{'s' * (n != 1)}; the model{self._named()} reads channels "
                f"{chosen}", path=where)

    def _named(self) -> str:
        return f" ({Path(self.source).name})" if self.source else ""

    def prepare(self, image: Image | Sequence[Image]) -> tuple[np.ndarray, dict]:
        """The network's input ``(C, *spatial)`` for ``image``, and what undoes the geometry."""
        self.check_image(image)
        array, info = preprocess_image(image, self.config.data)
        if array.shape[0] != self.in_channels:
            raise InvalidArgumentError(
                f"pre-processing gives {array.shape[0]} channels; the model{self._named()} takes "
                f"{self.in_channels}", path=_images(image)[0].metadata.get("path") or "image")
        return np.asarray(array, dtype=np.float32), info

    # ----------------------------------------------------------------------- infer
    def _roi(self, spatial: tuple[int, ...]) -> list[int] | None:
        roi = self.config.inference.roi_size or self.config.data.patch_size
        if roi is None and self.dims == 3:
            roi = [96, 96, 96]
        if roi is None:
            return None
        if len(roi) != len(spatial):
            key = "inference.roi_size" if self.config.inference.roi_size else "data.patch_size"
            raise InvalidArgumentError(f"{key}: {len(roi)} sizes for a {self.dims}D model")
        return [min(_round_up(r, self.divisor), _round_up(s, self.divisor))
                for r, s in zip(roi, spatial, strict=True)]

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """One pass on ``x`` padded to a multiple of the downsampling, cropped back."""
        spatial = x.shape[2:]
        pad = []
        for s in reversed(spatial):
            extra = _round_up(s, self.divisor) - s
            pad += [extra // 2, extra - extra // 2]
        y = self.network(torch.nn.functional.pad(x, pad) if any(pad) else x)
        crop = tuple(slice(pad[2 * i], pad[2 * i] + s)
                     for i, s in enumerate(reversed(spatial)))[::-1]
        return y[(slice(None), slice(None), *crop)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Activated outputs of a ``(B, C, *spatial)`` batch (sliding window when configured)."""
        roi = self._roi(tuple(x.shape[2:]))
        if roi is None:
            return self._padded(x)
        inf = self.config.inference
        return torch.as_tensor(sliding_window_inference(
            x, roi, inf.batch_size, self._padded, overlap=inf.overlap, mode="gaussian"))

    def _passes(self, x: torch.Tensor, *, tta: bool, mc: int, seed: int,
                mean: bool) -> torch.Tensor:
        """``(S, B, K, *sp)`` samples (or their mean ``(1, ...)``) of one batch, in eval mode."""
        parts, was_training = [], self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                if mc:
                    parts.append(mc_dropout(self.network, x, mc, forward=self.forward,
                                            seed=seed))
                if tta:
                    parts.append(tta_samples(self.forward, x))
                if not parts:
                    parts.append(self.forward(x)[None])
        finally:
            self.network.train(was_training)
        out = torch.cat(parts)
        return out.mean(0, keepdim=True) if mean else out

    def _run(self, array: np.ndarray, slice_axis: int | None, **kw) -> np.ndarray:
        """``(S, K, *sp)`` from a ``(C, *sp)`` array: whole, or slice by slice for 2D models."""
        a = np.asarray(array, dtype=np.float32)
        if a.ndim - 1 == self.dims:
            x = torch.from_numpy(a[None]).to(self.device)
            return self._passes(x, **kw)[:, 0].float().cpu().numpy()
        if self.dims == 3 or a.ndim != 4:
            raise InvalidArgumentError(f"a {a.ndim - 1}D array cannot go through a "
                                       f"{self.dims}D model")
        axis = (slice_axis_index(self.config.data.slice_axis) if slice_axis is None
                else int(slice_axis))
        slices = np.moveaxis(a, 1 + axis, 0)  # (S, C, H, W)
        step = self.config.inference.batch_size
        out = []
        for start in range(0, slices.shape[0], step):
            x = torch.from_numpy(np.ascontiguousarray(slices[start:start + step])).to(self.device)
            kw_batch = {**kw, "seed": kw.get("seed", 0) + start}
            out.append(self._passes(x, **kw_batch).float().cpu().numpy())
        stacked = np.swapaxes(np.concatenate(out, axis=1), 1, 2)  # (N, K, S, H, W)
        return np.moveaxis(stacked, 2, 2 + axis)

    def infer(self, array: np.ndarray, *, tta: bool | None = None,
              slice_axis: int | None = None) -> np.ndarray:
        """Activated outputs ``(K, *spatial)`` of a pre-processed ``(C, *spatial)`` array.

        ``slice_axis``: the spatial axis a 2D model slices a volume along
        (default ``data.slice_axis``). The network runs in eval mode (its mode is
        restored afterwards).
        """
        tta = self.config.inference.tta if tta is None else bool(tta)
        return self._run(array, slice_axis, tta=tta, mc=0, seed=0, mean=True)[0]

    def samples(self, array: np.ndarray, *, mc: int = 0, tta: bool = False, seed: int = 0,
                slice_axis: int | None = None) -> np.ndarray:
        """``mc`` MC-dropout passes then (``tta``) every flipped pass: ``(N, K, *spatial)``."""
        if (isinstance(mc, bool) or not isinstance(mc, int | np.integer) or mc < 0
                or (mc == 0 and not tta)):
            raise InvalidArgumentError(f"uncertainty needs mc >= 1 MC-dropout passes or tta, "
                                       f"got mc={mc!r}, tta={tta!r}")
        return self._run(array, slice_axis, tta=bool(tta), mc=int(mc), seed=seed, mean=False)

    # ------------------------------------------------------------------------ post
    def to_label(self, probabilities: np.ndarray, *, slice_axis: int | None = None) -> np.ndarray:
        """Class indices ``uint8`` from ``(K, *spatial)`` outputs, post-processed per config."""
        p = np.asarray(probabilities)
        if self.activation == "softmax":
            label = p.argmax(axis=0).astype(np.uint8)
        else:
            best = p.argmax(axis=0)
            peak = np.take_along_axis(p, best[None], axis=0)[0]
            label = np.where(peak >= self.config.inference.threshold, best + 1, 0).astype(np.uint8)
        inf = self.config.inference
        if inf.largest_component and label.any():
            label = keep_largest(label).astype(np.uint8)
        if inf.fill_holes and label.any():
            axis = slice_axis if label.ndim == 3 else None
            label = fill_holes(label, axis=axis).astype(np.uint8)
        return label

    def _on_input_grid(self, array: np.ndarray, info: dict, *, probabilities: bool) -> np.ndarray:
        """``(K, *sp)`` values on the input grid (linear; background 1 outside a crop)."""
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
                soft: bool = False) -> Prediction:
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

        Raises
        ------
        InvalidArgumentError
            A 2D image for a 3D model, or the wrong number of channels (the
            file is named).
        """
        array, info = self.prepare(image)
        probs = self.infer(array, tta=tta, slice_axis=info.get("slice_axis"))
        probs = self._on_input_grid(probs, info, probabilities=True)
        return self._prediction(_images(image)[0], probs, info, soft)

    def uncertainty(self, image: Image | Sequence[Image], *, mc: int | None = None,
                    tta: bool | None = None, seed: int = 0, soft: bool = False) -> Uncertainty:
        """Entropy / variance maps and scores of ``image`` from MC dropout and/or TTA.

        ``mc`` defaults to ``inference.mc_samples``, ``tta`` to ``inference.tta``;
        with both the samples are the ``mc`` dropout passes followed by the
        flipped passes. Scores are computed on the network's grid.
        """
        mc = self.config.inference.mc_samples if mc is None else mc
        tta = self.config.inference.tta if tta is None else bool(tta)
        array, info = self.prepare(image)
        image = _images(image)[0]
        samples = self.samples(array, mc=mc, tta=tta, seed=seed,
                               slice_axis=info.get("slice_axis"))
        scores = uncertainty_scores(samples, self.config.inference.threshold,
                                    activation=self.activation)
        maps = uncertainty_maps(samples, activation=self.activation)
        geometry = {"spacing": image.spacing, "origin": image.origin,
                    "direction": image.direction}
        images = {name: Image(self._on_input_grid(m[None], info, probabilities=False)[0],
                              **geometry) for name, m in maps.items()}
        probs = self._on_input_grid(samples.mean(axis=0), info, probabilities=True)
        flips = 2 ** self.dims if tta else 0
        return Uncertainty(images, scores, self._prediction(image, probs, info, soft),
                           n_samples=int(samples.shape[0]), sources={"mc": int(mc), "tta": flips})


def load_model(path, *, device=None) -> Predictor:
    """A :class:`Predictor` from a checkpoint file.

    Raises
    ------
    segloop.errors.FileMissingError, segloop.errors.CorruptFileError
        No such file, not a segloop checkpoint, or weights of another architecture.
    """
    ck = load_checkpoint(path)
    network = restore_network(ck)
    return Predictor(network, ck["config"], in_channels=int(ck.get("in_channels", 1)),
                     preprocess=ck.get("preprocess"), device=device, source=str(path))


# --------------------------------------------------------------------------- files

#: Formats a prediction is written in as they are; the others become NIfTI (JPEG: PNG).
_KEEP_SUFFIX = {"nifti", "mgh", "png", "tiff"}
_RENAME = {".nhdr": ".nrrd", ".mhd": ".mha", ".nrrd": ".nrrd", ".mha": ".mha"}


def output_suffix(path) -> tuple[str, str]:
    """``(stem, extension)`` of the prediction written for the input ``path``.

    NIfTI, MGH, PNG and TIFF inputs keep their extension, NRRD / MetaImage
    become ``.nrrd`` / ``.mha``, JPEG-like inputs ``.png``, HDF5 and DICOM
    ``.nii.gz``.

    Examples
    --------
    >>> output_suffix("sub-01_T2w.nii.gz"), output_suffix("slice.jpg")
    (('sub-01_T2w', '.nii.gz'), ('slice', '.png'))
    """
    from segloop.io import format_of
    from segloop.io.files import compound_suffix

    p = Path(path)
    suffix = compound_suffix(p)
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    fmt = format_of(p)
    if fmt in _KEEP_SUFFIX:
        return stem, suffix
    if suffix in _RENAME:
        return stem, _RENAME[suffix]
    return stem, ".png" if fmt == "jpeg" else ".nii.gz"


_OUTPUT_TAGS = ("_seg", "_prob", "_entropy", "_variance")


def list_inputs(inputs, *, skip_outputs: bool = False) -> list[Path]:
    """The image files to predict: ``inputs`` itself, or the image files directly in a folder.

    ``skip_outputs`` leaves out files named like predictions (``*_seg``,
    ``*_prob*``, ``*_entropy``, ``*_variance``), for a folder that is also the output.
    """
    from segloop.errors import DatasetError, FileMissingError
    from segloop.io import format_of

    root = Path(inputs)
    if not root.exists():
        raise FileMissingError("input does not exist", path=root)
    if not root.is_dir():
        return [root]
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            format_of(entry)
        except SegloopError:  # not an image file: not an input
            continue
        stem = output_suffix(entry)[0]
        if skip_outputs and any(tag in stem for tag in _OUTPUT_TAGS):
            continue
        found.append(entry)
    if not found:
        raise DatasetError("no image file to predict in this folder", path=root)
    return found


def _soft_images(pred: Prediction, activation: str) -> list[tuple[str, Image]]:
    """``(tag, image)`` per class: ``_prob`` for one class, ``_prob-NAME`` for several."""
    probs = pred.probabilities
    values = probs.array[..., 1:] if activation == "softmax" else probs.array
    many = values.shape[-1] > 1
    out = []
    for i, name in enumerate(pred.classes):
        tag = f"_prob-{name}" if many else "_prob"
        out.append((tag, Image(values[..., i], spacing=probs.spacing, origin=probs.origin,
                               direction=probs.direction, kind="soft",
                               metadata=dict(probs.metadata))))
    return out


def _write_soft(image: Image, path: Path, overwrite: bool) -> None:
    """Float file, or a 16-bit PNG holding ``round(p * 65535)``."""
    from segloop.io import write_image

    if path.suffix.lower() != ".png":
        write_image(image, path, overwrite=overwrite)
        return
    from PIL import Image as PILImage

    from segloop.io.files import atomic_output

    scaled = np.rint(np.clip(image.array, 0, 1) * 65535).astype(np.uint16)
    with atomic_output(path, overwrite=overwrite) as tmp:
        PILImage.fromarray(scaled).save(tmp, format="PNG")


def _planned(path: Path, out: Path, *, soft: bool, classes, activation: str,
             uncertainty: bool) -> list[Path]:
    stem, ext = output_suffix(path)
    files = [out / f"{stem}_seg{ext}"]
    if soft:
        tags = ["_prob"] if len(classes) == 1 else [f"_prob-{c}" for c in classes]
        files += [out / f"{stem}{t}{ext}" for t in tags]
    if uncertainty:
        files += [out / f"{stem}_{m}.nii.gz" for m in ("entropy", "variance")]
    return files


def predict_paths(model, inputs, output_dir, *, soft: bool = False, tta: bool | None = None,
                  mc: int = 0, uncertainty: bool = False, overwrite: bool = False,
                  device=None, read_options: dict | None = None) -> list[Path]:
    """Predict an image file or every image file of a folder; write the results.

    For an input ``NAME.EXT`` (see :func:`output_suffix` for the extension):
    ``NAME_seg.EXT`` (class indices, the input's geometry); with ``soft``,
    ``NAME_prob.EXT`` (one foreground class) or ``NAME_prob-CLASS.EXT``
    (several): float32, or 16-bit PNG holding ``round(p * 65535)``; with
    uncertainty, ``NAME_entropy.nii.gz``, ``NAME_variance.nii.gz`` and one
    ``uncertainty.json`` ``{input file name: scores}`` for the run.

    Parameters
    ----------
    model : str, pathlib.Path or Predictor
        A checkpoint file or a loaded predictor.
    inputs : str or pathlib.Path
        An image file, or a folder whose image files are all predicted.
    output_dir : str or pathlib.Path
        Created when missing.
    soft, tta : bool
        Write probabilities; average flipped passes (default ``inference.tta``).
    mc : int
        MC-dropout passes for uncertainty (implies ``uncertainty``).
    uncertainty : bool
        Write the maps and scores; samples: ``mc`` passes, else
        ``inference.mc_samples``, and the flips when ``tta`` (TTA alone when
        neither gives MC passes).
    overwrite : bool
        Replace existing outputs (old files kept as ``NAME.~N~``); otherwise
        an existing output is an error before anything is computed.
    device : str, optional
        As for :func:`load_model`.
    read_options : dict, optional
        Passed to :func:`segloop.io.read_image` (HDF5 ``axes``/``spacing``, DICOM ``series``).

    Returns
    -------
    list of pathlib.Path
        Every file written.
    """
    from segloop.errors import OutputExistsError
    from segloop.io import read_image, write_image
    from segloop.io.files import write_json

    predictor = model if isinstance(model, Predictor) else load_model(model, device=device)
    inf = predictor.config.inference
    uncertainty = bool(uncertainty or mc)
    mc = int(mc or (inf.mc_samples if uncertainty else 0))
    tta_flag = inf.tta if tta is None else bool(tta)
    out = Path(output_dir)
    files = list_inputs(inputs, skip_outputs=Path(inputs).resolve() == out.resolve())
    plans = {f: _planned(f, out, soft=soft, classes=predictor.classes,
                         activation=predictor.activation, uncertainty=uncertainty)
             for f in files}
    targets = [p for ps in plans.values() for p in ps]
    if uncertainty:
        targets.append(out / "uncertainty.json")
    if not overwrite:
        for target in targets:
            if target.exists():
                raise OutputExistsError("exists; pass --overwrite to replace it (the old file "
                                        "is kept as a numbered version)", path=target)
    out.mkdir(parents=True, exist_ok=True)
    written, scores = [], {}
    for f in files:
        image = read_image(f, **(read_options or {}))
        plan = iter(plans[f])
        if uncertainty:
            result = predictor.uncertainty(image, mc=mc, tta=tta_flag or not mc, soft=soft)
            pred = result.prediction if not mc else predictor.predict(image, tta=tta, soft=soft)
            scores[f.name] = result.scores
        else:
            pred = predictor.predict(image, tta=tta, soft=soft)
        target = next(plan)
        write_image(pred.label, target, overwrite=overwrite)
        written.append(target)
        if soft:
            for _, img in _soft_images(pred, predictor.activation):
                target = next(plan)
                _write_soft(img, target, overwrite)
                written.append(target)
        if uncertainty:
            for name in ("entropy", "variance"):
                target = next(plan)
                write_image(result.maps[name], target, overwrite=overwrite)
                written.append(target)
    if uncertainty:
        written.append(write_json(scores, out / "uncertainty.json", overwrite=overwrite))
    return written
