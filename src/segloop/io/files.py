"""Safe file handling shared by every reader and writer.

* Inputs are checked before parsing: missing, not a file, empty.
* Headers are checked before pixel data are allocated: a header that
  promises more than :func:`max_bytes` is refused (``SEGLOOP_MAX_BYTES``
  overrides the limit), and an uncompressed file shorter than its header
  promises is reported as truncated.
* Outputs are written atomically (temporary file in the same folder, fsync,
  rename), and an existing file is never replaced silently: without
  ``overwrite=True`` it is an error; with it, the old file is kept as a
  numbered version ``NAME.~1~``, ``NAME.~2~``...

Examples
--------
>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_output(d / "a.txt") as tmp:
...     _ = tmp.write_text("one")
>>> with atomic_output(d / "a.txt", overwrite=True) as tmp:
...     _ = tmp.write_text("two")
>>> sorted(p.name for p in d.iterdir())
['a.txt', 'a.txt.~1~']
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from segloop.errors import (
    CorruptFileError,
    EmptyFileError,
    FileMissingError,
    ImageTooLargeError,
    InvalidArgumentError,
    OutputExistsError,
    SegloopError,
    WriteError,
)

__all__ = [
    "apply_default_mode",
    "atomic_output",
    "check_input_file",
    "check_pixel_budget",
    "compound_suffix",
    "keep_version",
    "max_bytes",
    "write_errors",
    "write_json",
]

_DEFAULT_MAX_BYTES = 16 * 1024**3  # 16 GiB: bigger than any scan we meet, below RAM abuse


def max_bytes() -> int:
    """Largest pixel buffer a reader may allocate (``SEGLOOP_MAX_BYTES`` or 16 GiB)."""
    raw = os.environ.get("SEGLOOP_MAX_BYTES")
    if raw is None:
        return _DEFAULT_MAX_BYTES
    try:
        value = int(float(raw))
    except ValueError:
        raise InvalidArgumentError(f"SEGLOOP_MAX_BYTES must be a number, got {raw!r}") from None
    if value <= 0:
        raise InvalidArgumentError(f"SEGLOOP_MAX_BYTES must be positive, got {raw!r}")
    return value


def compound_suffix(path: str | os.PathLike) -> str:
    """Lower-case extension, keeping ``.nii.gz``-style double suffixes.

    Examples
    --------
    >>> compound_suffix("sub-01_T1w.NII.GZ"), compound_suffix("x.png")
    ('.nii.gz', '.png')
    """
    name = Path(path).name.lower()
    for double in (".nii.gz", ".tar.gz"):
        if name.endswith(double):
            return double
    return Path(name).suffix


def check_input_file(path: str | os.PathLike, *, allow_dir: bool = False) -> Path:
    """Check that ``path`` exists, is a file (or folder if allowed) and is not empty.

    Raises
    ------
    FileMissingError
        The path does not exist or is of the wrong type.
    EmptyFileError
        The file has zero bytes.
    """
    p = Path(path)
    if not p.exists():
        raise FileMissingError("no such file or folder", path=p)
    if p.is_dir():
        if not allow_dir:
            raise FileMissingError("is a folder, expected a file", path=p)
        return p
    if not p.is_file():
        raise FileMissingError("is not a regular file", path=p)
    if p.stat().st_size == 0:
        raise EmptyFileError("file is empty (0 bytes)", path=p)
    return p


def check_pixel_budget(shape, dtype, path, *, data_bytes_on_disk: int | None = None,
                       what: str = "header promises") -> None:
    """Refuse a header whose pixel data would be absurdly large or is truncated.

    Parameters
    ----------
    shape : sequence of int
        Array shape the header promises.
    dtype : numpy dtype-like
        Element type the header promises.
    path : str or os.PathLike
        File named in the error.
    data_bytes_on_disk : int, optional
        For uncompressed files: the bytes available for pixel data; fewer
        than the header promises means the file is truncated.
    what : str
        How the message introduces the size (a file header, or an output).

    Raises
    ------
    ImageTooLargeError, CorruptFileError
    """
    dims = [int(n) for n in shape]
    if any(n < 0 for n in dims):
        raise CorruptFileError(f"header gives a negative dimension {tuple(dims)}", path=path)
    itemsize = np.dtype(dtype).itemsize
    n_bytes = int(np.prod(np.asarray(dims, dtype=object))) * itemsize if dims else 0
    if n_bytes > max_bytes():
        raise ImageTooLargeError(
            f"{what} {tuple(dims)} voxels of {np.dtype(dtype).name} "
            f"({n_bytes / 1024**3:.1f} GiB), above the {max_bytes() / 1024**3:.1f} GiB limit "
            "(set SEGLOOP_MAX_BYTES to raise it)", path=path)
    if data_bytes_on_disk is not None and data_bytes_on_disk < n_bytes:
        raise CorruptFileError(
            f"file is truncated: header promises {n_bytes} bytes of pixel data, "
            f"only {max(data_bytes_on_disk, 0)} present", path=path)


def keep_version(path: str | os.PathLike) -> Path | None:
    """Rename an existing ``path`` to the next free ``NAME.~N~``; return it.

    Examples
    --------
    >>> keep_version("/nonexistent/file.nii.gz") is None
    True
    """
    p = Path(path)
    if not p.exists():
        return None
    n = 1
    while (p.parent / f"{p.name}.~{n}~").exists():
        n += 1
    backup = p.parent / f"{p.name}.~{n}~"
    os.replace(p, backup)
    return backup


def apply_default_mode(path: str | os.PathLike) -> None:
    """Give a file (or folder) the permissions a plain ``open`` would have.

    ``tempfile`` creates private files (0600) and folders (0700); outputs
    should follow the user's umask instead, like any other file they write.
    """
    mask = os.umask(0)
    os.umask(mask)
    p = Path(path)
    os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; move it onto ``path`` on success.

    The temporary file lives in the destination folder and keeps the
    destination's extension (so format writers that look at the suffix
    work). On error it is removed and ``path`` is untouched.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false (CLI: ``--overwrite``).
    WriteError
        The folder cannot be created or the file cannot be written.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError("exists; pass --overwrite (overwrite=True) to replace it "
                                "(the old file is kept as a numbered version)", path=p)
    if p.exists() and p.is_dir():
        raise OutputExistsError("is a folder, expected a file path", path=p)
    with write_errors(p):
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.",
                                        suffix=f".tmp{compound_suffix(p)}", dir=p.parent)
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        with write_errors(p):  # also covers the writer failing on the temporary file
            yield tmp
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            apply_default_mode(tmp)
            if p.exists():
                keep_version(p)
            os.replace(tmp, p)
        with contextlib.suppress(OSError):  # directory fsync is best effort
            dir_fd = os.open(p.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into a :class:`WriteError`.

    Examples
    --------
    >>> try:
    ...     with write_errors("/proc/nope/out.nii.gz"):
    ...         open("/proc/nope/out.nii.gz", "w")
    ... except WriteError as err:
    ...     print(err)
    /proc/nope/out.nii.gz: cannot write: No such file or directory
    """
    try:
        yield
    except SegloopError:
        raise
    except OSError as exc:
        raise WriteError(f"cannot write: {exc.strerror or type(exc).__name__}",
                         path=path) from exc


def _json_ready(obj: Any) -> Any:
    """Replace non-finite floats by None and NumPy scalars by Python ones."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return _json_ready(obj.item())
    return obj


def write_json(data: Any, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``data`` as indented, strictly valid JSON, atomically.

    NaN and infinities become ``null``; an existing file is kept as a version.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = write_json({"hd95": float("inf")}, pathlib.Path(tempfile.mkdtemp()) / "r.json")
    >>> json.loads(p.read_text())
    {'hd95': None}
    """
    p = Path(path)
    with atomic_output(p, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(_json_ready(data), indent=2, allow_nan=False) + "\n")
    return p
