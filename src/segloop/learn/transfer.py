"""Transfer learning: start a run from another run's weights, optionally with a frozen encoder.

Any segloop checkpoint can start a training run (``training.init_from``;
:func:`segloop.learn.resume.start_state` calls :func:`transfer_weights`):

* the source network must have the **same shape** as the configured one:
  ``data.dims``, the input channels and ``model.channels`` / ``strides`` /
  ``num_res_units`` / ``norm``. Anything else is refused with an error
  naming the key (:func:`check_transfer`): a 3D network's weights mean
  nothing to a 2D one, and loading the deeper layers of a network whose
  first convolution reads other channels would feed them features they never
  saw. Only the tensors that fit by chance (biases, PReLU slopes) would load,
  which is no transfer at all;
* the **output block** (the top-level up-sampling block of the U-Net, whose
  outputs are the classes) is loaded only when the classes (names, in order)
  and the final activation are those of the config. Otherwise its tensors
  keep their fresh initialisation (seeded by ``training.seed``) and the log
  line names them: a model of the left ventricle starts a model of the right
  ventricle with its whole encoder and decoder, not with its class scores;
* every other tensor is loaded (dropout may differ: it has no tensors).
  The tensors of a FiLM generator (``film.*``, :mod:`segloop.learn.film`)
  load when the source has them with the same shape (same metadata fields
  and categories); otherwise (a plain source, other fields) the generator
  keeps its fresh initialisation, which starts as the identity: a plain
  U-Net starts a FiLM model exactly where it stood.

:func:`freeze_encoder` (``training.freeze_encoder: true``) stops the
gradient of the **encoder**: the down-sampling block of every level of
MONAI's U-Net and the bottom block (:func:`encoder_parameters`). The decoder
(the up-sampling blocks, the output block included) trains; the optimiser
only holds trainable tensors (:func:`trainable_parameters`), so weight decay
does not shrink frozen weights either. Normalisation: instance norm (the
default, ``affine=False``) has neither parameters nor running statistics,
so there is nothing more to freeze; batch norm's scale and shift are frozen
with the encoder, while its running statistics keep following the new data in
training mode (as AdaBN does), so training and inference normalise alike.
Dropout layers of the encoder still drop during training.

Examples
--------
>>> from segloop.learn.config import load_config
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> net = build_network(cfg, in_channels=1)
>>> sorted(encoder_parameters(net))[:2]
['backbone.model.0.conv.unit0.adn.A.weight', 'backbone.model.0.conv.unit0.conv.bias']
>>> frozen = freeze_encoder(net)
>>> len(frozen), len(trainable_parameters(net)), len(list(net.parameters()))
(10, 5, 15)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from monai.networks.layers import SkipConnection
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.learn.checkpoint import load_checkpoint
from segloop.learn.config import Config

__all__ = ["TransferReport", "check_transfer", "encoder_parameters", "freeze_encoder",
           "output_parameters", "trainable_parameters", "transfer_weights"]


# ------------------------------------------------------------------------ network parts
def _unet(net: nn.Module) -> tuple[str, nn.Sequential]:
    """The prefix of the U-Net's names in ``net`` and its top-level ``Sequential``."""
    backbone, prefix = (net.backbone, "backbone.") if hasattr(net, "backbone") else (net, "")
    top = getattr(backbone, "model", None)
    if not (isinstance(top, nn.Sequential) and len(top) == 3
            and isinstance(top[1], SkipConnection)):
        raise InvalidArgumentError(f"{type(backbone).__name__} is not a MONAI U-Net "
                                   "(Sequential(down, SkipConnection, up)): no encoder to find")
    return prefix, top


def _encoder_modules(net: nn.Module) -> list[nn.Module]:
    """The down block of every level, then the bottom block."""
    _, level = _unet(net)
    modules = []
    while True:
        down, skip, _ = level
        modules.append(down)
        inner = skip.submodule
        if isinstance(inner, nn.Sequential) and len(inner) == 3 and isinstance(
                inner[1], SkipConnection):
            level = inner
            continue
        modules.append(inner)  # the bottom
        return modules


def _names_of(net: nn.Module, modules: list[nn.Module]) -> dict[str, nn.Parameter]:
    ids = {id(p) for m in modules for p in m.parameters()}
    return {name: p for name, p in net.named_parameters() if id(p) in ids}


def encoder_parameters(net: nn.Module) -> dict[str, nn.Parameter]:
    """The encoder's parameters by name: the down path of the U-Net and its bottom.

    Parameters
    ----------
    net : torch.nn.Module
        A :class:`~segloop.learn.networks.Segmenter` or a MONAI ``UNet``.

    Returns
    -------
    dict
        Parameter name (as in ``net.named_parameters()``) -> parameter.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``net`` is not (built around) a MONAI U-Net.
    """
    return _names_of(net, _encoder_modules(net))


def output_parameters(net: nn.Module) -> dict[str, nn.Parameter]:
    """The output block's parameters by name (the top-level up block: its outputs are the classes).

    Examples
    --------
    >>> from segloop.learn.config import load_config
    >>> from segloop.learn.networks import build_network
    >>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
    >>> sorted(output_parameters(build_network(cfg, in_channels=1)))[0]
    'backbone.model.2.0.adn.A.weight'
    """
    _, top = _unet(net)
    return _names_of(net, [top[2]])


def freeze_encoder(net: nn.Module) -> list[str]:
    """Stop the gradient of the encoder (``requires_grad = False``); the names frozen.

    See the module docstring for what happens to normalisation and dropout.
    The optimiser must then be built over :func:`trainable_parameters`.
    """
    params = encoder_parameters(net)
    for p in params.values():
        p.requires_grad_(False)
    return list(params)


def trainable_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The parameters that still take a gradient, in ``net.parameters()`` order."""
    return [p for p in net.parameters() if p.requires_grad]


# ------------------------------------------------------------------------ loading
def _shape_of(cfg: Config, in_channels: int) -> dict:
    m = cfg.model
    return {"data.dims": cfg.data.dims, "in_channels": int(in_channels),
            "model.channels": list(m.channels),
            "model.strides": list(m.strides or [2] * (len(m.channels) - 1)),
            "model.num_res_units": m.num_res_units, "model.norm": m.norm}


def check_transfer(source: Config, source_in_channels: int, cfg: Config, in_channels: int, *,
                   what: str = "training.init_from", path=None) -> None:
    """Refuse a source network of another shape than ``cfg``'s (see the module docstring).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``"<what>: <key>: <value> in the source, <value> here (...)"``, for the
        first key that differs.

    Examples
    --------
    >>> from segloop.learn.config import load_config
    >>> a = load_config({"data": {"path": "x", "dims": 3}})
    >>> b = load_config({"data": {"path": "x", "dims": 2}})
    >>> check_transfer(a, 1, b, 1)
    Traceback (most recent call last):
    ...
    segloop.errors.InvalidArgumentError: training.init_from: data.dims: 3 in the source, \
2 here (transfer needs a network of the same shape; classes may differ)
    """
    theirs, ours = _shape_of(source, source_in_channels), _shape_of(cfg, in_channels)
    for key, value in ours.items():
        if theirs[key] != value:
            hint = ("the input channels come from data.contrasts / data.channels"
                    if key == "in_channels" else
                    "transfer needs a network of the same shape; classes may differ")
            raise InvalidArgumentError(f"{what}: {key}: {theirs[key]!r} in the source, {value!r} "
                                       f"here ({hint})", path=path)


@dataclass
class TransferReport:
    """What :func:`transfer_weights` loaded.

    ``loaded``: tensor names taken from the source; ``reinitialised``: names
    kept at their fresh initialisation, ``reason`` says why (None when all
    loaded); ``total``: tensors of the network's ``state_dict``; ``generator``:
    FiLM generator tensors the source does not have (kept fresh).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    reason: str | None = None
    total: int = 0
    generator: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One log line: ``init_from SOURCE: loaded N of M tensors[; re-initialised ...]``."""
        text = f"init_from {self.source}: loaded {len(self.loaded)} of {self.total} tensors"
        if self.reinitialised:
            text += (f"; re-initialised the output block ({self.reason}): "
                     + ", ".join(n.removeprefix("backbone.") for n in self.reinitialised))
        if self.generator:
            text += f"; the FiLM generator starts fresh ({len(self.generator)} tensors)"
        return text


def _classes_reason(source: Config, cfg: Config) -> str | None:
    theirs = (list(source.data.classes), source.model.final_activation)
    ours = (list(cfg.data.classes), cfg.model.final_activation)
    if theirs == ours:
        return None
    if theirs[1] != ours[1]:
        return f"final activation {theirs[1]} there, {ours[1]} here"
    return f"classes {', '.join(theirs[0])} there, {', '.join(ours[0])} here"


def transfer_weights(net: nn.Module, source, *, config: Config, in_channels: int,
                     what: str = "training.init_from") -> TransferReport:
    """Load a checkpoint's weights into ``net`` by the rules of the module docstring.

    Parameters
    ----------
    net : Segmenter
        The network of ``config`` (built with ``in_channels``).
    source : str, os.PathLike or dict
        A checkpoint file or a loaded checkpoint (:func:`segloop.learn.checkpoint.load_checkpoint`).
    config : Config
        The run's config.
    in_channels : int
        The run's input channels.
    what : str
        Names the setting in errors (``training.init_from``, ``--source``...).

    Returns
    -------
    TransferReport

    Raises
    ------
    segloop.errors.FileMissingError, segloop.errors.CorruptFileError
        No such file, or not a segloop checkpoint.
    segloop.errors.InvalidArgumentError
        A source network of another shape (:func:`check_transfer`).
    """
    ck = source if isinstance(source, dict) else load_checkpoint(source)
    name = str(ck.get("path") or "the source checkpoint")
    check_transfer(ck["config"], int(ck.get("in_channels", 1)), config, in_channels,
                   what=what, path=ck.get("path"))
    own = net.state_dict()
    reason = _classes_reason(ck["config"], config)
    prefix, top = _unet(net)
    skip = {f"{prefix}model.2.{k}" for k in top[2].state_dict()} if reason else set()
    theirs = ck["model"]
    fitting = {k: v for k, v in theirs.items()
               if k in own and k not in skip and own[k].shape == v.shape}
    fresh = sorted(k for k in own if k.startswith("film.") and k not in fitting)  # FiLM
    missing = sorted(k for k in own if k not in fitting and k not in skip and k not in fresh)
    if missing:  # same shape yet absent: not the network the config says it is
        raise InvalidArgumentError(f"{what}: the source's weights lack {missing[0]} (or hold "
                                   "it with another shape) although its config describes this "
                                   "network: a damaged checkpoint?",
                                   path=ck.get("path"))
    with torch.no_grad():
        net.load_state_dict(fitting, strict=False)
    return TransferReport(name, sorted(fitting), sorted(skip), reason, len(own), fresh)
