"""Networks built from a config: MONAI's U-Net, with SoftSeg's normalized ReLU output.

:func:`build_network` returns a ``torch.nn.Module`` mapping ``(B, C, *spatial)``
to **activated** outputs ``(B, K, *spatial)``:

* ``softmax``: ``K = n_classes + 1`` (background first), probabilities summing to 1;
* ``sigmoid``: ``K = n_classes``, one independent probability per class;
* ``normrelu`` (SoftSeg, Gros et al. 2021): ``K = n_classes``, ``ReLU(x) / max ReLU(x)``
  per sample and channel, so outputs stay in [0, 1] without saturating like a sigmoid.

With ``model.film`` the network is a :class:`segloop.learn.film.FilmSegmenter`
(the same U-Net, modulated by case metadata). Every segmenter takes
``logits(x, meta=None)`` / ``forward(x, meta=None)`` and a context manager
``conditioned(meta)`` binding one image's metadata for every call inside;
``meta_dim`` is the length of the metadata vector, 0 for a plain network
(which ignores metadata: ``conditioned`` is a no-op).

``Segmenter.logits`` gives the raw outputs (what MONAI's losses with
``softmax=True``/``sigmoid=True`` take); :func:`activate` is the one
implementation of the final activations (the losses apply it too). The
normalized ReLU of a forward pass divides by the maximum of that pass (a
training patch); :class:`segloop.learn.inference.ArrayPredictor` instead
divides the ReLU outputs stitched over a whole image or volume by their
maximum there, so a slice or window without foreground does not reach 1.

Examples
--------
>>> import torch
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> net = build_network(cfg, in_channels=1)
>>> net(torch.zeros(2, 1, 32, 32)).shape
torch.Size([2, 2, 32, 32])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from monai.networks.nets import UNet
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.learn.config import Config

__all__ = ["Segmenter", "activate", "build_network", "normalized_relu", "out_channels"]


def normalized_relu(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SoftSeg's final activation: ``relu(x)`` divided by its maximum per sample and channel."""
    r = torch.relu(x)
    peak = r.flatten(2).amax(dim=2).clamp_min(eps)
    return r / peak.view(*peak.shape, *([1] * (x.ndim - 2)))


def activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """The final activation ``softmax``, ``sigmoid`` or ``normrelu`` of ``(B, K, *sp)`` logits.

    Examples
    --------
    >>> activate(torch.tensor([[[-1.0, 0.5, 2.0]]]), "normrelu").tolist()
    [[[0.0, 0.25, 1.0]]]
    """
    if activation == "softmax":
        return torch.softmax(logits, dim=1)
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    return normalized_relu(logits)


def out_channels(config: Config) -> int:
    """Output channels: classes + background for softmax, classes otherwise."""
    return config.n_classes + (1 if config.model.final_activation == "softmax" else 0)


class Segmenter(nn.Module):
    """A backbone returning logits plus the configured final activation.

    Plain networks take no metadata: ``meta`` is ignored and
    :meth:`conditioned` does nothing (:class:`segloop.learn.film.FilmSegmenter`
    uses them).
    """

    meta_dim = 0  #: length of the metadata vector (0: the network takes none)

    def __init__(self, backbone: nn.Module, activation: str):
        super().__init__()
        self.backbone = backbone
        self.activation = activation

    def logits(self, x: torch.Tensor, meta=None) -> torch.Tensor:
        """Raw outputs."""
        return self.backbone(x)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Apply the final activation to logits (:func:`activate`)."""
        return activate(logits, self.activation)

    def forward(self, x: torch.Tensor, meta=None) -> torch.Tensor:
        """Activated outputs."""
        return self.activate(self.logits(x, meta))

    @contextmanager
    def conditioned(self, meta) -> Iterator[Segmenter]:
        """Bind one image's metadata for the calls inside (a plain network: no effect)."""
        yield self


def build_network(config: Config, *, in_channels: int,
                  metadata: Mapping | None = None) -> Segmenter:
    """The network of ``config`` for ``in_channels`` inputs (2D or 3D from ``data.dims``).

    Parameters
    ----------
    config : Config
        Reads ``model.*`` (channels, strides, residual units, norm, dropout,
        final activation), ``data.dims`` and the classes (:func:`out_channels`).
    in_channels : int
        Input channels (contrasts x image channels after ``data.channels``).
    metadata : dict, optional
        With ``model.film``: the metadata encoding learned from the training
        cases (``preprocess["metadata"]`` of
        :func:`segloop.learn.data.prepare_data` and of checkpoints); ignored
        without it.

    Returns
    -------
    Segmenter
        MONAI's ``UNet`` as ``backbone`` with the final activation: ``forward``
        gives activated outputs ``(B, K, *spatial)``, ``logits`` the raw ones;
        a :class:`segloop.learn.film.FilmSegmenter` with ``model.film``.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``model.film`` without ``metadata``.
    """
    m = config.model
    strides = m.strides or [2] * (len(m.channels) - 1)
    norm = {"batch": "BATCH", "instance": "INSTANCE", "none": None}[m.norm]
    backbone = UNet(spatial_dims=config.data.dims, in_channels=int(in_channels),
                    out_channels=out_channels(config), channels=list(m.channels),
                    strides=list(strides), num_res_units=m.num_res_units,
                    norm=norm,
                    dropout=m.dropout)
    if m.film is None:
        return Segmenter(backbone, m.final_activation)
    if metadata is None:
        raise InvalidArgumentError("model.film: the network needs the metadata encoding learned "
                                   "from the training cases (preprocess['metadata'] of "
                                   "prepare_data and of checkpoints)")
    from segloop.learn.film import FilmSegmenter

    return FilmSegmenter(backbone, m.final_activation, spec=metadata, channels=m.channels,
                         levels=m.film.levels, decoder=m.film.decoder, hidden=m.film.hidden,
                         drop=m.film.drop)
