"""Inputs of the latency benchmark, built from the MNI152 template (real data, offline).

Sizes follow the issue's targets: a 512² slice, a BRATS-sized volume
(240 × 240 × 155), a 128³ cube and a 256 × 256 × 128 slab. Size names are
written ``XxYxZ`` (file order, as radiologists quote them); arrays are
``(z, y, x)``. Each input carries a "truth" object mask (the brain, or white
matter for the 2D slice) from which benchmarks place seeds, boxes and anchors.

Examples
--------
>>> size_name((155, 240, 240))
'240x240x155'
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from segloop.data.mni152 import load_mni152
from segloop.io import Image, resample

__all__ = ["LatencyInput", "latency_input", "size_name"]


def size_name(shape: tuple[int, ...]) -> str:
    """``"512x512"`` / ``"240x240x155"``: the shape in file order (x first)."""
    return "x".join(str(n) for n in shape[::-1])


@dataclass(frozen=True)
class LatencyInput:
    """An image, an object mask on it and the voxel size."""

    name: str
    image: np.ndarray
    truth: np.ndarray
    spacing: tuple[float, ...]


def _fit(image: Image, shape: tuple[int, ...]) -> Image:
    """Resample ``image`` so that its field of view fills ``shape`` voxels."""
    extent = np.asarray(image.shape) * np.asarray(image.spacing)
    out = resample(image, spacing=tuple(extent / np.asarray(shape)))
    arr = out.array
    pads = [(0, max(0, n - s)) for n, s in zip(shape, arr.shape, strict=True)]
    arr = np.pad(arr, pads)[tuple(slice(0, n) for n in shape)]
    return out.with_array(np.ascontiguousarray(arr))


@functools.lru_cache(maxsize=8)
def latency_input(shape: tuple[int, ...]) -> LatencyInput:
    """The benchmark input of the given array shape (2D or 3D), cached.

    2D inputs are the axial slice through the middle of the white matter,
    with the white-matter mask as truth; 3D inputs are the whole template,
    with the brain mask as truth.
    """
    mni = load_mni152()
    if len(shape) == 2:
        z = int(np.argmax((mni.tissue.array == 3).sum(axis=(1, 2))))
        sl = Image(mni.t1.array[z], spacing=mni.t1.spacing[1:])
        lab = sl.with_array((mni.tissue.array[z] == 3).astype(np.uint8), kind="label")
    else:
        sl, lab = mni.t1, mni.brain
    img = _fit(sl, shape)
    truth = _fit(lab, shape)
    return LatencyInput(size_name(shape), img.array.astype(np.float32),
                        truth.array.astype(np.uint8), img.spacing)
