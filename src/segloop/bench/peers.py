"""The peers of the clicks benchmark, played by the same simulated annotator as segloop's tools.

Each peer is a driver of :mod:`segloop.simulate.drivers` whose *tool* is
swapped: it subclasses the segloop driver of the same interaction and keeps
its ``propose`` (the simulated user), overriding only ``start`` (make the
peer's session) and ``apply`` (give it the interaction). So given the same
current mask a peer gets exactly the interactions the segloop tool gets, and
``trace.seconds`` is, as for segloop, the time spent in the tool.

``opencv-grabcut`` (as :class:`~segloop.simulate.drivers.BoxClicksDriver`)
    ``cv2.grabCut`` on the box (``GC_INIT_WITH_RECT``, 5 iterations); each
    click then marks a hard foreground/background disc and reruns
    ``GC_INIT_WITH_MASK`` (5 iterations) from the previous labelling. The
    disc's radius follows segloop's box + clicks: ``max(1 mm, d / 2)``, kept
    below ``d``, the distance from the click to the nearest pixel already of the clicked
    class (for a negative click the outside of the box counts as
    background). The result is the definite and probable foreground.
``opencv-scissors`` (as :class:`~segloop.simulate.drivers.LivewireDriver`)
    ``cv2.segmentation.IntelligentScissorsMB`` with CVAT's settings (Canny
    edge features 32/100, gradient magnitude limit 200): ``buildMap`` from
    each anchor, ``getContour`` to the next, the last back to the first;
    the closed chain is filled as segloop's livewire fills it
    (:func:`segloop.tools.path_tree.check_encloses`).
``skimage-randomwalker`` (as :class:`~segloop.simulate.drivers.GraphCutDriver`)
    ``skimage.segmentation.random_walker`` (``beta`` 130, the default;
    ``mode="bf"``, a direct sparse solve: on these images much faster than
    the conjugate-gradient modes) on the scribbles rasterised as the graph
    cut rasterises them (label 1 foreground, 2 background; a later stroke
    wins); the result is label 1.

Grey images go to OpenCV as 3 equal 8-bit channels scaled between their 0.5
and 99.5 percentiles (colour images: the same scaling on all channels).
OpenCV is imported when a peer starts; without it :func:`get_peer` returns
no driver and a note.

Examples
--------
>>> from segloop.data.phantoms import disk
>>> truth = disk((64, 64), (32, 32), 16)
>>> trace = get_peer("skimage-randomwalker")[0](truth * 1.0, truth, stop_at=0.9)
>>> trace.tool, trace.dice[-1] >= 0.9
('skimage-randomwalker', True)
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from dataclasses import dataclass
from typing import ClassVar

import edt
import numpy as np

from segloop.simulate.drivers import BoxClicksDriver, GraphCutDriver, LivewireDriver
from segloop.tools.contour import join_paths
from segloop.tools.cut_checks import seed_mask
from segloop.tools.graphcut import GraphCutSession
from segloop.tools.path_tree import check_encloses

__all__ = ["PEERS", "GrabCutDriver", "RandomWalkerDriver", "ScissorsDriver", "get_peer",
           "to_uint8"]

GRABCUT_ITERATIONS = 5
CLICK_RADIUS = 1.0  # segloop's BoxClicksSession default, physical units


def _cv2():
    return importlib.import_module("cv2")


def to_uint8(image: np.ndarray, *, colour: bool = False) -> np.ndarray:
    """``(y, x, 3)`` uint8: grey repeated on 3 channels, scaled between the 0.5/99.5 percentiles.

    Examples
    --------
    >>> to_uint8(np.arange(4.0).reshape(2, 2))[..., 0].tolist()
    [[0, 85], [170, 255]]
    """
    arr = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    scaled = np.clip((arr - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    u8 = np.rint(255.0 * scaled).astype(np.uint8)
    return np.ascontiguousarray(u8 if colour else np.repeat(u8[..., None], 3, axis=-1))


class _GrabCut:
    """OpenCV GrabCut as a box + clicks session (``set_box``, ``add_click``)."""

    def __init__(self, image, *, spacing, channel_axis):
        self._cv2 = _cv2()
        self._rgb = to_uint8(image, colour=channel_axis is not None)
        self.spacing = np.asarray(spacing, dtype=float)
        self._labels = None
        self._models = None

    def _run(self, mode, rect=(0, 0, 0, 0)) -> np.ndarray:
        cv2 = self._cv2
        bgd, fgd = self._models or (np.zeros((1, 65)), np.zeros((1, 65)))
        cv2.grabCut(self._rgb, self._labels, rect, bgd, fgd, GRABCUT_ITERATIONS, mode)
        self._models = (bgd, fgd)
        return (self._labels == cv2.GC_FGD) | (self._labels == cv2.GC_PR_FGD)

    def set_box(self, box) -> np.ndarray:
        (y0, x0), (y1, x1) = box
        self._box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        self._labels = np.zeros(self._rgb.shape[:2], np.uint8)
        self._models = None
        return self._run(self._cv2.GC_INIT_WITH_RECT, (x0, y0, x1 - x0 + 1, y1 - y0 + 1))

    def add_click(self, point, positive: bool) -> np.ndarray:
        cv2 = self._cv2
        current = (self._labels == cv2.GC_FGD) | (self._labels == cv2.GC_PR_FGD)
        inside = np.zeros(current.shape, bool)
        inside[self._box] = True
        same = current if positive else ~current | ~inside
        d = np.inf
        if same.any():  # distance from the click to the nearest pixel of the clicked class
            d = float(edt.edt(np.ascontiguousarray(~same), anisotropy=tuple(self.spacing),
                              black_border=False)[tuple(point)])
        if not np.isfinite(d):
            d = float(np.min(np.asarray(current.shape) * self.spacing)) / 4
        radius = min(max(CLICK_RADIUS, 0.5 * d), 0.99 * d)  # as segloop: never past d
        grids = np.ogrid[tuple(slice(0, n) for n in current.shape)]
        disc = sum(((g - p) * s) ** 2 for g, p, s in zip(grids, point, self.spacing,
                                                         strict=True)) <= radius**2
        self._labels[disc & inside] = cv2.GC_FGD if positive else cv2.GC_BGD
        return self._run(cv2.GC_INIT_WITH_MASK)


@dataclass
class GrabCutDriver(BoxClicksDriver):
    """``opencv-grabcut``: the box + clicks annotator on ``cv2.grabCut``."""

    name: ClassVar[str] = "opencv-grabcut"
    ndims: ClassVar[tuple[int, ...]] = (2,)

    def start(self, state):
        """Prepare OpenCV's input (8-bit, 3 channels)."""
        state.tool = _GrabCut(state.image, spacing=state.spacing,
                              channel_axis=state.channel_axis)


class _Scissors:
    """OpenCV's intelligent scissors with the anchor interface of segloop's livewire session."""

    def __init__(self, image, *, spacing=None, channel_axis=None):
        cv2 = _cv2()
        self.shape = np.shape(image)[:2]
        self._tool = cv2.segmentation.IntelligentScissorsMB()
        self._tool.setEdgeFeatureCannyParameters(32, 100)
        self._tool.setGradientMagnitudeMaxLimit(200)
        self._tool.applyImage(to_uint8(image, colour=channel_axis is not None))
        self._source = None
        self._paths: dict = {}  # (from, to) -> (n, 2) path, (y, x), from first
        self.anchors: list[tuple[int, int]] = []
        self.segments: list[np.ndarray] = []
        self.closed = False

    def _path(self, a, b) -> np.ndarray:
        if (a, b) not in self._paths:
            if self._source != a:
                self._tool.buildMap((int(a[1]), int(a[0])))
                self._source = a
            xy = self._tool.getContour((int(b[1]), int(b[0]))).reshape(-1, 2)
            self._paths[a, b] = np.ascontiguousarray(xy[:, ::-1]).astype(np.intp)
        return self._paths[a, b]

    def add_anchor(self, point) -> None:
        p = (int(point[0]), int(point[1]))
        if self.anchors:
            self.segments.append(self._path(self.anchors[-1], p))
        self.anchors.append(p)

    def remove_last_anchor(self) -> None:
        if self.closed:
            self.closed = False
        else:
            self.anchors.pop()
        if self.segments:
            self.segments.pop()

    def contour(self) -> np.ndarray:
        pts = join_paths([np.array([self.anchors[0]])] + self.segments)
        return pts[:-1] if self.closed and len(pts) > 1 else pts

    def mask(self) -> np.ndarray:
        if not self.closed:
            back = self._path(self.anchors[-1], self.anchors[0])
            pts = join_paths([np.array([self.anchors[0]])] + self.segments + [back])[:-1]
            check_encloses(pts, self.shape, self.anchors)
            self.segments.append(back)
            self.closed = True
        return check_encloses(self.contour(), self.shape, self.anchors)


@dataclass
class ScissorsDriver(LivewireDriver):
    """``opencv-scissors``: the livewire annotator on ``IntelligentScissorsMB``."""

    name: ClassVar[str] = "opencv-scissors"
    session_class: ClassVar[type] = _Scissors


class _RandomWalker:
    """scikit-image's random walker as a scribble session (``add_scribble``)."""

    radius = inspect.signature(GraphCutSession).parameters["radius"].default

    def __init__(self, image, *, spacing, channel_axis):
        from skimage.segmentation import random_walker

        self._solve = random_walker
        self._image = np.asarray(image, dtype=np.float64)
        self.spacing, self.channel_axis = tuple(spacing), channel_axis
        self._labels = np.zeros(np.shape(image)[:len(self.spacing)], np.int32)

    def add_scribble(self, strokes, *, foreground: bool):
        new = seed_mask(self._labels.shape, strokes, spacing=self.spacing, radius=self.radius)
        self._labels[new] = 1 if foreground else 2
        if not ((self._labels == 1).any() and (self._labels == 2).any()):
            return None
        with warnings.catch_warnings():  # "the probability range is outside [0, 1]" notices
            warnings.simplefilter("ignore", UserWarning)
            out = self._solve(self._image, self._labels, mode="bf", spacing=self.spacing,
                              channel_axis=self.channel_axis)
        return out == 1


@dataclass
class RandomWalkerDriver(GraphCutDriver):
    """``skimage-randomwalker``: the scribble annotator on ``random_walker``."""

    name: ClassVar[str] = "skimage-randomwalker"
    ndims: ClassVar[tuple[int, ...]] = (2,)

    def start(self, state):
        """An empty labelling of the image."""
        state.tool = _RandomWalker(state.image, spacing=state.spacing,
                                   channel_axis=state.channel_axis)

    def apply(self, state, interaction, k):
        """Paint the scribble and rerun the random walker (None while a class has no seed)."""
        scribble = interaction.data
        return state.tool.add_scribble(scribble.as_strokes(), foreground=scribble.foreground)


#: The peers by name, in report order.
PEERS = {"opencv-grabcut": GrabCutDriver, "opencv-scissors": ScissorsDriver,
         "skimage-randomwalker": RandomWalkerDriver}
_NEEDS_OPENCV = ("opencv-grabcut", "opencv-scissors")


def get_peer(name: str):
    """``(driver, None)`` for peer ``name``, or ``(None, note)`` when its library is missing.

    Raises
    ------
    KeyError
        Not a peer (the suite checks names first).
    """
    cls = PEERS[name]
    if name in _NEEDS_OPENCV:
        try:
            _cv2()
        except ImportError:
            return None, "OpenCV (opencv-python-headless) is not installed"
    return cls(), None
