"""The model the server serves: loaded once, its outputs and rankings cached.

:class:`ModelHub` holds the checkpoint of ``segloop serve --model CKPT``
(:func:`segloop.learn.predict.load_model`), loaded on first use and again
whenever the file changes (its path, size and modification time are the
*model key*); every cache is keyed by it, so a new model never answers with
an old model's output.  It caches the label predicted for each image (a
few), the per-image score of each selection strategy and the ranking of the
whole dataset per strategy (:func:`segloop.learn.strategies.rank`).  The
shared network runs one request at a time (:attr:`ModelHub.lock`): MC
dropout switches its dropout layers on, so two requests must not overlap.
A FiLM model sees each image's metadata as in training (its case's
``model.film.table`` row, sidecar and ``participants.tsv`` values, contrast:
:meth:`segloop.learn.predict.Predictor.case_meta`) in predictions,
uncertainty maps, scores and fine-tuning sessions. An exported model
(``.onnx``) serves predictions, ``entropy`` and ``tta`` rankings and maps,
but not ``mc_dropout``, ``coreset`` nor fine-tuning (no dropout layers, no
bottleneck to read, fixed weights); a cascade's
checkpoint serves predictions and ranks by ``random`` only (no scores,
uncertainty maps or fine-tuning: its networks work on different crops of
the image). The errors say so.

The ranking of ``entropy``, ``mc_dropout`` and ``tta`` scores each image
alone (these strategies score images independently; ties keep the dataset's
order, as :func:`~segloop.learn.strategies.rank` does); ``coreset`` ranks the
whole dataset at once, with nothing counted as labelled (farthest-first
order of the images' features).  Images the model cannot take (a 2D image
for a 3D model...) are left out of a ranking and listed with the reason.

Without a model, :func:`random_order` orders the images by the library's
``random`` strategy (a ``numpy.random.default_rng(seed)`` permutation, score
``1 - position / n``) seeded by the user's name, so raters start on
different images.

torch and :mod:`segloop.learn` are imported inside the methods only: the
server starts, and serves everything else, without paying for torch.

:class:`~segloop.server.finetune_sessions.FinetuneSessions` (scribble fine-tuning)
hangs on the hub as :attr:`ModelHub.sessions`.

Examples
--------
>>> [image_id for image_id, _ in random_order(["a", "b", "c", "d"], "ann")]
['c', 'd', 'a', 'b']
>>> user_seed("ann") == user_seed("ann") != user_seed("bob")
True
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segloop.errors import SegloopError
from segloop.server.datastore import Datastore
from segloop.server.errors import ApiError
from segloop.server.finetune_sessions import FinetuneSessions

__all__ = ["NO_MODEL", "STRATEGIES", "ModelHub", "Ranking", "hub_of",
           "random_order", "user_seed"]

#: Why a model route cannot answer (status 409: the server's state, not the request).
NO_MODEL = "no model loaded; start the server with --model CKPT"
#: The active-learning strategies (the names of :data:`segloop.learn.strategies.STRATEGIES`).
STRATEGIES = ("random", "entropy", "mc_dropout", "tta", "coreset")
#: Strategies that score each image alone (a ranking of them is a sort by score).
_PER_IMAGE = ("entropy", "mc_dropout", "tta")
_HUB_LOCK = threading.Lock()


def user_seed(name: str) -> int:
    """A stable 32-bit seed from a user name (the same on every run and machine)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")


def random_order(ids: list[str], user: str) -> list[tuple[str, float]]:
    """``ids`` in the ``random`` strategy's order seeded by ``user``, with its scores."""
    n = len(ids)
    order = np.random.default_rng(user_seed(user)).permutation(n)
    return [(ids[i], 1.0 - pos / n) for pos, i in enumerate(order)]


@dataclass
class Ranking:
    """A dataset ranked by a strategy: ``items`` best first, and the images left out."""

    strategy: str
    items: list[tuple[str, float]]
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class ModelHub:
    """The served model and its caches (see the module docstring).

    Parameters
    ----------
    datastore : Datastore
        The images.
    path : pathlib.Path or None
        The checkpoint (None: no model; the model routes answer 409).
    cache_size : int
        Predicted labels kept in memory.
    """

    def __init__(self, datastore: Datastore, path: Path | None, *, cache_size: int = 8):
        self.datastore = datastore
        self.path = Path(path) if path is not None else None
        self.cache_size = cache_size
        self.lock = threading.RLock()  # the shared network: one request at a time
        self._loaded: tuple[tuple, Any] | None = None
        self._labels: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._scores: dict[tuple, float] = {}
        self._rankings: dict[tuple, Ranking] = {}
        self._ranking_locks: dict[tuple, threading.Lock] = {}
        self.sessions: FinetuneSessions | None = None

    # ------------------------------------------------------------------ the model
    def _file_key(self, path: Path) -> tuple:
        try:
            stat = path.stat()
        except OSError:
            raise ApiError(409, f"the model file {path.name} is no longer readable") from None
        return (str(path), stat.st_mtime_ns, stat.st_size)

    def predictor(self) -> tuple[tuple, Any]:
        """``(model key, Predictor)``; loads the file on first use and when it changed; 409."""
        if self.path is None:
            raise ApiError(409, NO_MODEL)
        with self.lock:
            key = self._file_key(self.path)
            if self._loaded is None or self._loaded[0] != key:
                from segloop.learn.predict import load_model

                self._loaded = (key, load_model(self.path))
                self._forget()
            return self._loaded

    def use(self, path: Path) -> None:
        """Serve the checkpoint ``path`` from now on (loaded first: a bad file changes nothing)."""
        from segloop.learn.predict import load_model

        predictor = load_model(path)
        with self.lock:
            self.path = Path(path)
            self._loaded = (self._file_key(self.path), predictor)
            self._forget()

    def _forget(self) -> None:
        self._labels.clear()
        self._scores.clear()
        self._rankings.clear()

    def info(self) -> dict[str, Any]:
        """What the model is: file name, dims, classes, and the strategies it supports."""
        if self.path is None:
            return {"loaded": False, "model": None, "dims": None, "classes": [],
                    "activation": None, "strategies": ["random"]}
        from segloop.learn.strategies import check_strategy

        _, predictor = self.predictor()
        usable = []
        for name in STRATEGIES:
            try:
                check_strategy(name, predictor)
                usable.append(name)
            except SegloopError:
                pass
        return {"loaded": True, "model": self.path.name, "dims": predictor.dims,
                "classes": list(predictor.classes), "activation": predictor.activation,
                "strategies": usable}

    # ------------------------------------------------------------------ outputs
    def predict(self, image_id: str) -> tuple[np.ndarray, list[str], float, bool]:
        """``(label, classes, seconds, cached)``: the model's class indices for ``image_id``."""
        key, predictor = self.predictor()
        image = self.datastore.image(image_id)
        with self.lock:
            cached = self._labels.get((key, image_id))
            if cached is not None:
                self._labels.move_to_end((key, image_id))
                return cached, list(predictor.classes), 0.0, True
            start = time.perf_counter()
            pred = predictor.predict(image, meta=self.meta_values(predictor, image_id))
            label = np.asarray(pred.label.array, dtype=np.uint8)
            seconds = time.perf_counter() - start
            self._labels[(key, image_id)] = label
            while len(self._labels) > self.cache_size:
                self._labels.popitem(last=False)
        return label, list(predictor.classes), seconds, False

    def uncertainty(self, image_id: str, method: str) -> dict[str, np.ndarray]:
        """The ``entropy`` and ``variance`` maps of ``image_id`` on its grid, by ``method``.

        ``entropy``: one deterministic pass (its variance is 0); ``mc_dropout``:
        :data:`~segloop.learn.strategies.MC_SAMPLES` passes with dropout on;
        ``tta``: the flipped passes (:meth:`segloop.learn.predict.Predictor.uncertainty`).
        """
        from segloop.learn.strategies import MC_SAMPLES, check_strategy
        from segloop.learn.uncertainty import uncertainty_maps

        _, predictor = self.predictor()
        check_strategy(method, predictor)
        image, meta = self.datastore.image(image_id), self.meta_values(predictor, image_id)
        with self.lock:
            if method == "entropy":
                probs = predictor.predict(image, tta=False, soft=True,
                                          meta=meta).probabilities.array
                return uncertainty_maps(np.moveaxis(probs, -1, 0)[None],
                                        activation=predictor.activation)
            result = predictor.uncertainty(image, mc=MC_SAMPLES if method == "mc_dropout" else 0,
                                           tta=method == "tta", seed=0, meta=meta)
        return {name: np.asarray(m.array, dtype=np.float32) for name, m in result.maps.items()}

    def _volume(self, predictor, image_id: str):
        """``image_id`` pre-processed as the network sees it (a strategy's pool item)."""
        from segloop.learn.data import Volume

        image = self.datastore.image(image_id)
        array, info = predictor.prepare(image)
        return Volume(image_id, "", array, None, tuple(float(s) for s in info["grid"]["spacing"]),
                      image_id, info.get("slice_axis"), info,
                      meta=predictor.meta_vector(image, self.meta_values(predictor, image_id)))

    def meta_values(self, predictor, image_id: str) -> dict | None:
        """A FiLM model's metadata values of ``image_id``'s case, as in training (else None)."""
        return predictor.case_meta(self.datastore.case(image_id))

    def score(self, strategy: str, image_id: str) -> float:
        """The image's score under ``entropy``, ``mc_dropout`` or ``tta`` (cached per model)."""
        from segloop.learn.strategies import rank

        key, predictor = self.predictor()
        cached = self._scores.get((key, strategy, image_id))
        if cached is not None:
            return cached
        volume = self._volume(predictor, image_id)
        with self.lock:
            [(_, value)] = rank(strategy, [volume], predictor, seed=0)
        self._scores[(key, strategy, image_id)] = float(value)
        return float(value)

    def ranking(self, strategy: str) -> Ranking:
        """Every image the model takes, most worth labelling first (computed once per model)."""
        from segloop.learn.strategies import check_strategy, rank

        key, predictor = self.predictor()
        check_strategy(strategy, predictor)
        with self.lock:
            lock = self._ranking_locks.setdefault((key, strategy), threading.Lock())
        with lock:  # one computation per (model, strategy); others wait for it
            if (key, strategy) in self._rankings:
                return self._rankings[(key, strategy)]
            start = time.perf_counter()
            ids, skipped = self.datastore.ids(), {}
            if strategy in _PER_IMAGE:
                scores = {}
                for image_id in ids:
                    try:
                        scores[image_id] = self.score(strategy, image_id)
                    except SegloopError as exc:
                        skipped[image_id] = exc.message
                position = {image_id: i for i, image_id in enumerate(ids)}
                items = sorted(scores.items(), key=lambda kv: (-kv[1], position[kv[0]]))
            else:
                pool = []
                for image_id in ids:
                    try:
                        pool.append(self._volume(predictor, image_id))
                    except SegloopError as exc:
                        skipped[image_id] = exc.message
                with self.lock:
                    items = rank(strategy, pool, predictor, seed=0) if pool else []
            ranking = Ranking(strategy, [(i, float(s)) for i, s in items], skipped,
                              time.perf_counter() - start)
            self._rankings[(key, strategy)] = ranking
            return ranking


def hub_of(state) -> ModelHub:
    """The :class:`ModelHub` of an app state (made on first use from ``settings.model``).

    Its :attr:`~ModelHub.sessions` are the app's fine-tuning sessions.
    """
    hub = state.extras.get("models")
    if hub is None:
        with _HUB_LOCK:
            hub = state.extras.get("models")
            if hub is None:
                hub = ModelHub(state.datastore, state.settings.model)
                hub.sessions = FinetuneSessions(hub, seconds=state.settings.session_seconds)
                state.extras["models"] = hub
    return hub
