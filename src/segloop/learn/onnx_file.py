"""The segloop ONNX file: a network's graph plus what inference needs, sealed by a fingerprint.

``segloop export`` (:func:`segloop.learn.export.export_model`) writes an ONNX
model whose ``metadata_props`` say everything :func:`segloop.learn.onnx_model.load_onnx_model`
needs to segment an image as the checkpoint would:

========================  ==========================================================
``segloop_format``        :data:`FORMAT_TAG` (a file without it is refused)
``segloop_format_version`` :data:`VERSION`
``segloop_version``       the package version that wrote the file
``format``                ``onnx`` (float32) or ``int8`` (quantized)
``config``                the run's config as JSON (:func:`segloop.learn.config.to_dict`):
                          pre-processing (``data.*``), classes, final activation,
                          inference settings
``in_channels``           input channels of the network
``preprocess``            the checkpoint's ``preprocess`` settings (JSON); for a FiLM
                          model its ``metadata`` encoding
``meta_dim``              length of the metadata vector (0: a plain network)
``source``                the checkpoint's file name
``export``                how the file was made (JSON: exporter, opset, quantization
                          recipe, calibration and the int8-vs-float32 check)
``fingerprint``           SHA-256 of the graph and of every other entry
========================  ==========================================================

The fingerprint makes a file whose weights, graph or metadata were changed
after export (by hand, a tool, a damaged copy) an error rather than a model
that silently pre-processes or decodes its outputs differently.

Examples
--------
>>> import onnx
>>> model = onnx.helper.make_model(onnx.helper.make_graph(
...     [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
...     [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
...     [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
>>> seal(model, {"format": "onnx", "in_channels": "1"})
>>> entries = metadata_of(model)
>>> entries["segloop_format"], entries["fingerprint"] == fingerprint(model)
('segloop-onnx', True)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from segloop import __version__
from segloop.errors import CorruptFileError
from segloop.io.files import check_input_file
from segloop.learn.config import Config, ConfigError, load_config

__all__ = ["FORMAT_TAG", "VERSION", "fingerprint", "metadata_of", "read_onnx", "seal"]

FORMAT_TAG = "segloop-onnx"
VERSION = 1
_REQUIRED = ("format", "config", "in_channels", "preprocess", "fingerprint")


def metadata_of(model: onnx.ModelProto) -> dict[str, str]:
    """The ``metadata_props`` of ``model`` as a dict."""
    return {p.key: p.value for p in model.metadata_props}


def fingerprint(model: onnx.ModelProto) -> str:
    """SHA-256 of the graph (weights included) and of every metadata entry but ``fingerprint``."""
    digest = hashlib.sha256(model.graph.SerializeToString(deterministic=True))
    for key, value in sorted(metadata_of(model).items()):
        if key != "fingerprint":
            digest.update(f"\0{key}\0{value}".encode())
    return digest.hexdigest()


def seal(model: onnx.ModelProto, entries: dict[str, str]) -> None:
    """Set the segloop entries (and the format tag) on ``model``, then its fingerprint."""
    props = {**metadata_of(model), **entries, "segloop_format": FORMAT_TAG,
             "segloop_format_version": str(VERSION), "segloop_version": __version__}
    props.pop("fingerprint", None)
    del model.metadata_props[:]
    for key, value in sorted(props.items()):
        model.metadata_props.add(key=key, value=str(value))
    model.metadata_props.add(key="fingerprint", value=fingerprint(model))


def _json(entries: dict[str, str], key: str, path: Path):
    try:
        return json.loads(entries[key])
    except (json.JSONDecodeError, TypeError) as exc:
        raise CorruptFileError(f"its segloop metadata entry {key!r} is not valid JSON ({exc})",
                               path=path) from None


def read_onnx(path) -> tuple[onnx.ModelProto, dict]:
    """Read and check an exported model: ``(model, info)``.

    ``info`` holds ``format``, ``config`` (a validated :class:`Config`),
    ``in_channels``, ``preprocess``, ``meta_dim``, ``source``, ``export`` and
    the raw ``entries``.

    Raises
    ------
    segloop.errors.FileMissingError, segloop.errors.EmptyFileError
        No such file, or an empty one.
    segloop.errors.CorruptFileError
        Not an ONNX file; an ONNX model without segloop metadata (not written
        by ``segloop export``: it does not say how to pre-process images);
        from a newer segloop; changed after export (the fingerprint does not
        match); a config that does not validate.
    """
    path = check_input_file(path)
    try:
        model = onnx.load_model_from_string(path.read_bytes())
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise CorruptFileError(f"not an ONNX file ({type(exc).__name__})", path=path) from None
    if not model.graph.node:
        raise CorruptFileError("not an ONNX file (no graph)", path=path)
    entries = metadata_of(model)
    if entries.get("segloop_format") != FORMAT_TAG:
        raise CorruptFileError(
            "an ONNX model without segloop metadata (segloop_format): only models written by "
            "segloop export say how to pre-process images and read their outputs", path=path)
    if int(entries.get("segloop_format_version", 0)) > VERSION:
        raise CorruptFileError(f"segloop ONNX version {entries['segloop_format_version']} is "
                               f"newer than this segloop reads ({VERSION})", path=path)
    missing = [k for k in _REQUIRED if k not in entries]
    if missing:
        raise CorruptFileError(f"its segloop metadata lacks {', '.join(missing)}", path=path)
    if entries["fingerprint"] != fingerprint(model):
        raise CorruptFileError("changed after export: its fingerprint does not match its graph, "
                               "weights and metadata (export the checkpoint again)", path=path)
    try:
        config: Config = load_config(_json(entries, "config", path))
    except ConfigError as exc:
        raise CorruptFileError(f"its config is not valid ({exc})", path=path) from None
    info = {"format": entries["format"], "config": config,
            "in_channels": int(entries["in_channels"]),
            "preprocess": _json(entries, "preprocess", path),
            "meta_dim": int(entries.get("meta_dim", 0)), "source": entries.get("source"),
            "export": _json(entries, "export", path) if "export" in entries else {},
            "entries": entries}
    return model, info
