"""Exact rewrites of a network before ONNX export, for layers ONNX Runtime runs slowly.

* :func:`onnx_ready`: each single-slope ``PReLU`` (MONAI's default
  activation) becomes the ``LeakyReLU`` of that slope, the same function,
  which ONNX Runtime fuses into the convolution before it (float32) or runs
  as ``QLinearLeakyRelu`` (int8); its ``PRelu`` kernel is fused with nothing
  and cost as much as the convolutions of our 2D U-Nets.
* :func:`subpixel_upsampling`: each 2D ``ConvTranspose`` (the U-Net's
  up-sampling) becomes a :class:`SubpixelConvTranspose`, a convolution giving
  the ``s x s`` output phases as channels followed by a pixel shuffle
  (ONNX ``DepthToSpace``), the same function again. ONNX Runtime has no int8
  ``ConvTranspose`` on the CPU (and a slow float one); the convolution is
  quantized like the others. It does more multiplications (a 2 x 2 kernel per
  phase where the transposed 3 x 3 kernel has 1, 2 or 4 taps), so it pays
  in int8 only (see ``docs/quantize.md``).

Both return modified copies; the original network is left as it is.

Examples
--------
>>> import torch
>>> from torch import nn
>>> up = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)
>>> x = torch.randn(1, 4, 5, 6)
>>> same = SubpixelConvTranspose.of(up)
>>> same(x).shape, bool(torch.allclose(same(x), up(x), atol=1e-5))
(torch.Size([1, 3, 10, 12]), True)
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SubpixelConvTranspose", "onnx_ready", "subpixel_upsampling"]


def _phases(k: int, s: int, p: int, op: int) -> tuple[int, list[list[int | None]], int, int] | None:
    """One axis of a transposed convolution as ``s`` phases of a ``D``-tap correlation.

    Output ``o = s * i + r`` takes ``x[i - t] * w[s * t + r + p]``; with
    ``u = -t - dmin`` every phase reads ``x[i + dmin + u]``, ``u < D``.
    Returns ``(D, table[r][u] -> kernel index or None, left pad, right pad)``,
    or None when the output is not exactly ``s`` times the input (a crop).
    """
    if (k + op - 2 * p) % s:
        return None
    taps = {r: [t for t in range(-k, k + 1) if 0 <= s * t + r + p < k] for r in range(s)}
    offsets = [-t for ts in taps.values() for t in ts]
    dmin, size = min(offsets), max(offsets) - min(offsets) + 1
    table: list[list[int | None]] = [[None] * size for _ in range(s)]
    for r, ts in taps.items():
        for t in ts:
            table[r][-t - dmin] = s * t + r + p
    left = -dmin
    right = (k + op - 2 * p) // s - 1 + size - 1 - left
    if left < 0 or right < 0:
        return None
    return size, table, left, right


class SubpixelConvTranspose(nn.Module):
    """A 2D transposed convolution as a convolution and a pixel shuffle (same outputs).

    Build it with :meth:`of`; only 2D, ``groups=1``, ``dilation=1``, equal
    strides and outputs exactly ``stride`` times the input qualify.
    """

    def __init__(self, conv: nn.Conv2d, stride: int, pad: tuple[int, int, int, int]):
        super().__init__()
        self.conv, self.stride, self.pad = conv, int(stride), tuple(pad)

    @classmethod
    def of(cls, up: nn.ConvTranspose2d) -> SubpixelConvTranspose | None:
        """The equivalent module of ``up``, or None when it does not qualify."""
        s = up.stride[0]
        if (not isinstance(up, nn.ConvTranspose2d) or up.groups != 1 or up.stride[1] != s
                or any(d != 1 for d in up.dilation)):
            return None
        axes = [_phases(up.kernel_size[a], s, up.padding[a], up.output_padding[a])
                for a in range(2)]
        if None in axes:
            return None
        w = up.weight.detach().transpose(0, 1)  # (out, in, kh, kw)
        c_out, c_in = w.shape[:2]
        sizes = [a[0] for a in axes]
        weight = torch.zeros(c_out, s, s, c_in, *sizes, dtype=w.dtype)
        for rh, rw in itertools.product(range(s), repeat=2):
            for uh, uw in itertools.product(range(sizes[0]), range(sizes[1])):
                kh, kw = axes[0][1][rh][uh], axes[1][1][rw][uw]
                if kh is not None and kw is not None:
                    weight[:, rh, rw, :, uh, uw] = w[:, :, kh, kw]
        conv = nn.Conv2d(c_in, c_out * s * s, sizes, bias=up.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(weight.reshape(c_out * s * s, c_in, *sizes))
            if up.bias is not None:
                conv.bias.copy_(up.bias.detach().repeat_interleave(s * s))
        pad = (axes[1][2], axes[1][3], axes[0][2], axes[0][3])  # F.pad order: x then y
        return cls(conv, s, pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The transposed convolution's output: pad, convolve, shuffle the phases into place."""
        return F.pixel_shuffle(self.conv(F.pad(x, self.pad)), self.stride)


def _replace(network: nn.Module, swap) -> nn.Module:
    out = copy.deepcopy(network).eval()
    for module in list(out.modules()):
        for name, child in list(module.named_children()):
            new = swap(child)
            if new is not None:
                setattr(module, name, new)
    return out


def onnx_ready(network: nn.Module) -> nn.Module:
    """A copy of ``network`` in eval mode whose single-slope PReLUs are LeakyReLUs (same function).

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.PReLU())
    >>> type(onnx_ready(net)[1]).__name__, type(net[1]).__name__
    ('LeakyReLU', 'PReLU')
    """
    def swap(child):
        if isinstance(child, nn.PReLU) and child.weight.numel() == 1:
            return nn.LeakyReLU(float(child.weight.detach().item()))
        return None

    return _replace(network, swap)


def subpixel_upsampling(network: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``network`` (eval mode) with 2D ConvTransposes as sub-pixel convolutions.

    Layers :meth:`SubpixelConvTranspose.of` refuses are kept. Returns the copy
    and how many layers were replaced.
    """
    count = []

    def swap(child):
        new = SubpixelConvTranspose.of(child) if isinstance(child, nn.ConvTranspose2d) else None
        count.extend([1] if new is not None else [])
        return new

    return _replace(network, swap), len(count)
