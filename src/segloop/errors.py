"""One exception family for every user-facing error in segloop.

Every error a user can cause (a bad file, a bad argument, a dataset with
problems) raises a subclass of :class:`SegloopError`.  Its message names the
file or argument and says what is wrong, so the command line can print it on
one line and exit non-zero without a traceback.  Programming errors inside
segloop are *not* wrapped: they keep their ordinary Python type.

Examples
--------
>>> err = CorruptFileError("not a NIfTI header", path="scan.nii")
>>> str(err)
'scan.nii: not a NIfTI header'
>>> isinstance(err, SegloopError)
True
"""

from __future__ import annotations

import os

__all__ = [
    "CorruptFileError",
    "DatasetError",
    "EmptyFileError",
    "FileMissingError",
    "GeometryMismatchError",
    "ImageTooLargeError",
    "InvalidArgumentError",
    "InvalidImageError",
    "OutputExistsError",
    "SegloopError",
    "UnsupportedFormatError",
    "WriteError",
]


class SegloopError(Exception):
    """Base class of every error segloop reports to a user.

    Parameters
    ----------
    message : str
        What is wrong, in plain words.
    path : str or os.PathLike, optional
        The file or folder concerned; it is put in front of the message.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        return f"{self.path}: {self.message}"


class InvalidArgumentError(SegloopError, ValueError):
    """An argument (function keyword or command-line option) has a bad value."""


class FileMissingError(SegloopError, FileNotFoundError):
    """A file or folder that should exist does not."""


class EmptyFileError(SegloopError):
    """A file exists but holds zero bytes."""


class CorruptFileError(SegloopError):
    """A file is truncated, corrupt or not of the format its name claims."""


class UnsupportedFormatError(SegloopError):
    """A file's extension or content is not a format segloop reads or writes."""


class ImageTooLargeError(SegloopError):
    """A header promises an image too large to allocate (refused up front)."""


class InvalidImageError(SegloopError):
    """The pixel data are unusable (NaN/Inf voxels, wrong dimensionality...)."""


class GeometryMismatchError(SegloopError):
    """Two images that must overlay (image and label) do not share a grid."""


class DatasetError(SegloopError):
    """A dataset folder is laid out wrongly or has inconsistent files."""


class OutputExistsError(SegloopError, FileExistsError):
    """An output file exists and overwriting it was not asked for."""


class WriteError(SegloopError):
    """An output cannot be written (no permission, no space, bad folder)."""
