"""Rewrites before ONNX export compute the same function as the original layers."""

import pytest
import torch
from torch import nn

from segloop.learn.config import load_config
from segloop.learn.networks import build_network
from segloop.learn.onnx_rewrite import SubpixelConvTranspose, onnx_ready, subpixel_upsampling


@pytest.mark.parametrize("kernel, stride, padding, output_padding", [
    (3, 2, 1, 1),  # MONAI's up-sampling
    (2, 2, 0, 0),
    (4, 2, 1, 0),
    (3, 1, 1, 0),  # stride 1: a plain convolution
    (5, 3, 1, 0),
    ((3, 1), 2, (1, 0), (1, 1)),
])
def test_subpixel_conv_transpose_is_the_same_function(kernel, stride, padding, output_padding):
    torch.manual_seed(0)
    up = nn.ConvTranspose2d(5, 3, kernel, stride=stride, padding=padding,
                            output_padding=output_padding)
    same = SubpixelConvTranspose.of(up)
    assert same is not None and same.conv.out_channels == 3 * stride ** 2
    x = torch.randn(2, 5, 7, 6)
    with torch.no_grad():
        expected = up(x)
        assert expected.shape[2:] == (7 * stride, 6 * stride)
        torch.testing.assert_close(same(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer", [
    nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1),  # 2n - 1 outputs: a crop
    nn.ConvTranspose2d(4, 4, 3, stride=(2, 1), padding=1, output_padding=(1, 0)),
    nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
    nn.ConvTranspose2d(4, 4, 3, stride=2, padding=2, output_padding=1, dilation=2),
])
def test_layers_that_do_not_qualify_are_kept(layer):
    assert SubpixelConvTranspose.of(layer) is None
    kept, count = subpixel_upsampling(nn.Sequential(layer))
    assert count == 0 and isinstance(kept[0], nn.ConvTranspose2d)


def test_rewritten_unet_gives_the_same_logits():
    torch.manual_seed(0)
    cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8, 16]}})
    net = build_network(cfg, in_channels=1).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.PReLU):
                m.weight.fill_(0.37)
    ready = onnx_ready(net)
    fast, count = subpixel_upsampling(ready)
    assert count == 2 and not any(isinstance(m, nn.ConvTranspose2d) for m in fast.modules())
    assert not any(isinstance(m, nn.PReLU) for m in ready.modules())
    assert any(isinstance(m, nn.PReLU) for m in net.modules())  # the originals are kept
    assert any(isinstance(m, nn.ConvTranspose2d) for m in ready.modules())
    x = torch.randn(2, 1, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(ready.logits(x), net.logits(x))
        torch.testing.assert_close(fast.logits(x), net.logits(x), atol=1e-5, rtol=1e-5)
