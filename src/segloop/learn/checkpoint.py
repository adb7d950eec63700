"""Checkpoints: one file holds the config, the weights, the optimiser and the data statistics.

A segloop checkpoint is a ``torch.save`` dict:

=================  ================================================================
``format``         ``"segloop-checkpoint"`` (anything else is refused)
``version``        :data:`VERSION`
``config``         the run's config as plain data (:func:`segloop.learn.config.to_dict`)
``in_channels``    input channels of the network
``model``          the network's ``state_dict``
``optimizer``      the optimiser's ``state_dict`` (None in exported weights)
``scheduler``      the schedule's ``state_dict`` or None
``epoch``          epochs finished
``best``           ``{"dice": float, "epoch": int}`` of the best validation
``elapsed``        training seconds so far (for ``training.max_minutes``)
``preprocess``     what inference must repeat: ``{"spacing", "normalize", "channels", ...}``
``history``        the per-epoch metrics rows
=================  ================================================================

Everything but the tensors is plain data (dict, list, str, int, float, bool,
None), so a checkpoint is read with ``torch.load(..., weights_only=True)``: a
file from someone else cannot run code, it is refused as unreadable. (No
random-number state is kept: every epoch reseeds from ``(training.seed,
epoch)``, which is what makes a resume exact. Checkpoints of earlier versions
that held one, as NumPy arrays, still load; the state is ignored.)

Files are written atomically (temporary file, fsync, rename), so an
interrupted save never leaves a half-written ``last.pt``; a run replaces its
own checkpoints (they are not user files, so no numbered versions are kept).

Examples
--------
>>> import tempfile, pathlib
>>> from segloop.learn.config import load_config
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8]}})
>>> net = build_network(cfg, in_channels=1)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
>>> _ = save_checkpoint(path, {"config": cfg, "in_channels": 1, "model": net.state_dict(),
...                            "epoch": 2})
>>> ck = load_checkpoint(path)
>>> ck["epoch"], ck["config"].model.channels
(2, [4, 8])
>>> restore_network(ck).__class__.__name__
'Segmenter'
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segloop.errors import CorruptFileError, FileMissingError, InvalidArgumentError
from segloop.io.files import write_errors
from segloop.learn.config import Config, ConfigError, load_config, to_dict
from segloop.learn.networks import Segmenter, build_network

__all__ = ["FORMAT", "VERSION", "load_checkpoint", "restore_network", "save_checkpoint"]

FORMAT = "segloop-checkpoint"
VERSION = 1
_DEFAULTS = {"optimizer": None, "scheduler": None, "epoch": 0, "best": None, "elapsed": 0.0,
             "preprocess": {}, "history": []}
_STATE_DICTS = ("model", "optimizer", "scheduler")  # torch's own: tensors and plain data
#: what the NumPy random-number state that earlier checkpoints held needs to be read
#: (array and scalar constructors by way of their pickles; no other global)
_OLD_RNG_GLOBALS = [np.zeros(1).__reduce__()[0], np.float64(0).__reduce__()[0], np.ndarray,
                    np.dtype, type(np.dtype(np.uint32)), type(np.dtype(np.float64))]


def _plain(value, key: str):
    """``value`` as data ``weights_only`` loading accepts (NumPy values, paths converted)."""
    if isinstance(value, np.generic | np.ndarray):  # before float: np.float64 is one
        return value.tolist()
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {k: _plain(v, key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v, key) for v in value)
    raise TypeError(f"checkpoint key {key!r}: {type(value).__name__} is not plain data")


def save_checkpoint(path, content: dict[str, Any]) -> Path:
    """Write ``content`` as a checkpoint, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file (its folder is created); an existing file is replaced.
    content : dict
        The keys of the table above (missing ones get their default);
        ``config`` may be a :class:`~segloop.learn.config.Config`. Values
        besides ``model``, ``optimizer`` and ``scheduler`` must be plain data;
        NumPy scalars and arrays become Python numbers and lists, paths text.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    segloop.errors.SegloopError
        The file cannot be written (named).
    TypeError
        A value that is not plain data.
    """
    data = {**_DEFAULTS, **content, "format": FORMAT, "version": VERSION}
    if isinstance(data.get("config"), Config):
        data["config"] = to_dict(data["config"])
    data = {k: v if k in _STATE_DICTS else _plain(v, k) for k, v in data.items()}
    buf = io.BytesIO()
    torch.save(data, buf)
    path = Path(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # the run's own file: replaced, not versioned
        finally:
            if tmp.exists():
                tmp.unlink()
        _fsync_dir(path.parent)
    return path


def load_checkpoint(path, *, map_location="cpu") -> dict[str, Any]:
    """Read a checkpoint; its ``config`` comes back as a validated :class:`Config`.

    Raises
    ------
    segloop.errors.FileMissingError
        No such file.
    segloop.errors.CorruptFileError
        Not a segloop checkpoint, truncated, from a newer version, with a bad
        config, or holding pickled Python objects (which are not run: only
        tensors and plain data are read, ``weights_only=True``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileMissingError("checkpoint not found", path=path)
    try:
        data = _load(path, map_location)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
            OSError, AttributeError, ModuleNotFoundError) as exc:
        raise CorruptFileError(f"not a readable checkpoint ({_reason(exc)})", path=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorruptFileError("not a segloop checkpoint (no 'format: segloop-checkpoint')",
                               path=path)
    if int(data.get("version", 0)) > VERSION:
        raise CorruptFileError(f"checkpoint version {data['version']} is newer than this "
                               f"segloop reads ({VERSION})", path=path)
    try:
        data["config"] = load_config(data["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"the checkpoint's config is not valid ({exc})",
                               path=path) from None
    data.pop("rng", None)  # earlier checkpoints: unused
    return {**_DEFAULTS, **data, "path": str(path)}


def _load(path: Path, map_location):
    """``torch.load`` of tensors and plain data only (NumPy arrays too for old RNG states)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL numpy." not in str(exc):
            raise
    with torch.serialization.safe_globals(_OLD_RNG_GLOBALS):
        return torch.load(path, map_location=map_location, weights_only=True)


def _reason(exc: Exception) -> str:
    """The first line of why ``torch.load`` failed; a refused global by name."""
    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (f"it holds Python objects, not only tensors and plain data: {refused[1]}; "
                "segloop does not run code from checkpoints")
    unpickler = re.search(r"WeightsUnpickler error: \s*(\S[^\n]*)", text)
    if unpickler:  # not a pickle torch can read safely: another kind of file
        return f"not a PyTorch file ({unpickler[1].strip()[:80]})"
    return (text.strip().splitlines() or [type(exc).__name__])[0][:160]


def restore_network(checkpoint: dict[str, Any], *, strict: bool = True) -> Segmenter:
    """The checkpoint's network with its weights (in eval mode).

    A FiLM network (``model.film``) is rebuilt with the metadata encoding the
    checkpoint keeps in ``preprocess["metadata"]``.

    Raises
    ------
    segloop.errors.CorruptFileError
        The weights do not fit the architecture the config describes, or a
        FiLM checkpoint without its metadata encoding.
    """
    spec = (checkpoint.get("preprocess") or {}).get("metadata")
    if checkpoint["config"].model.film is not None and not spec:
        raise CorruptFileError("a FiLM model (model.film) without its metadata encoding "
                               "(preprocess.metadata)", path=checkpoint.get("path"))
    try:
        net = build_network(checkpoint["config"],
                            in_channels=int(checkpoint.get("in_channels", 1)), metadata=spec)
    except InvalidArgumentError as exc:
        raise CorruptFileError(f"the metadata encoding does not fit ({exc.message})",
                               path=checkpoint.get("path")) from None
    try:
        net.load_state_dict(checkpoint["model"], strict=strict)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CorruptFileError(f"the weights do not fit the configured network ({first})",
                               path=checkpoint.get("path")) from None
    return net.eval()


def _fsync_dir(path: Path) -> None:  # pragma: no cover - platform detail
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
