"""``/api/models`` and ``/api/active``: pre-annotation, uncertainty, fine-tuning, next image.

Every route needing the model answers 409 ``no model loaded; start the server
with --model CKPT`` when the server runs without one (the model lives in
:class:`segloop.server.models.ModelHub`; torch is loaded on first use).
Predicted labels hold class indices (0 background, ``i`` the ``i``-th name of
``classes``), as ``segloop predict`` writes them.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from segloop.server.db import Job
from segloop.server.deps import Admin, Annotator, State, own_rater
from segloop.server.errors import ApiError
from segloop.server.masks import MaskPayload, encode_mask
from segloop.server.models import NO_MODEL, STRATEGIES, hub_of, random_order

router = APIRouter(tags=["models"])


def setup(state) -> None:
    """At start-up: the app's model hub (the checkpoint is read on first use)."""
    hub_of(state)


ImageId = Annotated[str, Field(min_length=1, max_length=255, description="an image id")]
Index = Annotated[int, Field(ge=0, le=100_000)]
Point = Annotated[list[Index], Field(min_length=2, max_length=3,
                                     description="[y, x] (a slice or 2D image) or [z, y, x]")]
Stroke = Annotated[list[Point], Field(max_length=4096,
                                      description="points joined by straight segments")]
Strategy = Literal["random", "entropy", "mc_dropout", "tta", "coreset"]
_UNCERTAINTY_SCALE = {"entropy": 1.0, "variance": 0.25}


# ----------------------------------------------------------------------------- schemas
class ModelInfo(BaseModel):
    """The served model (``loaded`` false: none)."""

    loaded: bool
    model: str | None = Field(description="the checkpoint's file name")
    dims: int | None
    classes: list[str] = Field(description="names of the classes 1..n")
    activation: str | None
    strategies: list[str] = Field(description="active-learning strategies this model supports")


class PreannotateRequest(BaseModel):
    """An image to pre-annotate; ``save``: also save it as a new version of your label."""

    image_id: ImageId
    save: bool = False


class PreannotateResponse(BaseModel):
    """The model's label of the image (class indices) and the version saved, if any."""

    image_id: str
    mask: MaskPayload
    classes: list[str]
    seconds: float = Field(description="prediction time (0 when cached)")
    cached: bool
    version: dict | None = Field(description="the version saved (action 'preannotate')")


class UncertaintyRequest(BaseModel):
    """An image and how to measure the model's uncertainty about it."""

    image_id: ImageId
    method: Literal["entropy", "mc_dropout", "tta"] = "entropy"
    map: Literal["entropy", "variance"] = "entropy"


class UncertaintyResponse(BaseModel):
    """The strategy's image score and a voxel map scaled to 0..255."""

    image_id: str
    method: str
    score: float = Field(description="the image score of the strategy named by method")
    map: MaskPayload
    map_kind: str
    max_value: float = Field(description="the map value shown as 255 (entropy: 1, normalised "
                             "by log K; variance: 0.25, the largest of values in [0, 1])")
    scale: str
    seconds: float


class NextImage(BaseModel):
    """The image to label next (``image_id`` null: you labelled them all)."""

    image_id: str | None
    rank: int | None
    score: float | None
    strategy: str
    model: str | None
    order: str = Field(description="how the order was made")
    remaining: int = Field(description="images you have not labelled yet")
    total: int


class RankedImage(BaseModel):
    """One image's place in the ranking."""

    image_id: str
    rank: int
    score: float
    labelled: bool = Field(description="you have a label of it")


class RankingResponse(BaseModel):
    """Every image by rank (1: label first); ``skipped``: images the model cannot take."""

    strategy: str
    model: str | None
    order: str
    seconds: float
    items: list[RankedImage]
    skipped: dict[str, str]


class SliceRef(BaseModel):
    """A slice of a volume: the axis (0 z, 1 y, 2 x) and the index along it."""

    axis: int = Field(ge=0, le=2)
    index: Index


class SessionRequest(BaseModel):
    """Start scribble fine-tuning on an image, or one slice of a volume."""

    image_id: ImageId
    slice: SliceRef | None = None
    label: int = Field(1, ge=1, le=255, description="the class to segment (1-based)")


class SessionResponse(BaseModel):
    """A new session: its id, the view's shape and the model's own mask of the class."""

    session_id: str
    shape: list[int]
    label: int
    mask: MaskPayload
    seconds: float
    expires_after: float = Field(description="seconds without use after which it ends")


class ScribbleRequest(BaseModel):
    """One stroke of each kind (either may be empty); points are indices of the view."""

    foreground: Stroke = Field(default_factory=list)
    background: Stroke = Field(default_factory=list)
    finetune: bool = Field(True, description="false: the CRF only (no network update)")


class ScribbleResponse(BaseModel):
    """The segmentation of the class after this update (0/1 on the view)."""

    mask: MaskPayload
    seconds: float
    updates: int


class LoadRequest(BaseModel):
    """A finished training job whose best checkpoint becomes the served model."""

    job_id: str = Field(min_length=1, max_length=36)


# ----------------------------------------------------------------------------- the model
@router.get("/api/models", response_model=ModelInfo)
def model_info(user: Annotator, st: State) -> dict:
    """The model served (none: ``loaded`` false)."""
    return hub_of(st).info()


@router.post("/api/models/load", response_model=ModelInfo)
def load(body: LoadRequest, admin: Admin, st: State) -> dict:
    """Serve the best checkpoint of a finished training job (caches start afresh)."""
    with st.sessions() as db:
        job = db.get(Job, body.job_id)
    if job is None or job.kind != "train":
        raise ApiError(404, f"no training job {body.job_id!r}")
    checkpoint = json.loads(job.result or "{}").get("checkpoint")
    if job.status != "done" or not checkpoint:
        raise ApiError(409, f"training job {job.id} is {job.status}, without a checkpoint")
    path = (st.settings.workspace / checkpoint).resolve()
    if not path.is_relative_to(st.settings.workspace.resolve()) or not path.is_file():
        raise ApiError(404, f"the checkpoint of job {job.id} is missing")
    hub_of(st).use(path)
    return hub_of(st).info()


@router.post("/api/models/preannotate", response_model=PreannotateResponse)
def preannotate(body: PreannotateRequest, user: Annotator, st: State) -> dict:
    """The model's label of an image; ``save``: a new version of the caller's own label."""
    st.datastore.case(body.image_id)
    label, classes, seconds, cached = hub_of(st).predict(body.image_id)
    version = None
    if body.save:
        own_rater(user, user.name, write=True)
        latest = st.labels.latest(body.image_id, user.name)
        row = st.labels.save(body.image_id, user.name, label,
                             base_version=latest.version if latest else 0, author=user.name,
                             action="preannotate", tools=["model"],
                             comment=f"model {hub_of(st).path.name}")
        version = row.to_dict()
    return {"image_id": body.image_id, "mask": encode_mask(label), "classes": classes,
            "seconds": seconds, "cached": cached, "version": version}


@router.post("/api/models/uncertainty", response_model=UncertaintyResponse)
def uncertainty(body: UncertaintyRequest, user: Annotator, st: State) -> dict:
    """The image's score under a strategy and its entropy or variance map (0..255)."""
    import time

    st.datastore.case(body.image_id)
    hub = hub_of(st)
    start = time.perf_counter()
    maps = hub.uncertainty(body.image_id, body.method)
    score = hub.score(body.method, body.image_id)
    top = _UNCERTAINTY_SCALE[body.map]
    scaled = np.rint(np.clip(maps[body.map] / top, 0.0, 1.0) * 255).astype(np.uint8)
    return {"image_id": body.image_id, "method": body.method, "score": score,
            "map": encode_mask(scaled), "map_kind": body.map, "max_value": top,
            "scale": f"value = round(255 * min({body.map} / {top:g}, 1))",
            "seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------- active learning
def _ranked(st, user, strategy: str | None) -> tuple[str, list[tuple[str, float]], dict, str,
                                                       float]:
    """``(strategy, [(id, score)] best first, skipped, how, seconds)`` for ``user``."""
    hub = hub_of(st)
    if strategy is None:
        strategy = "entropy" if hub.path is not None else "random"
    if strategy == "random":
        how = f"random permutation seeded by the user name ({user.name})"
        return strategy, random_order(st.datastore.ids(), user.name), {}, how, 0.0
    if hub.path is None:
        raise ApiError(409, f"{NO_MODEL} (without a model only strategy=random works)")
    ranking = hub.ranking(strategy)
    how = f"{strategy} scores of {hub.path.name}, computed once per model"
    return strategy, ranking.items, ranking.skipped, how, ranking.seconds


_STRATEGY_QUERY = Query(None, description="default: entropy with a model, random without "
                        f"({', '.join(STRATEGIES)})")


@router.get("/api/active/next", response_model=NextImage, tags=["active learning"])
def next_image(user: Annotator, st: State, strategy: Strategy | None = _STRATEGY_QUERY) -> dict:
    """The highest-ranked image the caller has not labelled yet (any saved version counts)."""
    strategy, items, _, how, _ = _ranked(st, user, strategy)
    status = st.labels.status()
    todo = [(rank, image_id, score) for rank, (image_id, score) in enumerate(items, start=1)
            if user.name not in status.get(image_id, {})]
    rank, image_id, score = todo[0] if todo else (None, None, None)
    hub = hub_of(st)
    return {"image_id": image_id, "rank": rank, "score": score, "strategy": strategy,
            "model": hub.path.name if hub.path else None, "order": how,
            "remaining": len(todo), "total": len(items)}


@router.get("/api/active/ranking", response_model=RankingResponse, tags=["active learning"])
def ranking(user: Annotator, st: State, strategy: Strategy | None = _STRATEGY_QUERY) -> dict:
    """Every image with its rank and score (for the images list)."""
    strategy, items, skipped, how, seconds = _ranked(st, user, strategy)
    status = st.labels.status()
    hub = hub_of(st)
    return {"strategy": strategy, "model": hub.path.name if hub.path else None, "order": how,
            "seconds": seconds, "skipped": skipped,
            "items": [{"image_id": image_id, "rank": rank, "score": score,
                       "labelled": user.name in status.get(image_id, {})}
                      for rank, (image_id, score) in enumerate(items, start=1)]}


# ----------------------------------------------------------------------------- fine-tuning
@router.post("/api/models/finetune/sessions", response_model=SessionResponse, status_code=201)
def start_session(body: SessionRequest, user: Annotator, st: State) -> dict:
    """Start scribble fine-tuning (BIFSeg) on a copy of the model; the shared one never changes."""
    st.datastore.case(body.image_id)
    hub = hub_of(st)
    where = None if body.slice is None else (body.slice.axis, body.slice.index)
    entry, mask, seconds = hub.sessions.start(user.name, body.image_id, where, body.label)
    return {"session_id": entry.id, "shape": list(entry.view.shape), "label": entry.label,
            "mask": encode_mask(mask), "seconds": seconds,
            "expires_after": hub.sessions.seconds}


@router.post("/api/models/finetune/sessions/{sid}/scribbles", response_model=ScribbleResponse)
def scribbles(sid: str, body: ScribbleRequest, user: Annotator, st: State) -> dict:
    """Add a foreground and / or background stroke, fine-tune and segment again."""
    if not body.foreground and not body.background:
        raise ApiError(422, "give a foreground or a background stroke (both are empty)")
    mask, seconds, updates = hub_of(st).sessions.scribble(
        user.name, sid, body.foreground, body.background, finetune=body.finetune)
    return {"mask": encode_mask(mask), "seconds": seconds, "updates": updates}


@router.delete("/api/models/finetune/sessions/{sid}")
def end_session(sid: str, user: Annotator, st: State) -> dict:
    """End a session (its network copy is dropped)."""
    hub_of(st).sessions.end(user.name, sid)
    return {"ended": sid}
