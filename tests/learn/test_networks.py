"""Networks from a config: output channels, shapes, the one final activation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from segloop.learn.config import load_config  # noqa: E402
from segloop.learn.losses import build_loss  # noqa: E402
from segloop.learn.networks import (  # noqa: E402
    Segmenter,
    activate,
    build_network,
    normalized_relu,
    out_channels,
)


def _cfg(activation="softmax", dims=2, loss="dice_ce"):
    return load_config({"data": {"path": "x", "dims": dims, "classes": {"a": [1], "b": [2]}},
                        "model": {"channels": [4, 8], "final_activation": activation,
                                  "dropout": 0.2},
                        "loss": {"name": loss}})


@pytest.mark.parametrize("activation, loss, k", [("softmax", "dice_ce", 3),
                                                 ("sigmoid", "dice_ce", 2),
                                                 ("normrelu", "mse", 2)])
def test_outputs_are_the_activated_logits_with_k_channels(activation, loss, k):
    cfg = _cfg(activation, loss=loss)
    assert out_channels(cfg) == k
    torch.manual_seed(0)
    net = build_network(cfg, in_channels=3).eval()
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        logits, out = net.logits(x), net(x)
    assert logits.shape == out.shape == (2, k, 16, 12)
    torch.testing.assert_close(out, activate(logits, activation))
    torch.testing.assert_close(net.activate(logits), out)
    if activation == "softmax":
        torch.testing.assert_close(out.sum(1), torch.ones(2, 16, 12))
    else:
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_a_regression_loss_uses_the_same_activation():
    cfg = _cfg("normrelu", loss="mse")
    logits = torch.randn(1, 2, 8, 8)
    target = torch.randint(0, 3, (1, 1, 8, 8))
    dense = torch.stack([(target[:, 0] == c).float() for c in (1, 2)], dim=1)
    expected = torch.nn.functional.mse_loss(activate(logits, "normrelu"), dense)
    torch.testing.assert_close(build_loss(cfg)(logits, target), expected)
    # normrelu: each sample and channel divided by its own maximum
    peaks = normalized_relu(logits).flatten(2).amax(2)
    torch.testing.assert_close(peaks, torch.ones(1, 2))


def test_a_3d_network_and_its_backbone():
    net = build_network(_cfg(dims=3), in_channels=1)
    assert isinstance(net, Segmenter) and net.activation == "softmax"
    with torch.no_grad():
        assert net(torch.zeros(1, 1, 8, 8, 8)).shape == (1, 3, 8, 8, 8)
    assert any(isinstance(m, torch.nn.Dropout) for m in net.modules())
