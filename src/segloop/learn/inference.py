"""Running a network on pre-processed arrays: whole, slice by slice, or by sliding window.

:class:`ArrayPredictor` holds a network with its config and works on the
network's grid (arrays :func:`segloop.learn.preprocess.preprocess_image`
made); :class:`segloop.learn.predict.Predictor` adds images, their
pre-processing and their grid. A 2D model runs slice by slice along
``data.slice_axis`` (slices batched by ``inference.batch_size``), a 3D model by
MONAI's sliding window (``inference.roi_size`` or ``data.patch_size``, else 96³;
``overlap``; Gaussian blending); a 2D image or slice goes through whole unless
``inference.roi_size`` or ``data.patch_size`` gives a window, padded to a
multiple of the network's downsampling
(:func:`segloop.learn.sampling.size_multiple`). Test-time augmentation
averages the predictions of every flipped copy
(:func:`segloop.learn.uncertainty.tta_samples`); :meth:`~ArrayPredictor.samples`
keeps the MC-dropout and flipped passes apart.

A FiLM network (:mod:`segloop.learn.film`) is conditioned on ``meta``: the
image's metadata vector (``Volume.meta``) or its raw values (a mapping the
network's ``meta_encoder`` encodes), bound for every slice, window, flip and
MC-dropout pass of the image; without it the network uses its *all missing*
vector. Plain networks ignore ``meta``.

SoftSeg's normalized ReLU (``normrelu``) is applied to the whole image or
volume: the ReLU of the logits is stitched over every slice / window, then
divided by its maximum per channel (per pass: each MC-dropout or flipped pass
is normalised before they are averaged). A slice or window holding only
background therefore stays low instead of being scaled up to 1, as a
per-pass normalisation would do.

:meth:`~ArrayPredictor.to_label` turns outputs into class indices: softmax
outputs take the argmax, sigmoid / normrelu outputs the most probable class
reaching ``inference.threshold``; ``inference.largest_component`` and
``inference.fill_holes`` apply :mod:`segloop.tools.islands`.

Examples
--------
>>> import numpy as np, torch
>>> from segloop.learn.config import load_config
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> _ = torch.manual_seed(0)
>>> runner = ArrayPredictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
>>> probs = runner.infer(np.zeros((1, 3, 10, 12), np.float32))  # 3 slices along axis 0
>>> probs.shape, runner.to_label(probs).shape
((2, 3, 10, 12), (3, 10, 12))
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.transforms.utils import compute_divisible_spatial_size
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.learn.config import Config
from segloop.learn.networks import normalized_relu
from segloop.learn.optim import select_device
from segloop.learn.preprocess import slice_axis_index
from segloop.learn.sampling import size_multiple
from segloop.learn.uncertainty import mc_dropout, tta_samples
from segloop.tools.islands import fill_holes, keep_largest

__all__ = ["ArrayPredictor"]


def _device(config: Config, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    try:
        return select_device(config)
    except InvalidArgumentError:  # trained with training.device: cuda, predicting on a CPU
        return torch.device("cpu")


class ArrayPredictor:
    """A network with its config, on the network's grid: outputs and labels of arrays.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``(B, C, *spatial)`` to activated outputs ``(B, K, *spatial)``.
    config : Config
        The run's config (``data`` for pre-processing, ``model``, ``inference``).
    in_channels : int
        Input channels of the network.
    device : str or torch.device, optional
        Default: :func:`segloop.learn.optim.select_device` (CUDA when present
        and ``training.device`` allows it), CPU for a model trained on CUDA
        when there is none.
    source : str, optional
        The checkpoint file (named in error messages).
    """

    #: Whether arrays on the network's grid can be segmented (:meth:`infer`, :meth:`samples`:
    #: scoring, selection strategies, fine-tuning); a cascade segments whole images only.
    takes_arrays: bool = True

    def __init__(self, network: nn.Module, config: Config, *, in_channels: int,
                 device=None, source: str | None = None):
        self.config = config
        self.in_channels = int(in_channels)
        self.device = _device(config, device)
        self.network = network.to(self.device)
        self.source = source

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

    @property
    def _whole_norm(self) -> bool:
        """Whether normrelu outputs are normalised over the whole image (needs ``logits``)."""
        return self.activation == "normrelu" and hasattr(self.network, "logits")

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
        k = size_multiple(self.config)
        return [int(v) for v in np.minimum(compute_divisible_spatial_size(roi, k),
                                           compute_divisible_spatial_size(spatial, k))]

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """One pass on ``x`` padded to a multiple of the downsampling, cropped back.

        The activated outputs, or for normrelu the ReLU of the logits (the
        normalisation comes once the whole image is stitched).
        """
        spatial = x.shape[2:]
        padded = compute_divisible_spatial_size(spatial, size_multiple(self.config))
        pad = []
        for s, p in zip(reversed(spatial), reversed(padded), strict=True):
            pad += [(p - s) // 2, p - s - (p - s) // 2]
        x = torch.nn.functional.pad(x, pad) if any(pad) else x
        y = torch.relu(self.network.logits(x)) if self._whole_norm else self.network(x)
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

    @property
    def meta_dim(self) -> int:
        """Length of the network's metadata vector (0: a plain network)."""
        return int(getattr(self.network, "meta_dim", 0) or 0)

    def conditioned(self, meta):
        """The network's ``conditioned(meta)`` context (nothing to do for None or a plain one)."""
        bind = getattr(self.network, "conditioned", None)
        return nullcontext() if meta is None or bind is None else bind(meta)

    def _run(self, array: np.ndarray, slice_axis: int | None, *, mean: bool, meta=None,
             **kw) -> np.ndarray:
        """``(S, K, *sp)`` (``mean``: ``(1, K, *sp)``) from a ``(C, *sp)`` array."""
        with self.conditioned(meta):
            out = self._stitched(array, slice_axis, mean=mean and not self._whole_norm, **kw)
        if self._whole_norm:  # each pass divided by its maximum over the whole image
            out = normalized_relu(torch.from_numpy(out)).numpy()
            out = out.mean(0, keepdims=True) if mean else out
        return out

    def _stitched(self, array: np.ndarray, slice_axis: int | None, **kw) -> np.ndarray:
        """The passes over the whole array: at once, or slice by slice for 2D models."""
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
              slice_axis: int | None = None, meta=None) -> np.ndarray:
        """Activated outputs ``(K, *spatial)`` of a pre-processed ``(C, *spatial)`` array.

        ``slice_axis``: the spatial axis a 2D model slices a volume along. The
        default, ``data.slice_axis`` (:func:`~segloop.learn.preprocess.slice_axis_index`),
        is the axis :func:`~segloop.learn.preprocess.preprocess_image` records in
        ``info["slice_axis"]`` under the same config; an array sliced along
        another axis (a :class:`~segloop.learn.data.Volume` of another config)
        must pass its own. The network runs in eval mode (its mode is restored
        afterwards). normrelu outputs are normalised over the whole array
        (see the module docstring). ``meta``: the image's metadata vector or
        raw values, for a FiLM network (see the module docstring).
        """
        tta = self.config.inference.tta if tta is None else bool(tta)
        return self._run(array, slice_axis, tta=tta, mc=0, seed=0, mean=True, meta=meta)[0]

    def samples(self, array: np.ndarray, *, mc: int = 0, tta: bool = False, seed: int = 0,
                slice_axis: int | None = None, meta=None) -> np.ndarray:
        """``mc`` MC-dropout passes then (``tta``) every flipped pass: ``(N, K, *spatial)``.

        ``meta``: as for :meth:`infer`.
        """
        if (isinstance(mc, bool) or not isinstance(mc, int | np.integer) or mc < 0
                or (mc == 0 and not tta)):
            raise InvalidArgumentError(f"uncertainty needs mc >= 1 MC-dropout passes or tta, "
                                       f"got mc={mc!r}, tta={tta!r}")
        return self._run(array, slice_axis, tta=bool(tta), mc=int(mc), seed=seed, mean=False,
                         meta=meta)

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
