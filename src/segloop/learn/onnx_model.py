"""Predicting with an exported model: an ONNX Runtime session behind the usual :class:`Predictor`.

:func:`load_onnx_model` reads a file of ``segloop export``
(:mod:`segloop.learn.onnx_file`: checked format tag, fingerprint and config)
and returns an :class:`OnnxPredictor`, a
:class:`~segloop.learn.predict.Predictor` whose network is an
:class:`OnnxSegmenter`: the ONNX Runtime (CPU) session wrapped as a
``Segmenter``-like module (``logits(x, meta=None)``, ``forward``,
``conditioned(meta)``, ``meta_dim``; ``eval()`` / ``train()`` change nothing).
Everything around the network is segloop's own code, as for a checkpoint:
pre-processing, slicing or sliding window, test-time augmentation, the final
activation, post-processing and the geometry of the input. ``segloop
predict --model model.onnx`` therefore works like ``--model best.pt``
(:func:`segloop.learn.predict.load_model` dispatches ``.onnx`` files here).

**Pre-processing comes from the file.** The exported config (``data.*``:
channels, contrasts, spacing, normalisation, cropping) decides how every
image is prepared; there is no option to pre-process otherwise, so an
exported model cannot be used with another pre-processing by mistake. An
image of another dimensionality or channel count than the model's is refused
with an error naming the file and the model; a file whose config, weights or
graph were edited after export is refused by its fingerprint.

**Not available**: MC dropout (the exported graph has no dropout: uncertainty
with ``mc`` passes raises :class:`~segloop.errors.InvalidArgumentError`; TTA
works) and devices other than the CPU.

ONNX Runtime uses ``threads`` intra-op threads (default: torch's current
number, :func:`torch.get_num_threads`, so both run alike).

Examples
--------
>>> from onnx import TensorProto, helper
>>> model = helper.make_model(helper.make_graph(  # logits: background 0, foreground the image
...     [helper.make_node("Mul", ["image", "zero"], ["background"]),
...      helper.make_node("Concat", ["background", "image"], ["logits"], axis=1)], "g",
...     [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 1, "h", "w"])],
...     [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 2, "h", "w"])],
...     [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]),
...     opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
>>> net = OnnxSegmenter(ort_session(model.SerializeToString()), activation="softmax")
>>> x = torch.tensor([[[[-3.0, 3.0]]]])
>>> net(x).argmax(1).tolist(), net.meta_dim
([[[0, 1]]], 0)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from segloop.errors import InvalidArgumentError
from segloop.learn.metadata import MetadataEncoder
from segloop.learn.networks import activate
from segloop.learn.onnx_file import read_onnx
from segloop.learn.predict import Predictor

__all__ = ["OnnxPredictor", "OnnxSegmenter", "load_onnx_model", "ort_session"]


def ort_session(model, *, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session of ``model`` (bytes or a path), all graph optimisations on.

    ``threads``: intra-op threads (default :func:`torch.get_num_threads`).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no advice printed on stderr
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                providers=["CPUExecutionProvider"])


class OnnxSegmenter(nn.Module):
    """An ONNX Runtime session of exported logits, used like a ``Segmenter``.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        Inputs ``image (B, C, *spatial)`` [and ``meta (B, D)``], output the logits.
    activation : str
        The final activation (``softmax``, ``sigmoid``, ``normrelu``).
    metadata : dict, optional
        A FiLM model's metadata encoding (``preprocess["metadata"]``).
    source : str, optional
        The file (named in errors).
    """

    def __init__(self, session: ort.InferenceSession, *, activation: str,
                 metadata: Mapping | None = None, source: str | None = None):
        super().__init__()
        self.session, self.activation, self.source = session, activation, source
        inputs = session.get_inputs()
        self.input_names = [i.name for i in inputs]
        shape = inputs[0].shape
        self.dims = len(shape) - 2
        self.in_channels = shape[1] if isinstance(shape[1], int) else None
        self.meta_encoder = MetadataEncoder(metadata) if metadata and "meta" in \
            self.input_names else None
        if ("meta" in self.input_names) != (self.meta_encoder is not None):
            raise InvalidArgumentError("a FiLM graph needs its metadata encoding and a plain one "
                                       "takes none", path=source)
        self._bound: np.ndarray | None = None

    @property
    def meta_dim(self) -> int:
        """Length of the metadata vector (0: a plain network)."""
        return 0 if self.meta_encoder is None else self.meta_encoder.size

    def meta_vector(self, meta, *, where: str = "image") -> np.ndarray:
        """``float32 (N, D)`` of an encoded vector / batch, or of raw values (a mapping)."""
        if isinstance(meta, Mapping):
            meta = self.meta_encoder.encode(meta, where=where)
        if torch.is_tensor(meta):
            meta = meta.detach().cpu().numpy()
        v = np.asarray(meta, dtype=np.float32)
        v = v[None] if v.ndim == 1 else v
        if v.ndim != 2 or v.shape[1] != self.meta_dim:
            raise InvalidArgumentError(f"metadata of shape {v.shape}; the model takes vectors "
                                       f"of {self.meta_dim} values", path=self.source)
        return v

    @contextmanager
    def conditioned(self, meta) -> Iterator[OnnxSegmenter]:
        """Use ``meta`` (one image's values or vector) for every call inside (plain: no effect)."""
        previous = self._bound
        if meta is not None and self.meta_dim:
            self._bound = self.meta_vector(meta)
        try:
            yield self
        finally:
            self._bound = previous

    def _feeds(self, x: torch.Tensor, meta) -> dict[str, np.ndarray]:
        if x.ndim != self.dims + 2 or (self.in_channels is not None
                                       and x.shape[1] != self.in_channels):
            raise InvalidArgumentError(
                f"an input of shape {tuple(x.shape)}; the model takes (batch, "
                f"{self.in_channels}, {self.dims} spatial sizes)", path=self.source)
        feeds = {"image": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)}
        if self.meta_dim:
            if meta is None:
                meta = self._bound if self._bound is not None else self.meta_encoder.missing()
            v = self.meta_vector(meta)
            if v.shape[0] not in (1, x.shape[0]):
                raise InvalidArgumentError(f"{v.shape[0]} metadata vectors for a batch of "
                                           f"{x.shape[0]} images (one per image, or one for all)")
            feeds["meta"] = np.ascontiguousarray(np.broadcast_to(v, (x.shape[0], v.shape[1])))
        return feeds

    def logits(self, x: torch.Tensor, meta=None) -> torch.Tensor:
        """Raw outputs of ``x`` (a FiLM model: ``meta``, else the bound vector, else missing)."""
        out = self.session.run(None, self._feeds(x, meta))[0]
        return torch.from_numpy(out).to(x.device)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Apply the final activation (:func:`segloop.learn.networks.activate`)."""
        return activate(logits, self.activation)

    def forward(self, x: torch.Tensor, meta=None) -> torch.Tensor:
        """Activated outputs."""
        return self.activate(self.logits(x, meta))


class OnnxPredictor(Predictor):
    """A :class:`~segloop.learn.predict.Predictor` of an exported model (see the module docstring).

    ``format`` is ``onnx`` or ``int8``; ``export`` the file's export record.
    """

    format: str = "onnx"
    export: dict | None = None

    def samples(self, array: np.ndarray, *, mc: int = 0, **kw) -> np.ndarray:
        """As :meth:`ArrayPredictor.samples`, without MC dropout (no dropout in the graph)."""
        if mc:
            raise InvalidArgumentError(
                "MC dropout: an exported model has no dropout layers (ONNX graphs are fixed at "
                "export); use the checkpoint for MC-dropout uncertainty, or TTA (--tta, mc=0)",
                path=self.source)
        return super().samples(array, mc=mc, **kw)


def load_onnx_model(path, *, device=None, threads: int | None = None) -> OnnxPredictor:
    """An :class:`OnnxPredictor` from a file written by ``segloop export``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file.
    device : str, optional
        ``cpu`` or None (ONNX Runtime's CPU provider is the only one used).
    threads : int, optional
        ONNX Runtime intra-op threads (default: torch's current number).

    Raises
    ------
    segloop.errors.FileMissingError, segloop.errors.CorruptFileError
        No such file; not an ONNX file; an ONNX model without segloop
        metadata; a file changed after export (see
        :func:`segloop.learn.onnx_file.read_onnx`).
    segloop.errors.InvalidArgumentError
        A device other than the CPU.
    """
    if device is not None and torch.device(device).type != "cpu":
        raise InvalidArgumentError(f"device {device}: exported models run on the CPU (ONNX "
                                   "Runtime)", path=path)
    model, info = read_onnx(path)
    source = str(Path(path))
    session = ort_session(model.SerializeToString(), threads=threads)
    config = info["config"]
    network = OnnxSegmenter(session, activation=config.model.final_activation,
                            metadata=info["preprocess"].get("metadata") if info["meta_dim"]
                            else None, source=source)
    if network.in_channels is not None and network.in_channels != info["in_channels"]:
        raise InvalidArgumentError(f"the graph takes {network.in_channels} channels, its "
                                   f"metadata says {info['in_channels']}", path=source)
    predictor = OnnxPredictor(network, config, in_channels=info["in_channels"], device="cpu",
                              source=source)
    predictor.format, predictor.export = info["format"], info["export"]
    return predictor
