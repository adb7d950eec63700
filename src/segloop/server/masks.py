"""Masks over the wire: one compact JSON form for label maps sent and received.

A :class:`MaskPayload` holds an integer array as ``shape``, ``dtype``
(``uint8`` or ``uint16``), ``encoding`` (``zlib-b64``: zlib-compressed raw
little-endian C-order bytes in base64 -- a browser inflates them with
``DecompressionStream("deflate")`` --, or ``b64``: the raw bytes in base64)
and ``data``.  :func:`decode_mask` refuses what could hurt the server: a
shape with more voxels than allowed, a wrong byte count, a compressed stream
that inflates beyond the declared size (zip bombs), bad base64.

Examples
--------
>>> import numpy as np
>>> payload = encode_mask(np.eye(3, dtype=np.uint8))
>>> payload.encoding, payload.shape
('zlib-b64', [3, 3])
>>> decode_mask(payload, max_voxels=100).tolist()
[[1, 0, 0], [0, 1, 0], [0, 0, 1]]
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from segloop.server.errors import ApiError

__all__ = ["MaskPayload", "decode_mask", "encode_mask"]


class MaskPayload(BaseModel):
    """A label map (or a 2D slice of one) in compact JSON form."""

    shape: list[int] = Field(min_length=1, max_length=3, description="array shape, (z, y, x)")
    dtype: Literal["uint8", "uint16"] = "uint8"
    encoding: Literal["zlib-b64", "b64"] = "zlib-b64"
    data: str = Field(description="the bytes, base64 (zlib-compressed for zlib-b64)")


def encode_mask(array: np.ndarray, *, encoding: str = "zlib-b64") -> MaskPayload:
    """``array`` (non-negative integers < 65536) as a :class:`MaskPayload`."""
    array = np.asarray(array)
    dtype = "uint8" if not array.size or int(array.max()) < 256 else "uint16"
    raw = np.ascontiguousarray(array, dtype="<u1" if dtype == "uint8" else "<u2").tobytes()
    data = zlib.compress(raw, 6) if encoding == "zlib-b64" else raw
    return MaskPayload(shape=[int(s) for s in array.shape], dtype=dtype, encoding=encoding,
                       data=base64.b64encode(data).decode("ascii"))


def decode_mask(payload: MaskPayload, *, max_voxels: int,
                shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The array of ``payload``; 413/422 for anything too big or malformed.

    Parameters
    ----------
    payload : MaskPayload
    max_voxels : int
        Largest voxel count accepted.
    shape : tuple of int, optional
        The shape the mask must have (the image's, or its slice's).
    """
    if any(s < 1 for s in payload.shape):
        raise ApiError(422, f"mask shape {payload.shape}: every size must be >= 1")
    voxels = math.prod(payload.shape)  # Python ints: no int64 overflow to 0
    if voxels > max_voxels:
        raise ApiError(413, f"mask of {voxels} voxels exceeds the limit of {max_voxels}")
    if shape is not None and tuple(payload.shape) != tuple(shape):
        raise ApiError(422, f"mask shape {payload.shape} does not match the expected "
                       f"{list(shape)}")
    itemsize = 1 if payload.dtype == "uint8" else 2
    expected = voxels * itemsize
    try:
        raw = base64.b64decode(payload.data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "mask data is not valid base64") from None
    if payload.encoding == "zlib-b64":
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(raw, expected + 1)
        except zlib.error:
            raise ApiError(422, "mask data is not a valid zlib stream") from None
    if len(raw) != expected:
        raise ApiError(422, f"mask data holds {len(raw)} bytes; shape {payload.shape} of "
                       f"{payload.dtype} needs {expected}")
    dtype = "<u1" if payload.dtype == "uint8" else "<u2"
    return np.frombuffer(raw, dtype=dtype).reshape(payload.shape).copy()
