"""Post-training static int8 quantization of an exported U-Net with ONNX Runtime.

:func:`quantize` runs ``quant_pre_process`` (shape inference, folding) and
``quantize_static`` in the **QOperator** format (``QLinearConv``,
``QLinearAdd``, ``QLinearConcat``, ``QLinearLeakyRelu``): activations
``uint8`` with an asymmetric range, weights ``int8`` per output channel,
ranges calibrated on the given feeds: ``minmax`` (the observed range) or
``percentile`` (the 0.001st..99.999th percentiles, symmetric). ONNX
Runtime's ``entropy`` method is not offered: through ``quantize_static`` it
uses as many histogram bins as quantized bins (128), so its threshold is the
whole range and its scales are exactly MinMax's (checked). On our 2-core
AVX512-VNNI machine QOperator ran as fast as or faster than QDQ, and ``int8``
activations (S8S8) were slower than ``uint8`` (``docs/quantize.md``). Then
three passes:

* convolutions with fewer than ``min_channels`` input or output channels are
  not quantized (they are the first one, which reads the image, and the
  output block, which gives the class scores: int8 costs accuracy there and
  its kernels gain nothing on a few channels);
* ``DepthToSpace`` (the pixel shuffle of sub-pixel up-sampling) moves before
  the ``DequantizeLinear`` that fed it, so it shuffles ``uint8`` instead of
  ``float32`` values (exact: both are per-tensor element maps);
* a ``ConvTranspose`` left in float32 (3D U-Nets: no int8 kernel) keeps its
  weights as ``int8`` per output channel behind a ``DequantizeLinear``, which
  ONNX Runtime folds once when the session starts: the file is smaller, the
  computation unchanged.

Examples
--------
>>> with quiet_logger("some.chatty.library"):
...     pass
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["METHODS", "quantize", "quiet_logger"]

METHODS = ("minmax", "percentile")


@contextlib.contextmanager
def quiet_logger(name: str):
    """Log records below ERROR of logger ``name`` dropped inside (third-party chatter)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Reader:
    """ONNX Runtime's calibration data reader over a list of feeds."""

    def __init__(self, feeds: list[dict]):
        self.feeds, self.index = feeds, 0

    def get_next(self):
        if self.index >= len(self.feeds):
            return None
        self.index += 1
        return self.feeds[self.index - 1]


def _narrow(model: onnx.ModelProto, min_channels: int) -> list[str]:
    """Convolutions with fewer than ``min_channels`` input or output channels."""
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and node.input[1] in weights:
            dims = weights[node.input[1]]
            c_in, c_out = (dims[1], dims[0]) if node.op_type == "Conv" else (dims[0], dims[1])
            if min(c_in, c_out) < min_channels:
                out.append(node.name)
    return out


def _topological(model: onnx.ModelProto) -> None:
    """Reorder the nodes so each comes after the producers of its inputs."""
    known = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer}
    known.add("")
    ordered, pending = [], list(model.graph.node)
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:  # pragma: no cover - a cycle: keep the order we have
            ordered += pending
            break
        for n in ready:
            known.update(n.output)
        ordered += ready
        pending = [n for n in pending if n not in ready]
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def _uint8_depth_to_space(model: onnx.ModelProto) -> int:
    """``DequantizeLinear -> DepthToSpace`` becomes ``DepthToSpace -> DequantizeLinear``."""
    scalars = {t.name for t in model.graph.initializer if int(np.prod(t.dims)) == 1}
    producer = {o: n for n in model.graph.node for o in n.output}
    uses: dict[str, int] = {}
    for n in model.graph.node:
        for name in n.input:
            uses[name] = uses.get(name, 0) + 1
    moved = 0
    for node in model.graph.node:
        dq = producer.get(node.input[0]) if node.op_type == "DepthToSpace" else None
        if (dq is None or dq.op_type != "DequantizeLinear" or uses[dq.output[0]] != 1
                or not all(name in scalars for name in dq.input[1:])):
            continue
        out = node.output[0]
        node.input[0], node.output[0] = dq.input[0], f"{out}_uint8"
        dq.input[0], dq.output[0] = f"{out}_uint8", out
        moved += 1
    if moved:
        _topological(model)
    return moved


def _int8_weights(model: onnx.ModelProto, keep: list[str]) -> int:
    """Store the float weights of ``ConvTranspose`` nodes (not in ``keep``) as int8."""
    weights = {t.name: t for t in model.graph.initializer}
    added = []
    for node in model.graph.node:
        if node.op_type != "ConvTranspose" or node.name in keep or node.input[1] not in weights:
            continue
        tensor = weights.pop(node.input[1])
        w = numpy_helper.to_array(tensor)
        peak = np.abs(w).max(axis=tuple(a for a in range(w.ndim) if a != 1))
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale.reshape(1, -1, *[1] * (w.ndim - 2))), -127, 127)
        name = tensor.name
        model.graph.initializer.remove(tensor)
        model.graph.initializer.extend([
            numpy_helper.from_array(q.astype(np.int8), f"{name}_int8"),
            numpy_helper.from_array(scale, f"{name}_scale"),
            numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero_point")])
        added.append(onnx.helper.make_node(
            "DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"], [name],
            axis=1, name=f"{name}_dequantize"))
    nodes = added + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return len(added)


def quantize(model: onnx.ModelProto, feeds: list[dict], *, method: str = "minmax",
             min_channels: int = 8) -> tuple[onnx.ModelProto, list[str]]:
    """The int8 model of a float32 one calibrated on ``feeds``, and the convolutions kept float.

    Parameters
    ----------
    model : onnx.ModelProto
        The float32 graph (:func:`segloop.learn.export.to_onnx`).
    feeds : list of dict
        Calibration inputs, ``{input name: array}`` each.
    method : {"minmax", "percentile"}
        How activation ranges are set from the feeds.
    min_channels : int
        Convolutions with fewer input or output channels stay float32.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibrate = {"minmax": CalibrationMethod.MinMax,
                 "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(prefix="segloop-int8-") as tmp, \
            warnings.catch_warnings(), quiet_logger(""), \
            contextlib.redirect_stdout(io.StringIO()):  # its advice: root logger and prints
        warnings.simplefilter("ignore")
        src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        excluded = _narrow(onnx.load(pre), min_channels)
        quantize_static(str(pre), str(out), _Reader(feeds), quant_format=QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, calibrate_method=calibrate, nodes_to_exclude=excluded)
        quantized = onnx.load(out)
    _uint8_depth_to_space(quantized)
    _int8_weights(quantized, excluded)
    return quantized, excluded
