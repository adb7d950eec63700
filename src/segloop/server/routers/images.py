"""``/api/images``: the dataset's images, their metadata, slices as PNG and volumes as bytes.

Every route takes an image id of :class:`~segloop.server.datastore.Datastore`
(unknown ids are 404; an id is never turned into a path).  What a rater has
saved is shown as ``raters`` (rater -> latest version): an annotator sees only
its own entry, reviewers and admins see every rater's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from segloop.errors import SegloopError
from segloop.server import render
from segloop.server.auth import allowed
from segloop.server.deps import Annotator, AppState, State
from segloop.server.errors import ApiError

router = APIRouter(prefix="/api/images", tags=["images"])

_MAX_LIST = 10_000


class ImageSummary(BaseModel):
    """One image of the list."""

    id: str
    subject: str
    contrast: str | None
    shape: list[int]
    spacing: list[float]
    ndim: int
    channels: int
    raters: dict[str, int]
    my_version: int
    error: str | None = Field(None, description="why the image could not be read, if so")


class ImageMeta(BaseModel):
    """An image's geometry, intensities and case metadata."""

    id: str
    subject: str
    contrast: str | None
    shape: list[int]
    spacing: list[float]
    origin: list[float]
    direction: list[list[float]]
    dtype: str
    ndim: int
    channels: int
    intensity: dict[str, float]
    metadata: dict[str, Any]
    raters: dict[str, int]
    my_version: int


def image_info(st: AppState, image_id: str) -> dict[str, Any]:
    """Shape, spacing, dtype... of an image (read once, then cached in the state)."""
    cache = st.extras.setdefault("image_info", {})
    info = cache.get(image_id)
    if info is None:
        image = st.datastore.image(image_id)
        info = {"shape": [int(s) for s in image.shape],
                "spacing": [round(float(s), 6) for s in image.spacing],
                "origin": [round(float(o), 6) + 0.0 for o in image.origin],
                "direction": (np.round(np.asarray(image.direction, float), 9) + 0.0).tolist(),
                "dtype": str(image.array.dtype), "ndim": image.spatial_ndim,
                "channels": image.n_channels}
        cache[image_id] = info
    return info


def image_stats(st: AppState, image_id: str) -> dict[str, float]:
    """Intensity percentiles of the gray image (cached)."""
    cache = st.extras.setdefault("image_stats", {})
    stats = cache.get(image_id)
    if stats is None:
        stats = cache[image_id] = render.intensity_stats(st.datastore.gray(image_id))
    return stats


def visible_raters(user, raters: dict[str, int]) -> dict[str, int]:
    """The raters ``user`` may see: all for reviewers and admins, else only itself."""
    if allowed(user.role, "reviewer"):
        return dict(sorted(raters.items()))
    return {user.name: raters[user.name]} if user.name in raters else {}


def _json_safe(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()
                if not isinstance(v, Path)}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value[:1000]]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _summary(st: AppState, user, image_id: str, status: dict) -> dict[str, Any]:
    case = st.datastore.case(image_id)
    raters = status.get(image_id, {})
    row = {"id": image_id, "subject": case.subject, "contrast": case.contrast,
           "raters": visible_raters(user, raters), "my_version": raters.get(user.name, 0)}
    try:
        info = image_info(st, image_id)
    except SegloopError as err:  # one unreadable file does not hide the others
        return {**row, "shape": [], "spacing": [], "ndim": 0, "channels": 0,
                "error": err.message}
    return {**row, "shape": info["shape"], "spacing": info["spacing"], "ndim": info["ndim"],
            "channels": info["channels"]}


@router.get("", response_model=list[ImageSummary])
def list_images(user: Annotator, st: State,
                limit: Annotated[int, Query(ge=1, le=_MAX_LIST)] = 1000,
                offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> list[dict]:
    """Every image (``offset``, at most ``limit``): geometry, raters' latest versions, mine."""
    status = st.labels.status()
    ids = st.datastore.ids()[offset:offset + limit]
    return [_summary(st, user, i, status) for i in ids]


@router.get("/{image_id}", response_model=ImageMeta)
def image_meta(image_id: str, user: Annotator, st: State) -> dict:
    """Geometry (lists), dtype, intensity percentiles, case metadata, raters."""
    case = st.datastore.case(image_id)
    info = image_info(st, image_id)
    raters = st.labels.raters(image_id)
    return {"id": image_id, "subject": case.subject, "contrast": case.contrast, **info,
            "intensity": image_stats(st, image_id), "metadata": _json_safe(case.metadata),
            "raters": visible_raters(user, raters), "my_version": raters.get(user.name, 0)}


_PNG = {200: {"content": {"image/png": {}}, "description": "the slice as an 8-bit PNG"}}


@router.get("/{image_id}/slice", response_class=Response, responses=_PNG)
def image_slice(image_id: str, user: Annotator, st: State,
                axis: Annotated[int | None, Query(ge=0, le=2, description="0 (z), 1 (y), 2 (x)")]
                = None,
                index: Annotated[int | None, Query(ge=0, description="default: the middle")]
                = None,
                window: Annotated[float | None, Query(gt=0, description="width; default p1..p99")]
                = None,
                level: Annotated[float | None, Query(description="centre of the window")] = None,
                size: Annotated[int | None, Query(ge=8, le=4096,
                                                  description="longest side, pixels")] = None):
    """One slice as an 8-bit PNG, window/level applied (RGB for colour images)."""
    image = st.datastore.image(image_id)
    lo, hi = render.window_bounds(image_stats(st, image_id), window, level)
    if image.channels and image.n_channels >= 3:
        plane = render.take_slice(image.array[..., :3], image.spatial_ndim, axis, index)
    else:
        plane = render.take_slice(st.datastore.gray(image_id), image.spatial_ndim, axis, index)
    png = render.png_bytes(render.to_uint8(plane, lo, hi), size=size)
    return Response(png, media_type="image/png", headers={
        "X-Slice-Shape": json.dumps(list(plane.shape[:2])), "X-Window": json.dumps([lo, hi]),
        "Cache-Control": "private, max-age=300"})


_RAW = {200: {"content": {"application/octet-stream": {}},
              "description": "raw little-endian C-order array; X-Shape, X-Dtype, X-Spacing"}}


@router.get("/{image_id}/volume", response_class=Response, responses=_RAW)
def image_volume(image_id: str, request: Request, user: Annotator, st: State,
                 dtype: Literal["uint8", "int16", "float32"] = "uint8",
                 window: Annotated[float | None, Query(gt=0)] = None,
                 level: Annotated[float | None, Query()] = None):
    """The whole gray image as raw bytes: uint8 (window, default p1..p99) or original values.

    Gzip-compressed (``Content-Encoding: gzip``) when the client accepts it.
    """
    info = image_info(st, image_id)
    voxels = math.prod(info["shape"])
    if voxels > st.settings.max_voxels:
        raise ApiError(413, f"image {image_id} has {voxels} voxels, more than the "
                       f"{st.settings.max_voxels} served at once; ask for slices")
    lo, hi = render.window_bounds(image_stats(st, image_id), window, level)
    raw = render.volume_bytes(st.datastore.gray(image_id), dtype, lo, hi)
    headers = {"X-Shape": json.dumps(info["shape"]), "X-Dtype": dtype,
               "X-Spacing": json.dumps(info["spacing"]), "X-Window": json.dumps([lo, hi]),
               "Access-Control-Expose-Headers": "X-Shape, X-Dtype, X-Spacing, X-Window"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        raw = render.gzip_bytes(raw)
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    return Response(raw, media_type="application/octet-stream", headers=headers)
