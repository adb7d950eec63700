"""``segloop export``: a checkpoint as an ONNX model, float32 or post-training int8.

:func:`export_model` writes the network's **logits** as an ONNX graph
(``torch.onnx.export``, the ``torch.export``-based exporter, opset
:data:`OPSET`) with a dynamic batch and dynamic spatial sizes (any multiple of
the U-Net's downsampling), input ``image (B, C, *spatial)`` and, for a FiLM
network (``meta_dim > 0``), a second input ``meta (B, D)``. The final
activation, the sliding window, TTA and the geometry stay in segloop
(:mod:`segloop.learn.onnx_model`), so an exported model predicts through the
same pipeline as its checkpoint. The file carries the config, the
pre-processing and a fingerprint (:mod:`segloop.learn.onnx_file`).

Before export, each single-slope ``PReLU`` (MONAI's default activation) is
written as the ``LeakyReLU`` of that slope, the same function, which ONNX
Runtime fuses with the convolution before it
(:func:`segloop.learn.onnx_rewrite.onnx_ready`). The exported graph is
checked against the checkpoint's network on an input of another size than
the one traced (``float_error``).

``format="int8"``: post-training static quantization with ONNX Runtime
(:func:`segloop.learn.onnx_quantize.quantize`: QOperator format, ``uint8``
activations, ``int8`` weights per output channel; convolutions with fewer than
``min_channels`` input or output channels, the first and the output block,
stay float32), activation ranges calibrated on ``calibration`` samples of the
checkpoint's **training** split (:mod:`segloop.learn.onnx_calibration`) with
``minmax`` (or ``percentile``). A 2D U-Net's up-sampling
``ConvTranspose`` layers are first written as sub-pixel convolutions (the
same function, :func:`segloop.learn.onnx_rewrite.subpixel_upsampling`), which
int8 kernels run: ONNX Runtime has no int8 ``ConvTranspose``.
``InstanceNormalization`` has none either and runs in float32 between a
dequantize and a quantize. The int8 model is then checked against the
float32 one on the calibration inputs
(:func:`segloop.learn.onnx_calibration.compare_outputs`); the result is
returned, logged and kept in the file (``export.check``). See
``docs/quantize.md`` for which layouts gain (2D U-Nets) and which do not (3D).

Examples
--------
>>> import tempfile, pathlib, torch
>>> from segloop.learn.config import load_config
>>> from segloop.learn.checkpoint import save_checkpoint
>>> from segloop.learn.networks import build_network
>>> from segloop.learn.onnx_model import load_onnx_model
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> _ = torch.manual_seed(0)
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> ck = save_checkpoint(folder / "m.pt", {"config": cfg, "in_channels": 1,
...                      "model": build_network(cfg, in_channels=1).state_dict()})
>>> result = export_model(ck, folder / "m.onnx", log=lambda line: None)
>>> result.format, load_onnx_model(result.path).network.meta_dim
('onnx', 0)
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from segloop.errors import DatasetError, FileMissingError, InvalidArgumentError, OutputExistsError
from segloop.io.files import atomic_output
from segloop.learn.checkpoint import load_checkpoint, restore_network
from segloop.learn.config import load_config, to_dict
from segloop.learn.onnx_calibration import calibration_inputs, compare_outputs
from segloop.learn.onnx_file import seal
from segloop.learn.onnx_model import ort_session
from segloop.learn.onnx_quantize import METHODS, quantize, quiet_logger
from segloop.learn.onnx_rewrite import onnx_ready, subpixel_upsampling
from segloop.learn.sampling import size_multiple

__all__ = ["FORMATS", "METHODS", "OPSET", "ExportResult", "export_model", "to_onnx"]

FORMATS = ("onnx", "int8")
OPSET = 18


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    ``check``: for int8, :func:`~segloop.learn.onnx_calibration.compare_outputs`
    of the int8 model against the float32 one on the calibration inputs.
    """

    path: Path
    format: str
    bytes: int
    float_error: float  #: max |ONNX float32 - checkpoint| logits on the export check
    check: dict | None = None
    calibration: int = 0
    excluded: list[str] = field(default_factory=list)  #: convolutions kept in float32


class _Logits(nn.Module):
    """The exported function: ``image [, meta] -> logits``."""

    def __init__(self, network: nn.Module, meta_dim: int):
        super().__init__()
        self.network, self.meta_dim = network, meta_dim

    def forward(self, image, meta=None):
        return self.network.logits(image, meta) if self.meta_dim else self.network.logits(image)


def _example(config, in_channels: int, meta_dim: int, *, scale: int = 3, batch: int = 2):
    m = size_multiple(config)
    shape = [m * (scale + a) for a in range(config.data.dims)]
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(batch, in_channels, *shape, generator=gen)]
    if meta_dim:
        args.append(torch.zeros(batch, meta_dim))
    return tuple(args)


def to_onnx(network: nn.Module, config, *, in_channels: int,
            subpixel: bool = False) -> tuple[onnx.ModelProto, float]:
    """The ONNX graph of ``network``'s logits, and its max error against torch on a new input.

    The batch and spatial sizes are dynamic (checked on the graph's input).
    ``subpixel``: 2D up-sampling as sub-pixel convolutions
    (:func:`segloop.learn.onnx_rewrite.subpixel_upsampling`; for int8).
    The error is measured against ``network`` itself, so it covers the rewrites.
    """
    meta_dim = int(getattr(network, "meta_dim", 0) or 0)
    ready = onnx_ready(network)
    if subpixel:
        ready, _ = subpixel_upsampling(ready)
    module = _Logits(ready, meta_dim)
    args = _example(config, in_channels, meta_dim)
    auto = torch.export.Dim.AUTO
    shapes = [{0: auto, **{2 + a: auto for a in range(config.data.dims)}}]
    names = ["image"]
    if meta_dim:
        shapes.append({0: auto})
        names.append("meta")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, input_names=names, output_names=["logits"],
                                    dynamic_shapes=tuple(shapes), dynamo=True,
                                    opset_version=OPSET, verbose=False)
    model = program.model_proto
    fixed = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim
             if d.HasField("dim_value")]
    if fixed != [in_channels]:
        raise InvalidArgumentError(f"the exported graph has fixed sizes {fixed}: the network's "
                                   "batch or spatial size could not be made dynamic")
    check = _example(config, in_channels, meta_dim, scale=4, batch=3)
    session = ort_session(model.SerializeToString(), threads=torch.get_num_threads())
    feeds = dict(zip(names, (a.numpy() for a in check), strict=True))
    with torch.no_grad():
        expected = _Logits(network.eval(), meta_dim)(*check).numpy()
    error = float(np.abs(session.run(None, feeds)[0] - expected).max())
    return model, error


def _calibration(ck: dict, network, n: int, data, log) -> list[dict]:
    from segloop.learn.data import prepare_data

    cfg = ck["config"]
    if data is not None:
        cfg = load_config(cfg, overrides=[f"data.path={data}"])
    try:
        prepared = prepare_data(cfg, log=log)
    except (FileMissingError, DatasetError) as exc:
        hint = "" if data is not None else " (give the dataset folder with --data DIR)"
        raise type(exc)(f"int8 calibration reads the training split: {exc.message}{hint}",
                        path=exc.path) from None
    volumes = prepared.train or prepared.val
    if not volumes:
        raise InvalidArgumentError("no training case to calibrate on", path=cfg.data.path)
    if prepared.in_channels != int(ck.get("in_channels", 1)):
        raise InvalidArgumentError(f"the data give {prepared.in_channels} input channels; the "
                                   f"model takes {ck.get('in_channels', 1)}", path=cfg.data.path)
    encoder = getattr(network, "meta_encoder", None)
    return calibration_inputs(volumes, cfg, n, meta_dim=int(getattr(network, "meta_dim", 0)),
                              missing=None if encoder is None else encoder.missing(),
                              seed=cfg.training.seed)


def _run_all(model: onnx.ModelProto, feeds: list[dict]) -> list[np.ndarray]:
    session = ort_session(model.SerializeToString(), threads=torch.get_num_threads())
    return [session.run(None, feed)[0] for feed in feeds]


def export_model(checkpoint, out, *, format: str = "onnx", calibration: int = 16, data=None,
                 method: str = "minmax", min_channels: int = 8, overwrite: bool = False,
                 log=print) -> ExportResult:
    """Export a checkpoint as an ONNX model, float32 (``onnx``) or quantized (``int8``).

    Parameters
    ----------
    checkpoint : str or os.PathLike
        A segloop checkpoint (``best.pt``); a cascade's is refused (export
        each stage).
    out : str or os.PathLike
        The ``.onnx`` file to write.
    format : {"onnx", "int8"}
        Float32 graph, or int8 after calibration (see the module docstring).
    calibration : int
        int8: calibration samples (slices, images or windows) of the training split.
    data : str or os.PathLike, optional
        int8: the dataset folder (default: the checkpoint's ``data.path``).
    method : {"minmax", "percentile"}
        int8: how activation ranges are calibrated.
    min_channels : int
        int8: convolutions with fewer input or output channels stay float32.
    overwrite : bool
        Replace an existing ``out`` (it is kept as ``out.~N~``); otherwise an error.
    log : callable
        Receives progress lines (and the int8 check).

    Returns
    -------
    ExportResult

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A bad format, method or count, a cascade checkpoint, an ``.onnx``
        file instead of a checkpoint, data without training cases or with
        other channels.
    segloop.errors.OutputExistsError
        ``out`` exists and ``overwrite`` is false.
    segloop.errors.FileMissingError, segloop.errors.CorruptFileError
        A missing or unreadable checkpoint.
    """
    if format not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if format == "int8" and (isinstance(calibration, bool) or not isinstance(calibration, int)
                             or calibration < 1):
        raise InvalidArgumentError(f"calibration: at least 1 sample, got {calibration!r}")
    if isinstance(min_channels, bool) or not isinstance(min_channels, int) or min_channels < 1:
        raise InvalidArgumentError(f"min_channels must be an integer >= 1, got {min_channels!r}")
    out = Path(out)
    if out.exists() and not overwrite:  # before any work; atomic_output checks again
        raise OutputExistsError("exists; pass --overwrite (overwrite=True) to replace it (the "
                                "old file is kept as a numbered version)", path=out)
    if Path(checkpoint).suffix.lower() == ".onnx":
        raise InvalidArgumentError("already an exported model: export takes the segloop "
                                   "checkpoint it came from (best.pt)", path=checkpoint)
    ck = load_checkpoint(checkpoint)
    cfg = ck["config"]
    if getattr(cfg, "cascade", None) is not None:
        raise InvalidArgumentError("a cascade's checkpoint runs two models: export each "
                                   "stage's checkpoint on its own", path=checkpoint)
    network = restore_network(ck)
    in_channels = int(ck.get("in_channels", 1))
    feeds = _calibration(ck, network, calibration, data, log) if format == "int8" else []
    log(f"export: tracing {Path(checkpoint).name} to ONNX (opset {OPSET})")
    subpixel = format == "int8" and cfg.data.dims == 2
    model, error = to_onnx(network, cfg, in_channels=in_channels, subpixel=subpixel)
    recipe = {"exporter": f"torch.onnx (dynamo) {torch.__version__}", "opset": OPSET,
              "float_error": error, "prelu_as_leaky_relu": True,
              "subpixel_upsampling": subpixel}
    result = ExportResult(out, format, 0, error)
    if format == "int8":
        if cfg.data.dims == 3:
            log("export: note: int8 3D U-Nets ran slower than the float32 ONNX model on the "
                "CPUs we measured (docs/quantize.md); --format onnx may be the faster choice")
        log(f"export: calibrating int8 ranges on {len(feeds)} training samples ({method})")
        quantized, excluded = quantize(model, feeds, method=method, min_channels=min_channels)
        check = compare_outputs(_run_all(model, feeds), _run_all(quantized, feeds), config=cfg)
        result.check, result.calibration, result.excluded = check, len(feeds), excluded
        recipe.update(quantization={"format": "QOperator", "activations": "uint8",
                                    "weights": "int8 per output channel (a float "
                                               "ConvTranspose: int8 storage only)",
                                    "method": method, "calibration": len(feeds),
                                    "min_channels": min_channels,
                                    "float32_convolutions": len(excluded)}, check=check)
        log(f"export: int8 vs float32 on the calibration inputs: same class on "
            f"{check['agreement']:.2%} of pixels, Dice {check['dice']:.4f}, mean |dp| "
            f"{check['mean_abs_diff']:.4f}")
        model = quantized
    seal(model, {"format": format, "config": json.dumps(to_dict(cfg)),
                 "in_channels": str(in_channels),
                 "preprocess": json.dumps(ck.get("preprocess") or {}),
                 "meta_dim": str(int(getattr(network, "meta_dim", 0) or 0)),
                 "source": Path(checkpoint).name, "export": json.dumps(recipe)})
    with atomic_output(out, overwrite=overwrite) as tmp:
        onnx.save(model, tmp)
    result.bytes = out.stat().st_size
    log(f"export: wrote {out} ({format}, {result.bytes / 1e6:.2f} MB)")
    return result
