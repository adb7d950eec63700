import numpy as np
import pytest

import segloop.bench.peers as peers
from segloop.bench.peers import PEERS, get_peer, to_uint8
from segloop.data.phantoms import disk
from segloop.simulate import get_driver

# the segloop driver whose simulated user each peer shares
TWIN = {"opencv-grabcut": "boxclicks", "opencv-scissors": "livewire",
        "skimage-randomwalker": "graphcut"}


@pytest.fixture(scope="module")
def sharp_disk():
    truth = disk((80, 80), (40, 38), 18)
    image = np.where(truth, 180.0, 60.0) + np.random.default_rng(0).normal(0, 4, truth.shape)
    return image, truth


@pytest.mark.parametrize("name", list(PEERS))
def test_each_peer_reaches_dice_090_on_a_sharp_disk(name, sharp_disk):
    image, truth = sharp_disk
    driver, note = get_peer(name)
    assert note is None
    trace = driver(image, truth, max_interactions=10, stop_at=0.9,
                   rng=np.random.default_rng(0))
    assert trace.tool == name and trace.note is None
    assert trace.dice[-1] >= 0.9 and len(trace.dice) <= 4
    assert trace.seconds > 0
    # the same simulated user as segloop's tool: the same first interactions
    twin = get_driver(TWIN[name])(image, truth, max_interactions=10, stop_at=0.9,
                                  rng=np.random.default_rng(0))
    assert type(driver).propose is type(get_driver(TWIN[name])).propose
    n = min(len(trace.interactions), len(twin.interactions), 3)
    for mine, theirs in zip(trace.interactions[:n], twin.interactions[:n], strict=True):
        assert mine.kind == theirs.kind
        assert str(mine.data) == str(theirs.data)


def test_grabcut_clicks_are_hard_marks(sharp_disk):
    image, truth = sharp_disk
    tool = peers._GrabCut(image, spacing=np.ones(2), channel_axis=None)
    tool.set_box(((20, 18), (60, 58)))
    # a negative click in the disk's centre: at least a 1-pixel disc becomes background
    mask = tool.add_click((40, 38), False)
    assert not mask[40, 38]
    mask = tool.add_click((40, 38), True)
    assert mask[40, 38]


def test_scissors_session_follows_the_livewire_interface(sharp_disk):
    image, truth = sharp_disk
    s = peers._Scissors(image)
    for p in [(22, 38), (40, 56), (58, 38), (40, 20)]:
        s.add_anchor(p)
    mask = s.mask()
    assert s.closed and mask[40, 38] and not mask[0, 0]
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.9
    s.remove_last_anchor()
    assert not s.closed and len(s.anchors) == 4 and len(s.segments) == 3


def test_uint8_scaling():
    assert to_uint8(np.arange(4.0).reshape(2, 2))[..., 0].tolist() == [[0, 85], [170, 255]]
    rgb = to_uint8(np.zeros((2, 2, 3)), colour=True)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8


def test_missing_opencv_skips_its_peers(monkeypatch):
    def missing():
        raise ImportError("no cv2")

    monkeypatch.setattr(peers, "_cv2", missing)
    for name in ("opencv-grabcut", "opencv-scissors"):
        driver, note = get_peer(name)
        assert driver is None and "OpenCV" in note
    assert get_peer("skimage-randomwalker")[0] is not None
