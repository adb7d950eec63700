"""Image-specific fine-tuning from scribbles (BIFSeg, Wang et al., TMI 2018).

A :class:`FinetuneSession` holds one image, a private copy of a trained
network and the user's scribbles. Each :meth:`~FinetuneSession.update`:

1. **CRF**: a graph cut whose regional term is the CNN's probability of the
   object (``-log p`` / ``-log(1 - p)``), whose boundary term is
   contrast-sensitive, and where the scribbles are hard constraints
   (:class:`segloop.learn.finetune_weights.ProbabilityCut`, built on
   :mod:`segloop.tools.cutgraph`). Unlike BIFSeg, the regional term also
   holds the scribbles' own evidence, as in segloop's graph cut: the
   geodesic scribble-distance prior (weight ``geodesic``; Price et al. 2010:
   where between the strokes the boundary lies) and, optionally (weight
   ``intensity``, default 0), the intensity histograms of the scribbled
   pixels; with ``geodesic=0`` it is BIFSeg's CRF. Only the pieces of the
   cut holding a foreground scribble are kept;
2. **fine-tuning**: ``steps`` Adam steps of the network copy on this image
   alone, a binary cross-entropy of the object's probability against the cut,
   weighted per pixel by :func:`~segloop.learn.finetune_weights.pixel_weights`
   (scribbles ``weight``, uncertain pixels 0, others 1);
3. the network's new probabilities, then the CRF again; steps 2-3 repeat
   ``rounds`` times (BIFSeg alternates them); ``steps=0`` is the CRF alone.

Where: a 2D image (or slice) is worked on whole. In a volume the cut and the
loss are confined to a **region**: the box of
:meth:`~FinetuneSession.start_box`, or else the bounding box of all
scribbles grown by ``margin`` voxels (whole slices for a 2D model). A 3D
network sees the region within a window at least its patch size (what it was
trained on; a larger region is fine-tuned on random patch-sized windows).
Outside the region the segmentation and probabilities stay as they were.

The box start (BIFSeg's bounding box, for structures the model never saw):
the network runs on the box with its context (as above), its probability
inside the box is the regional term, the outside of the box is fixed
background; scribbles and fine-tuning then teach the network copy the new
structure on this image.

The shared network is never modified (the session trains a deep copy), and
:meth:`~FinetuneSession.save` writes the fine-tuned checkpoint only when
asked, never over an existing file unless ``overwrite=True`` (the old one is
then kept as ``NAME.~N~``).

Examples
--------
>>> import torch
>>> from segloop.data.phantoms import disk
>>> from segloop.learn.config import load_config
>>> from segloop.learn.inference import ArrayPredictor
>>> from segloop.learn.networks import build_network
>>> cfg = load_config({"data": {"path": "x"}, "model": {"channels": [4, 8],
...                    "num_res_units": 0}})
>>> _ = torch.manual_seed(0)
>>> predictor = ArrayPredictor(build_network(cfg, in_channels=1), cfg, in_channels=1)
>>> truth = disk((32, 32), (16, 16), 8)
>>> image = np.where(truth, 1.0, -1.0)[None].astype(np.float32)
>>> s = FinetuneSession(predictor, image, steps=2)
>>> s.add_scribbles([[16, 12], [16, 20]], foreground=True)
>>> s.add_scribbles([[2, 2], [2, 29], [29, 29], [29, 2], [2, 2]], foreground=False)
>>> label = s.update()
>>> label.shape, label.dtype.name, bool(label[16, 16]), bool(label[2, 2])
((32, 32), 'bool', True, False)
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.io.files import keep_version
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.finetune_weights import (
    ProbabilityCut,
    ScribbleCosts,
    geodesic_speed,
    pixel_weights,
    weighted_steps,
)
from segloop.learn.inference import ArrayPredictor
from segloop.learn.preprocess import slice_axis_index
from segloop.learn.sampling import size_multiple
from segloop.tools.cut_checks import check_box, check_spacing, seed_mask, shown

__all__ = ["DEFAULTS", "FinetuneSession"]

#: Default settings of a session, chosen with the simulated annotator of ``segloop bench
#: finetune`` on the test slices of two LGG FLAIR splits (13 slices, 2D) and the 3 test volumes
#: of the left atrium (3D): the geodesic prior (1) helps in both; the scribbles' intensity
#: models help on LGG but make the cut collapse on noisy low-contrast phantoms (off); the
#: other settings moved Dice by less than the spread between cases.
DEFAULTS = {"weight": 5.0, "lam": 1.0, "steps": 10, "rounds": 1, "lr": 1e-3, "band": 0.2,
            "near": 3.0, "margin": 8, "geodesic": 1.0,
            "intensity": 0.0}


def _positive(value, name: str, *, integer: bool = False, zero: bool = True):
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value >= 0 if zero else value > 0)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok:
        kind = "an integer" if integer else "a number"
        raise InvalidArgumentError(f"{name} must be {kind} {'>= 0' if zero else '> 0'}, "
                                   f"got {name}={value!r}")
    return int(value) if integer else float(value)


def _check_tunable(predictor) -> None:
    """Refuse a cascade (two networks, whole images) and a model without weights (ONNX)."""
    where = getattr(predictor, "source", None)
    if not getattr(predictor, "takes_arrays", True):
        raise InvalidArgumentError(
            "fine-tuning trains one network on its pre-processed image; this model is a "
            "cascade (it segments whole images through two networks): fine-tune one of its "
            "stages' own checkpoints", path=where)
    if not any(p.requires_grad for p in predictor.network.parameters()):
        raise InvalidArgumentError(
            "the model has no trainable weights (an exported ONNX model runs fixed weights): "
            "fine-tune the checkpoint it was exported from", path=where)


class FinetuneSession:
    """BIFSeg on one image: CRF on the CNN's probabilities, then fine-tuning on the scribbles.

    Parameters
    ----------
    predictor : ArrayPredictor
        The trained network and its config (a :class:`~segloop.learn.predict.Predictor`
        from :func:`~segloop.learn.predict.load_model` is one); left unchanged.
    image : ndarray, shape (C, *spatial)
        The pre-processed image on the network's grid (``Predictor.prepare``,
        or a :class:`~segloop.learn.data.Volume`'s ``image``).
    label : int
        The class to segment (1-based, ``data.classes`` order).
    slice_axis : int, optional
        For a 2D model on a volume: the axis it slices along (default
        ``data.slice_axis``).
    spacing : sequence of float, optional
        Voxel size (boundary term and geodesic distances; default 1).
    weight, near, band
        Of :func:`~segloop.learn.finetune_weights.pixel_weights`.
    lam : float
        Weight of the CNN's regional term against the boundary term.
    steps : int
        Fine-tuning steps per round (0: the CRF alone).
    rounds : int
        Fine-tuning + CRF rounds per update.
    lr : float
        Adam's learning rate.
    margin : int
        Voxels added around the scribbles (volumes) or the box (context).
    geodesic : float
        Weight (nats per unit) of the geodesic scribble-distance prior added
        to the CRF's regional term (:func:`~segloop.tools.cutgraph.geodesic_prior`,
        as in :class:`~segloop.tools.GraphCutSession`: the boundary is
        expected between the strokes, not hugging the foreground stroke);
        0: the CNN's probabilities alone, as in BIFSeg.
    intensity : float
        Weight of the scribbles' intensity models (smoothed histograms of
        the scribbled voxels of each class, the regional term of segloop's
        graph cut, refitted at each update) added to the CRF's regional
        term; 0 (default): off, as in BIFSeg. It helps where intensity tells
        the object apart (LGG FLAIR: 1-2) and breaks the cut where a thin
        stroke's histogram is unreliable (noisy, low-contrast images).
    tta : bool
        Average flipped passes when predicting (slower).
    seed : int
        Seeds the random windows of large regions.
    outputs : ndarray, optional
        The model's outputs ``(K, *spatial)`` of ``image`` when already
        computed (``predictor.infer(image, tta=tta)``): saves a prediction.
    meta : mapping or ndarray, optional
        A FiLM model's metadata of the image (``{field: value}`` or its
        vector: ``Predictor.meta_vector``, a ``Volume``'s ``meta``), bound
        for every prediction and fine-tuning step (default: the *missing*
        encoding). Plain models ignore it.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        An image the network cannot take, a class the model does not have, a
        bad option, or a model that cannot be fine-tuned: a cascade (two
        networks, whole images only) or an exported ONNX model (fixed weights).
    """

    def __init__(self, predictor: ArrayPredictor, image, *, label: int = 1, slice_axis=None,
                 spacing=None, weight: float = DEFAULTS["weight"], lam: float = DEFAULTS["lam"],
                 steps: int = DEFAULTS["steps"], rounds: int = DEFAULTS["rounds"],
                 lr: float = DEFAULTS["lr"], band: float = DEFAULTS["band"],
                 near: float = DEFAULTS["near"], margin: int = DEFAULTS["margin"],
                 geodesic: float = DEFAULTS["geodesic"],
                 intensity: float = DEFAULTS["intensity"], tta: bool = False, seed: int = 0,
                 outputs=None, meta=None):
        _check_tunable(predictor)
        self.config = predictor.config
        arr = np.asarray(image, dtype=np.float32)
        dims = predictor.dims
        if arr.ndim not in (dims + 1, 4) or (dims == 3 and arr.ndim != 4) or arr.ndim < 3:
            raise InvalidArgumentError(f"image must be (C, *spatial) for a {dims}D model, got "
                                       f"shape {arr.shape}")
        if arr.shape[0] != predictor.in_channels:
            raise InvalidArgumentError(f"image has {arr.shape[0]} channels (axis 0), the model "
                                       f"takes {predictor.in_channels}")
        if not np.all(np.isfinite(arr)):
            raise InvalidArgumentError("image has NaN or infinite values")
        n = self.config.n_classes
        if isinstance(label, bool) or not isinstance(label, int | np.integer) or not (
                1 <= label <= n):
            names = ", ".join(f"{i + 1} {c}" for i, c in enumerate(predictor.classes))
            raise InvalidArgumentError(f"label={label!r}: the model has {n} class"
                                       f"{'es' * (n != 1)} ({names})")
        self.label = int(label)
        self.image, self.shape = arr, arr.shape[1:]
        self.spacing = check_spacing(spacing, len(self.shape))
        self.slice_axis = None
        if dims == 2 and arr.ndim == 4:
            self.slice_axis = (slice_axis_index(self.config.data.slice_axis) if slice_axis is None
                               else int(slice_axis))
        self.weight = _positive(weight, "weight")
        self.lam = _positive(lam, "lam", zero=False)
        self.steps = _positive(steps, "steps", integer=True)
        self.rounds = _positive(rounds, "rounds", integer=True, zero=False)
        self.lr = _positive(lr, "lr", zero=False)
        self.band, self.near = _positive(band, "band"), _positive(near, "near")
        self.margin = _positive(margin, "margin", integer=True)
        self.geodesic = _positive(geodesic, "geodesic")
        self.intensity = _positive(intensity, "intensity")
        self.tta, self.seed, self.meta = bool(tta), int(seed), meta
        self.network = copy.deepcopy(predictor.network)
        self._runner = ArrayPredictor(self.network, self.config, in_channels=predictor.in_channels,
                                      device=predictor.device)
        self.source = getattr(predictor, "source", None)
        self.foreground = np.zeros(self.shape, dtype=bool)
        self.background = np.zeros(self.shape, dtype=bool)
        self.box: tuple[np.ndarray, np.ndarray] | None = None
        probs = (self._runner.infer(arr, tta=self.tta, slice_axis=self.slice_axis, meta=meta)
                 if outputs is None else self._outputs(outputs, predictor))
        self._initial = (probs, self._runner.to_label(probs, slice_axis=self.slice_axis)
                         == self.label)
        self.probability = self._channel(probs)
        self.mask = self._initial[1].copy()
        self._speed = self._cut = self._prior = None  # per region: (key, speed / CRF / costs)
        self.updates, self.seconds, self.losses = 0, [], []

    # ----------------------------------------------------------------------- state
    def _outputs(self, outputs, predictor) -> np.ndarray:
        out = np.array(outputs, dtype=np.float32)  # a copy: the caller's array stays as is
        k = 1 + self.config.n_classes if predictor.activation == "softmax" else (
            self.config.n_classes)
        if out.shape != (k, *self.shape):
            raise InvalidArgumentError(f"outputs must have shape {(k, *self.shape)} (the "
                                       f"model's {k} outputs of the image), got {out.shape}")
        return out

    def _channel(self, probs: np.ndarray) -> np.ndarray:
        k = self.label if self._runner.activation == "softmax" else self.label - 1
        return np.array(probs[k], dtype=np.float32)  # a copy: never the caller's array

    def initial(self) -> tuple[np.ndarray, np.ndarray]:
        """The model's own prediction: its outputs ``(K, *spatial)`` and the class's mask."""
        return self._initial[0].copy(), self._initial[1].copy()

    def _pixels(self, region) -> np.ndarray:
        return np.moveaxis(self.image[(slice(None), *region)], 0, -1)

    # --------------------------------------------------------------------- actions
    def start_box(self, lo, hi) -> np.ndarray:
        """Start from a bounding box (two opposite corners, inclusive, array order).

        The network runs on the box grown by ``margin`` voxels; its
        probability inside the box is the regional term of the cut; the
        outside of the box is background. Later updates work in the box.

        Returns
        -------
        ndarray of bool
            The segmentation (the whole image's shape).
        """
        blo, bhi = check_box([lo, hi], self.shape)
        self.box = (blo, bhi)
        region = self._region()
        prob = self._predict(region)
        self.probability = np.zeros(self.shape, np.float32)  # outside the box: background
        self.probability[region] = prob
        self.mask = np.zeros(self.shape, dtype=bool)
        self.mask[region] = self._crf(region).cut(prob, self.foreground[region],
                                                  self.background[region], connected=True)
        return self.mask.copy()

    def add_scribbles(self, strokes, *, foreground: bool) -> None:
        """Add scribbles of one class: a stroke ``[[y, x], ...]``, a list of strokes, or a mask.

        A pixel scribbled before with the other class changes class. Call
        :meth:`update` to segment again.

        Raises
        ------
        segloop.errors.InvalidArgumentError
            A point outside the image, a malformed stroke, a mask of another
            shape, no point at all, or a foreground scribble outside the box.
        """
        if not isinstance(foreground, bool | np.bool_):
            raise InvalidArgumentError(f"foreground must be true or false, got "
                                       f"foreground={foreground!r}")
        new = seed_mask(self.shape, strokes, name="scribble")
        if not new.any():
            raise InvalidArgumentError(f"scribble has no point, got scribble={shown(strokes)}")
        if foreground and self.box is not None:
            inside = np.zeros(self.shape, bool)
            inside[tuple(slice(a, b) for a, b in zip(*self.box, strict=True))] = True
            if (new & ~inside).any():
                point = np.argwhere(new & ~inside)[0].tolist()
                raise InvalidArgumentError(f"foreground scribble point {point} lies outside "
                                           f"the box {self.box[0].tolist()}..."
                                           f"{(self.box[1] - 1).tolist()}")
        mine, other = ((self.foreground, self.background) if foreground
                       else (self.background, self.foreground))
        mine |= new
        other &= ~new

    def update(self, *, finetune: bool = True) -> np.ndarray:
        """CRF, then ``rounds`` x (fine-tune + CRF) (``finetune=False``: the CRF only).

        Returns
        -------
        ndarray of bool
            The segmentation (the whole image's shape).

        Raises
        ------
        segloop.errors.InvalidArgumentError
            No scribble yet, or (without a box) scribbles of one class only.
        """
        fg, bg = self.foreground.any(), self.background.any()
        if not (fg or bg):
            raise InvalidArgumentError("no scribbles yet: add_scribbles before update")
        if self.box is None and not (fg and bg):
            missing = "background" if fg else "foreground"
            raise InvalidArgumentError(
                f"all scribbles are {'foreground' if fg else 'background'}: the cut needs a "
                f"{missing} scribble too (or a box from start_box)")
        start = time.perf_counter()
        region = self._region()
        crf = self._crf(region)
        f_r, b_r = self.foreground[region], self.background[region]
        prob = self.probability[region]
        prior = self._scribble_costs(region)
        cut = crf.cut(prob, f_r, b_r, prior=prior, connected=True)
        if finetune and self.steps:
            speed = self._speed_of(region)
            for _ in range(self.rounds):
                w = pixel_weights(cut, prob, f_r, b_r, weight=self.weight, near=self.near,
                                  band=self.band, speed=speed, spacing=self.spacing)
                self._train(region, cut, w)
                prob = self._predict(region)
                cut = crf.cut(prob, f_r, b_r, prior=prior, connected=True)
        self.probability[region] = prob
        self.mask[region] = cut
        self.updates += 1
        self.seconds.append(time.perf_counter() - start)
        return self.mask.copy()

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the fine-tuned network as a segloop checkpoint (for ``load_model``).

        Raises
        ------
        segloop.errors.OutputExistsError
            ``path`` exists and ``overwrite`` is false (with it, the old file
            is kept as ``NAME.~N~``).
        """
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise OutputExistsError("exists; pass overwrite=True to replace it (the old "
                                        "file is kept as a numbered version)", path=path)
            keep_version(path)
        encoder = getattr(self.network, "meta_encoder", None)  # FiLM: its encoding too
        return save_checkpoint(path, {
            "config": self.config, "in_channels": self._runner.in_channels,
            "model": self.network.state_dict(),
            **({"preprocess": {"metadata": encoder.spec}} if encoder is not None else {}),
            "finetune": {"source": self.source, "label": self.label, "updates": self.updates,
                         "foreground_voxels": int(self.foreground.sum()),
                         "background_voxels": int(self.background.sum())}})

    # -------------------------------------------------------------------- internals
    def _region(self) -> tuple[slice, ...]:
        """Where the cut and the fine-tuning happen (see the module docstring)."""
        nd = len(self.shape)
        if self.box is not None:  # the box and a voxel around it (fixed background)
            lo, hi = np.maximum(self.box[0] - 1, 0), np.minimum(self.box[1] + 1, self.shape)
        elif nd == 2:
            lo, hi = np.zeros(nd, int), np.asarray(self.shape)
        else:
            pts = np.argwhere(self.foreground | self.background)
            lo = np.maximum(pts.min(axis=0) - self.margin, 0)
            hi = np.minimum(pts.max(axis=0) + 1 + self.margin, self.shape)
            if self.slice_axis is not None:  # a 2D model: whole slices
                keep = np.arange(nd) == self.slice_axis
                lo, hi = np.where(keep, lo, 0), np.where(keep, hi, self.shape)
        return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    def _crf(self, region) -> ProbabilityCut:
        """The CRF of ``region`` (built once per region: its graph is re-solved)."""
        key = tuple((r.start, r.stop) for r in region)
        if self._cut is None or self._cut[0] != key:
            box = None
            if self.box is not None:  # relative to the region: the box grown by a voxel
                start = np.array([r.start for r in region])
                box = (self.box[0] - start, self.box[1] - start)
            self._cut = (key, ProbabilityCut(self._pixels(region), spacing=self.spacing,
                                             lam=self.lam, box=box))
        return self._cut[1]

    def _scribble_costs(self, region) -> np.ndarray | None:
        """The scribbles' own regional costs in ``region`` (:class:`ScribbleCosts`)."""
        key = tuple((r.start, r.stop) for r in region)
        if self._prior is None or self._prior[0] != key:
            self._prior = (key, ScribbleCosts(self._pixels(region), spacing=self.spacing,
                                              geodesic=self.geodesic, intensity=self.intensity))
        return self._prior[1](self.foreground[region], self.background[region])

    def _speed_of(self, region) -> np.ndarray:
        key = tuple((s.start, s.stop) for s in region)
        if self._speed is None or self._speed[0] != key:
            self._speed = (key, geodesic_speed(self._pixels(region), spacing=self.spacing))
        return self._speed[1]

    def _context(self, region):
        """The network's input around ``region`` and where ``region`` lies in it.

        The region grown by ``margin`` and, for a 3D model, to at least its
        window (``inference.roi_size`` or ``data.patch_size``, else 96³), as
        centred as the volume allows: the network then sees what it was
        trained on (instance normalisation makes it sensitive to its field
        of view), whether it predicts or is fine-tuned. A 2D model sees
        whole slices.
        """
        lo = np.array([r.start for r in region])
        hi = np.array([r.stop for r in region])
        shape = np.asarray(self.shape)
        want = hi - lo + 2 * self.margin
        if self._runner.dims == 3:
            roi = self.config.inference.roi_size or self.config.data.patch_size or [96] * 3
            want = np.maximum(want, roi)
        if self.slice_axis is not None:  # slices are independent
            want[self.slice_axis] = hi[self.slice_axis] - lo[self.slice_axis]
        want = np.minimum(want, shape)
        start = np.clip(lo - (want - (hi - lo)) // 2, 0, shape - want)
        outer = tuple(slice(int(a), int(a + n)) for a, n in zip(start, want, strict=True))
        inner = tuple(slice(int(a - s0), int(b - s0)) for a, b, s0 in zip(lo, hi, start,
                                                                        strict=True))
        return outer, inner

    def _predict(self, region) -> np.ndarray:
        """The network's probability of the class in ``region`` (run on it plus a margin)."""
        outer, inner = self._context(region)
        probs = self._runner.infer(self.image[(slice(None), *outer)], tta=self.tta,
                                   slice_axis=self.slice_axis, meta=self.meta)
        prob = self._channel(probs)[inner]
        if self.box is not None:  # outside the box: background
            inside = np.zeros(self.shape, dtype=bool)
            inside[tuple(slice(int(a), int(b)) for a, b in zip(*self.box, strict=True))] = True
            prob = np.where(inside[region], prob, np.float32(0))
        return prob

    def _batch(self, arrays, rng):
        """NumPy ``(B, ...)`` image, target, weights of one step: slices, or a window.

        A 2D model on a volume takes up to ``training.batch_size`` slices
        holding weights; a 3D model a window of its patch size (random when
        the context is larger).
        """
        image, target, weight = arrays
        if self.slice_axis is not None:
            ax = self.slice_axis
            image, target, weight = (np.moveaxis(image, 1 + ax, 0), np.moveaxis(target, ax, 0),
                                     np.moveaxis(weight, ax, 0))
            keep = np.flatnonzero(weight.reshape(len(weight), -1).sum(axis=1) > 0)
            cap = self.config.training.batch_size
            if len(keep) > cap:
                keep = np.sort(rng.choice(keep, cap, replace=False))
            return image[keep], target[keep], weight[keep]
        patch = self.config.inference.roi_size or self.config.data.patch_size
        if self._runner.dims == 3 and patch is not None:
            sp = image.shape[1:]
            size = np.minimum(patch, sp)
            lo = [int(rng.integers(0, n - s + 1)) for n, s in zip(sp, size, strict=True)]
            win = tuple(slice(a, a + s) for a, s in zip(lo, size, strict=True))
            image, target, weight = image[(slice(None), *win)], target[win], weight[win]
        return image[None], target[None], weight[None]

    def _train(self, region, cut: np.ndarray, weights: np.ndarray) -> None:
        """``steps`` Adam steps of the weighted cross-entropy against ``cut`` in ``region``."""
        if not weights.any():
            return
        rng = np.random.default_rng([self.seed, self.updates])
        outer, inner = self._context(region)  # the input; no weight beyond the region
        target = np.zeros([s.stop - s.start for s in outer], np.float32)
        weight = np.zeros_like(target)
        target[inner], weight[inner] = cut, weights
        arrays = [self.image[(slice(None), *outer)], target, weight]
        with self._runner.conditioned(self.meta):  # a FiLM network: this image's metadata
            self.losses.append(weighted_steps(
                self.network, lambda: self._batch(arrays, rng), steps=self.steps, lr=self.lr,
                activation=self._runner.activation, label=self.label,
                multiple=size_multiple(self.config), device=self._runner.device))
