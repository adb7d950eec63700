"""``/api/tools``: every tool of :mod:`segloop.tools` on an image, a slice, and livewire sessions.

``POST /api/tools/{tool}/apply`` runs one tool through
:func:`segloop.tools.apply.apply_tool` (the same call as ``segloop
segment``) on the whole image or on one slice of a volume, and answers with
the resulting label map (of the slice, when one was given) as a
:class:`~segloop.server.masks.MaskPayload`.  Points in the parameters are
array indices of the image (or of the slice): they are checked here (length,
finite, inside) so that a bad one is a 422 naming it; the tool checks the
rest (a 400 naming the parameter).  Routes are plain ``def``: FastAPI runs
them in its thread pool, so clients are served in parallel.

Livewire is stateful: a session (:class:`~segloop.tools.LivewireSession`)
is opened on a slice, then anchors are added (each answers with the
committed segment), the cursor's path is previewed, and closing answers with
the filled contour.  Sessions belong to their user, expire when idle
(:class:`~segloop.server.tool_sessions.ToolSessions`).
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from segloop.io import Image
from segloop.server.deps import Annotator, AppState, State
from segloop.server.errors import ApiError
from segloop.server.masks import MaskPayload, decode_mask, encode_mask
from segloop.server.tool_params import check_finite, check_params, check_points, is_number
from segloop.server.tool_sessions import ToolSessions
from segloop.tools import TOOL_NAMES, get_tool
from segloop.tools.apply import apply_tool, slice_plane
from segloop.tools.livewire import LivewireSession

router = APIRouter(prefix="/api/tools", tags=["tools"])

#: Livewire session options (the rest of the tool's parameters are per request).
LIVEWIRE_OPTIONS = ("intensity_window", "sigma", "snap_radius")


class SliceRef(BaseModel):
    """A slice of a volume: ``index`` across ``axis`` (0 z, 1 y, 2 x)."""

    axis: int = Field(ge=0, le=2)
    index: int = Field(ge=0, le=2**31)


class LabelInput(BaseModel):
    """The label map a tool starts from (``islands``, ``smooth``, ``interpolate`` need one).

    ``mine``: the caller's latest saved label (zeros before the first save);
    ``payload``: the mask given, of the image's shape or of the slice's.
    """

    source: Literal["none", "mine", "payload"] = "none"
    payload: MaskPayload | None = None


class ApplyRequest(BaseModel):
    """One tool call."""

    image_id: str = Field(min_length=1, max_length=255)
    slice: SliceRef | None = Field(None, description="a slice of a volume; null: the whole image")
    params: dict[str, Any] = Field(default_factory=dict, max_length=32,
                                   description="the tool's parameters (GET /api/tools)")
    label: LabelInput = Field(default_factory=LabelInput)


class ApplyResponse(BaseModel):
    """The tool's label map (of the slice when one was given)."""

    mask: MaskPayload
    voxels: int = Field(description="non-zero voxels of the mask")
    ms: float = Field(description="time spent in the tool, milliseconds")
    slice: SliceRef | None


class SessionRequest(BaseModel):
    """A livewire session to open on an image (2D) or a slice of a volume."""

    image_id: str = Field(min_length=1, max_length=255)
    slice: SliceRef | None = None
    params: dict[str, Any] = Field(default_factory=dict, max_length=8,
                                   description="intensity_window, sigma, snap_radius")


class AnchorRequest(BaseModel):
    """An anchor ``[y, x]`` in the slice."""

    point: list[float] = Field(min_length=2, max_length=2)


# ----------------------------------------------------------------------------- checks
def _spec(tool: str):
    if tool not in TOOL_NAMES:
        raise ApiError(404, f"no tool {tool[:64]!r}; tools: {', '.join(TOOL_NAMES)}")
    return get_tool(tool)


def _where(image: Image, ref: SliceRef | None) -> tuple[int, int] | None:
    """The slice to run on (None: the whole image); 422 for a slice outside the image."""
    if ref is None:
        return None
    if image.spatial_ndim == 2:
        if (ref.axis, ref.index) != (0, 0):
            raise ApiError(422, f"slice {{axis: {ref.axis}, index: {ref.index}}}: a 2D image "
                           "has one slice (give null, or axis 0 and index 0)")
        return None
    if ref.index >= image.shape[ref.axis]:
        raise ApiError(422, f"slice index {ref.index} on axis {ref.axis} is outside "
                       f"0..{image.shape[ref.axis] - 1}")
    return ref.axis, ref.index


def _start_label(st: AppState, user, body: ApplyRequest, image: Image,
                 where: tuple[int, int] | None) -> np.ndarray | None:
    source = body.label.source
    if source == "none":
        return None
    if source == "mine":
        try:
            return st.labels.read(body.image_id, user.name).array
        except ApiError as err:
            if err.status != 404:
                raise
            return np.zeros(image.shape, np.uint8)
    if body.label.payload is None:
        raise ApiError(422, "label.source is 'payload' but label.payload is missing")
    mask = decode_mask(body.label.payload, max_voxels=st.settings.max_voxels)
    if mask.shape == image.shape:
        return mask
    if where is not None:
        plane_shape = tuple(n for i, n in enumerate(image.shape) if i != where[0])
        if mask.shape == plane_shape:
            full = np.zeros(image.shape, mask.dtype)
            np.moveaxis(full, where[0], 0)[where[1]] = mask
            return full
    raise ApiError(422, f"label.payload shape {list(mask.shape)} is neither the image's "
                   f"{list(image.shape)} nor its slice's")


# ----------------------------------------------------------------------------- routes
@router.get("")
def tools(user: Annotator) -> list[dict]:
    """Every tool: name, summary, parameters (help), required ones, dimensions, label needed."""
    out = []
    for name in TOOL_NAMES:
        spec = get_tool(name)
        out.append({"name": name, "summary": spec.summary, "params": dict(spec.params),
                    "required": list(spec.required), "ndims": list(spec.ndims),
                    "needs_label": spec.needs_label})
    return out


@router.post("/{tool}/apply", response_model=ApplyResponse)
def apply(tool: str, body: ApplyRequest, user: Annotator, st: State) -> dict:
    """Run ``tool`` on the image or on one slice; the label map (of the slice if given)."""
    spec = _spec(tool)
    image = st.datastore.image(body.image_id)
    where = _where(image, body.slice)
    if where is None and math.prod(image.shape) > st.settings.max_voxels:
        raise ApiError(413, f"image {body.image_id} has {math.prod(image.shape)} voxels, more "
                       f"than {st.settings.max_voxels}; run the tool on a slice")
    shape = image.shape if where is None else \
        tuple(n for i, n in enumerate(image.shape) if i != where[0])
    check_params(body.params, shape)
    label = _start_label(st, user, body, image, where)
    t0 = time.perf_counter()
    result = apply_tool(spec, image, label, body.params, slice=where)
    ms = 1000 * (time.perf_counter() - t0)
    out = result if where is None else np.take(result, where[1], axis=where[0])
    if out.size and (int(out.min()) < 0 or int(out.max()) > 65535):
        raise ApiError(422, "the result holds label values outside 0..65535")
    return {"mask": encode_mask(out), "voxels": int(np.count_nonzero(out)), "ms": round(ms, 2),
            "slice": body.slice if where is not None else None}


# ----------------------------------------------------------------------------- livewire
def setup(st: AppState) -> None:
    """Create the registry of tool sessions (called once by ``create_app``)."""
    _registry(st)


def _registry(st: AppState) -> ToolSessions:
    reg = st.extras.get("tool_sessions")
    if reg is None:
        reg = st.extras.setdefault("tool_sessions", ToolSessions(
            ttl=st.settings.session_seconds,
            per_user=int(st.settings.extra.get("sessions_per_user", 8)),
            max_weight=int(st.settings.extra.get("sessions_max_pixels", 8 * 512 * 512))))
    return reg


def _path(points: np.ndarray) -> list[list[int]]:
    return np.asarray(points).astype(int).tolist()


@router.post("/livewire/sessions")
def open_session(body: SessionRequest, user: Annotator, st: State) -> dict:
    """Open a livewire session on an image or slice; its id and idle lifetime."""
    unknown = sorted(set(body.params) - set(LIVEWIRE_OPTIONS))
    if unknown:
        raise ApiError(422, f"params {unknown}: a livewire session takes "
                       f"{', '.join(LIVEWIRE_OPTIONS)}")
    for key, value in body.params.items():
        check_finite(key, value)
    image = st.datastore.image(body.image_id)
    where = _where(image, body.slice)
    if where is None and image.spatial_ndim == 3:
        raise ApiError(422, "livewire works on a slice of a volume: give slice {axis, index}")
    plane, spacing = (image.array, image.spacing) if where is None else \
        slice_plane(image, *where)
    snap, sigma = body.params.get("snap_radius", 0.0), body.params.get("sigma", 1.0)
    window = body.params.get("intensity_window")
    if not is_number(snap) or not 0 <= snap <= 1000:
        raise ApiError(422, f"params.snap_radius: a radius in mm in [0, 1000], got {snap!r}")
    if not is_number(sigma) or not 0 < sigma <= 50:
        raise ApiError(422, f"params.sigma: a scale in pixels in (0, 50], got {sigma!r}")
    if window is not None and not (isinstance(window, list) and len(window) == 2
                                   and all(is_number(v) for v in window)):
        raise ApiError(422, f"params.intensity_window: [lo, hi], got {window!r}")
    pixels = math.prod(plane.shape[:2])
    reg = _registry(st)
    if pixels > reg.max_weight:  # before the costly set-up
        raise ApiError(413, f"a slice of {pixels} pixels is too large for a livewire session "
                       f"(limit {reg.max_weight})")
    session = LivewireSession(plane, spacing=spacing, channel_axis=-1 if image.channels else None,
                              intensity_window=window, sigma=sigma)
    sid = reg.open(user.name, session, {"image_id": body.image_id, "slice": where,
                                        "snap_radius": float(snap)}, weight=pixels)
    return {"session_id": sid, "expires_in_s": reg.ttl, "shape": list(session.shape)}


@router.post("/livewire/sessions/{sid}/anchors")
def add_anchor(sid: str, body: AnchorRequest, user: Annotator, st: State) -> dict:
    """Add an anchor; the committed segment from the previous anchor to it."""
    entry = _registry(st).get(user.name, sid)
    with entry.lock:
        session = entry.session
        check_points("point", body.point, session.shape)
        point = tuple(int(round(v)) for v in body.point)
        if entry.meta["snap_radius"]:
            point = session.snap(point, entry.meta["snap_radius"])
        segment = session.add_anchor(point)
        return {"path": _path(segment), "anchors": _path(session.anchors)}


@router.get("/livewire/sessions/{sid}/preview")
def preview(sid: str, user: Annotator, st: State, y: Annotated[int, Query(ge=0, le=2**31)],
            x: Annotated[int, Query(ge=0, le=2**31)]) -> dict:
    """The path from the last anchor to the cursor ``(y, x)``."""
    entry = _registry(st).get(user.name, sid)
    with entry.lock:
        check_points("point", [y, x], entry.session.shape)
        return {"path": _path(entry.session.path_to((y, x)))}


@router.post("/livewire/sessions/{sid}/undo")
def undo(sid: str, user: Annotator, st: State) -> dict:
    """Remove the last anchor (or reopen a closed contour); the anchors left."""
    entry = _registry(st).get(user.name, sid)
    with entry.lock:
        entry.session.remove_last_anchor()
        return {"anchors": _path(entry.session.anchors)}


@router.post("/livewire/sessions/{sid}/close")
def close_contour(sid: str, user: Annotator, st: State) -> dict:
    """Close the contour; its filled mask (of the slice) and the contour."""
    entry = _registry(st).get(user.name, sid)
    with entry.lock:
        mask = entry.session.mask()
        return {"mask": encode_mask(mask.astype(np.uint8)), "voxels": int(mask.sum()),
                "contour": _path(entry.session.contour())}


@router.delete("/livewire/sessions/{sid}")
def delete_session(sid: str, user: Annotator, st: State) -> dict:
    """Drop the session."""
    _registry(st).close(user.name, sid)
    return {"deleted": sid}
