"""FiLM: a U-Net whose feature maps are scaled and shifted per channel from case metadata.

Feature-wise linear modulation (Perez et al. 2018; for segmentation with MRI
acquisition metadata, Lemay et al. 2021): a small generator network maps the
metadata vector ``m`` of a case (:mod:`segloop.learn.metadata`: one-hot
categories, z-scored numbers, a missing flag per field) to a scale ``gamma``
and a shift ``beta`` per channel of chosen U-Net blocks, whose outputs ``x``
become ``x * (1 + gamma) + beta``.

* **Sites** (``model.film.levels``, ``decoder``): the output of the down
  block of each chosen level (level 0 is the top, full-resolution level,
  ``len(model.channels) - 1`` the bottom block) and, with ``decoder``, of the
  up block of that level (levels 1 and below: the top level's up block is the
  output block, whose outputs are the class scores, and stays as it is).
* **Generator**: ``Linear(m, hidden) -> ReLU -> Linear(hidden, 2 * sum(C))``;
  the last layer starts at zero, so an untrained FiLM network computes exactly
  what its U-Net alone computes.
* **Same weights as the plain U-Net**: the modulation is applied by forward
  hooks on the U-Net's own blocks, so the backbone's ``state_dict`` keys are
  those of :func:`segloop.learn.networks.build_network`'s plain model
  (``training.init_from`` a plain checkpoint loads its whole U-Net; the
  generator's tensors are ``film.*``).
* **Which metadata**: ``logits(x, meta)`` takes the encoded vectors ``(B, D)``
  (one per image) or one vector for the whole batch (a sliding window's
  windows, a volume's slices); without ``meta`` it uses the vector bound by
  :meth:`FilmSegmenter.conditioned`, else the *all missing* vector (the
  documented fallback: what ``model.film.drop`` trains it for).
* **Metadata dropout** (``model.film.drop``): in training mode, each field of
  each sample is hidden (encoded as missing) with this probability, drawn from
  torch's generator like dropout masks (the same on a resume: every epoch
  reseeds it), so the network learns to segment without it.

Examples
--------
>>> import torch
>>> from segloop.learn.config import load_config
>>> from segloop.learn.metadata import build_spec
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8],
...                    "film": {"fields": ["contrast"]}}})
>>> spec = build_spec(cfg.model.film, {"a": {"contrast": "T1w"}, "b": {"contrast": "T2w"}})
>>> net = build_network(cfg, in_channels=1, metadata=spec).eval()
>>> net.meta_dim, net.sites
(3, ['down0', 'bottom'])
>>> x = torch.rand(2, 1, 16, 16)
>>> with torch.no_grad(), net.conditioned({"contrast": "T2w"}):
...     same = torch.equal(net(x), net(x, net.meta_encoder.missing()))
>>> same  # the generator starts at zero: every metadata gives the U-Net's output
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from monai.networks.layers import SkipConnection
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.learn.metadata import MetadataEncoder
from segloop.learn.networks import Segmenter

__all__ = ["FilmGenerator", "FilmSegmenter", "film_sites"]


def _levels(backbone: nn.Module) -> tuple[list[tuple[nn.Module, nn.Module]], nn.Module]:
    """``[(down, up)]`` of every level of a MONAI U-Net, top first, and its bottom block."""
    node = getattr(backbone, "model", None)
    levels = []
    while isinstance(node, nn.Sequential) and len(node) == 3 and isinstance(node[1],
                                                                           SkipConnection):
        levels.append((node[0], node[2]))
        node = node[1].submodule
    if not levels:
        raise InvalidArgumentError(f"model.film needs a MONAI U-Net; {type(backbone).__name__} "
                                   "has no Sequential(down, SkipConnection, up) levels")
    return levels, node


def film_sites(backbone: nn.Module, channels: Sequence[int], *,
               levels: Sequence[int] | None = None,
               decoder: bool = True) -> list[tuple[str, nn.Module, int]]:
    """The modulated blocks of a U-Net: ``(name, module, output channels)``.

    Names: ``downI`` (the down block of level ``I``), ``bottom``, ``upI`` (the
    up block of level ``I >= 1``); see the module docstring.

    Examples
    --------
    >>> from monai.networks.nets import UNet
    >>> unet = UNet(2, 1, 2, channels=[4, 8, 16], strides=[2, 2])
    >>> [(n, c) for n, _, c in film_sites(unet, [4, 8, 16])]
    [('down0', 4), ('down1', 8), ('bottom', 16), ('up1', 4)]
    >>> [n for n, _, _ in film_sites(unet, [4, 8, 16], levels=[1], decoder=False)]
    ['down1']
    """
    blocks, bottom = _levels(backbone)
    if len(blocks) != len(channels) - 1:
        raise InvalidArgumentError(f"the U-Net has {len(blocks) + 1} levels, model.channels "
                                   f"{len(channels)}")
    chosen = sorted(set(range(len(channels)) if levels is None else levels))
    bad = [v for v in chosen if not 0 <= v < len(channels)]
    if bad:
        raise InvalidArgumentError(f"model.film.levels: {bad[0]} is not a level (0 to "
                                   f"{len(channels) - 1})")
    sites = [(f"down{i}", blocks[i][0], int(channels[i])) if i < len(blocks)
             else ("bottom", bottom, int(channels[-1])) for i in chosen]
    if decoder:
        sites += [(f"up{i}", blocks[i][1], int(channels[i - 1])) for i in chosen
                  if 1 <= i < len(blocks)]
    return sites


class FilmGenerator(nn.Module):
    """``meta (B, D)`` -> ``[(gamma, beta)]`` per site, each ``(B, C_site)``; starts at zero."""

    def __init__(self, meta_dim: int, widths: Sequence[int], *, hidden: int = 64):
        super().__init__()
        self.widths = [int(w) for w in widths]
        self.net = nn.Sequential(nn.Linear(int(meta_dim), int(hidden)), nn.ReLU(),
                                 nn.Linear(int(hidden), 2 * sum(self.widths)))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, meta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(gamma, beta)`` of every site for a ``(B, D)`` batch of metadata vectors."""
        out = self.net(meta)
        pairs, start = [], 0
        for w in self.widths:
            pairs.append((out[:, start:start + w], out[:, start + w:start + 2 * w]))
            start += 2 * w
        return pairs


class _Modulate:
    """Forward hook of one site: ``output * (1 + gamma) + beta`` with the owner's parameters."""

    def __init__(self, owner: FilmSegmenter, index: int):
        self.owner, self.index = owner, index

    def __call__(self, module, inputs, output):
        gamma, beta = self.owner._site(self.index, output)
        shape = (gamma.shape[0], gamma.shape[1]) + (1,) * (output.ndim - 2)
        return output * (1 + gamma.view(shape)) + beta.view(shape)


class FilmSegmenter(Segmenter):
    """A :class:`~segloop.learn.networks.Segmenter` whose U-Net is modulated by metadata.

    Parameters
    ----------
    backbone : monai.networks.nets.UNet
        The plain model's U-Net (same ``state_dict`` keys).
    activation : str
        The final activation.
    spec : dict
        The metadata encoding (:func:`segloop.learn.metadata.build_spec`).
    channels : sequence of int
        ``model.channels``.
    levels, decoder, hidden, drop
        ``model.film.*`` (see :func:`film_sites` and the module docstring).
    """

    def __init__(self, backbone: nn.Module, activation: str, *, spec: Mapping,
                 channels: Sequence[int], levels: Sequence[int] | None = None,
                 decoder: bool = True, hidden: int = 64, drop: float = 0.0):
        super().__init__(backbone, activation)
        self.meta_encoder = MetadataEncoder(spec)
        found = film_sites(backbone, channels, levels=levels, decoder=decoder)
        self.sites = [name for name, _, _ in found]
        self.film = FilmGenerator(self.meta_encoder.size, [c for _, _, c in found],
                                  hidden=hidden)
        self.drop = float(drop)
        self._params: list | None = None
        self._bound: torch.Tensor | None = None
        for index, (_, module, _) in enumerate(found):
            module.register_forward_hook(_Modulate(self, index))

    @property
    def meta_dim(self) -> int:
        """Length of the metadata vector."""
        return self.meta_encoder.size

    def meta_vector(self, meta, *, where: str = "image") -> torch.Tensor:
        """``float32 (N, D)`` of an encoded vector / batch, or of raw values (a mapping).

        Raises
        ------
        segloop.errors.InvalidArgumentError
            A vector of another length.
        """
        if isinstance(meta, Mapping):
            meta = self.meta_encoder.encode(meta, where=where)
        t = torch.as_tensor(np.asarray(meta, dtype=np.float32) if not torch.is_tensor(meta)
                            else meta, dtype=torch.float32)
        t = t[None] if t.ndim == 1 else t
        if t.ndim != 2 or t.shape[1] != self.meta_dim:
            raise InvalidArgumentError(f"metadata of shape {tuple(t.shape)}; the FiLM network "
                                       f"takes vectors of {self.meta_dim} values "
                                       f"({', '.join(self.meta_encoder.fields)})")
        return t

    @contextmanager
    def conditioned(self, meta) -> Iterator[FilmSegmenter]:
        """Use ``meta`` (one image's values or vector) for every call inside; None: no change."""
        previous = self._bound
        if meta is not None:
            self._bound = self.meta_vector(meta)
        try:
            yield self
        finally:
            self._bound = previous

    def _hide(self, t: torch.Tensor, batch: int) -> torch.Tensor:
        """Each field of each row hidden (missing) with probability ``drop`` (training)."""
        t = t.expand(batch, -1).clone() if t.shape[0] == 1 else t.clone()
        for start, stop in self.meta_encoder.blocks:
            hide = torch.rand(t.shape[0], device=t.device) < self.drop
            t[hide, start:stop - 1] = 0.0
            t[hide, stop - 1] = 1.0
        return t

    def _conditioning(self, meta, batch: int, device) -> torch.Tensor:
        if meta is None:
            meta = self._bound if self._bound is not None else self.meta_encoder.missing()
        t = self.meta_vector(meta).to(device)
        if t.shape[0] not in (1, batch):
            raise InvalidArgumentError(f"{t.shape[0]} metadata vectors for a batch of {batch} "
                                       "images (one per image, or one for all)")
        if self.training and self.drop > 0:
            t = self._hide(t, batch)
        return t

    def _site(self, index: int, output: torch.Tensor):
        params = self._params
        if params is None:  # the backbone called on its own: bound or missing values
            params = self.film(self._conditioning(None, output.shape[0], output.device))
        return params[index]

    def logits(self, x: torch.Tensor, meta=None) -> torch.Tensor:
        """Raw outputs of ``x`` conditioned on ``meta`` (see the module docstring)."""
        self._params = self.film(self._conditioning(meta, x.shape[0], x.device))
        try:
            return self.backbone(x)
        finally:
            self._params = None
