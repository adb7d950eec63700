"""``/api/labels``: each rater's versioned labels -- read, save, upload, revert, consensus.

Every save is a new version of one rater's label of one image
(:class:`~segloop.server.storage.LabelStore`): it names the version it was
built on (``base_version``, 0 for the first) and gets 409 when another save
landed in between.  Annotators read and write their own labels only,
reviewers read every rater's, admins also write them.  ``GET /api/labels``
is the status of every image (rater -> latest version; an annotator sees only
its own entry).  ``consensus`` is a reserved word where a rater name goes:
``GET /api/labels/{image}/consensus`` fuses raters (:func:`segloop.fusion.fuse`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Query, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field, StringConstraints

from segloop.fusion import fuse
from segloop.io import read_image, same_grid, write_image
from segloop.server.auth import allowed
from segloop.server.db import User
from segloop.server.deps import Annotator, AppState, CurrentUser, Reviewer, State, own_rater
from segloop.server.errors import ApiError
from segloop.server.masks import MaskPayload, decode_mask, encode_mask

router = APIRouter(prefix="/api/labels", tags=["labels"])

ImageId = Annotated[str, PathParam(max_length=255, description="an image id of /api/images")]
Rater = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9]{1,64}$", description="a rater name")]
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
_UPLOADS = {".nii.gz": "nifti", ".nii": "nifti", ".png": "png"}
_MEDIA = {"nifti": "application/gzip", "png": "image/png"}


class VersionMeta(BaseModel):
    """One saved version: who, when, built on what, with which tools and effort."""

    image_id: str
    rater: str
    version: int
    author: str
    created_at: str
    base_version: int | None
    action: str
    tools: list[str]
    interactions: int
    seconds: float
    comment: str | None
    sha256: str


class LabelOut(BaseModel):
    """A version of a rater's label and its metadata."""

    version: int
    mask: MaskPayload
    meta: VersionMeta


class RatersOut(BaseModel):
    """Rater -> latest version, for one image."""

    image_id: str
    raters: dict[str, int]


class SaveBody(BaseModel):
    """A label to save as the rater's next version."""

    base_version: int = Field(ge=0, le=10**9, description="the version edited (0: none yet)")
    mask: MaskPayload
    tools: list[ToolName] = Field(default_factory=list, max_length=64)
    interactions: int = Field(0, ge=0, le=10**9)
    seconds: float = Field(0.0, ge=0, le=10**8, allow_inf_nan=False)
    comment: str | None = Field(None, max_length=2000)


class SliceBody(SaveBody):
    """One 2D slice of a volume's label, merged into the base version."""

    axis: int = Field(0, ge=0, le=2, description="0: z (axial slices of the array), 1: y, 2: x")
    index: int = Field(ge=0, le=10**6)


class RevertBody(BaseModel):
    """Make version ``to_version`` the latest again (as a new version)."""

    to_version: int = Field(ge=1, le=10**9)
    base_version: int = Field(ge=0, le=10**9)


class ConsensusOut(BaseModel):
    """The raters' fused label."""

    image_id: str
    method: str
    label: int | None
    raters: list[str]
    versions: dict[str, int]
    soft: bool
    scale: int = Field(description="mask value / scale = consensus (255 for soft, else 1)")
    mask: MaskPayload


def setup(st: AppState) -> None:
    """At start-up: remove upload and conversion files a crash left behind."""
    shutil.rmtree(_tmp_dir(st), ignore_errors=True)


def _tmp_dir(st: AppState) -> Path:
    return st.settings.workspace / "tmp" / "labels"


def _save(st: AppState, image_id: str, rater: str, user: User, array: np.ndarray,
          body: SaveBody | None = None, *, base_version: int, tools: list[str] | None = None,
          comment: str | None = None) -> dict:
    row = st.labels.save(image_id, rater, array, base_version=base_version, author=user.name,
                         tools=body.tools if body else tools,
                         interactions=body.interactions if body else 0,
                         seconds=body.seconds if body else 0.0,
                         comment=body.comment if body else comment)
    return row.to_dict()


@router.get("")
def status(user: CurrentUser, st: State) -> list[RatersOut]:
    """Every image of the dataset with its raters' latest versions (annotators: their own)."""
    labelled = st.labels.status()
    everyone = allowed(user.role, "reviewer")
    return [RatersOut(image_id=i, raters={r: v for r, v in labelled.get(i, {}).items()
                                          if everyone or r == user.name})
            for i in st.datastore.ids()]


@router.get("/{image_id}")
def raters(image_id: ImageId, user: CurrentUser, st: State) -> RatersOut:
    """The raters of one image and their latest versions (annotators: their own)."""
    st.datastore.case(image_id)
    found = st.labels.raters(image_id)
    if not allowed(user.role, "reviewer"):
        found = {r: v for r, v in found.items() if r == user.name}
    return RatersOut(image_id=image_id, raters=found)


@router.get("/{image_id}/consensus")
def consensus(image_id: ImageId, user: Reviewer, st: State,
              method: Literal["majority", "weighted", "staple", "soft"] = "majority",
              raters: Annotated[str | None, Query(
                  max_length=2000, pattern=r"^[A-Za-z0-9]{1,64}(,[A-Za-z0-9]{1,64})*$",
                  description="comma-separated raters (default: every rater)")] = None,
              label: Annotated[int | None, Query(
                  ge=1, le=65535, description="fuse only this label value (0/1 masks)")] = None,
              ) -> ConsensusOut:
    """The raters' latest labels fused (reviewers); ``soft`` is scaled to 0..255.

    ``soft`` and binary STAPLE take 0/1 masks: give ``label`` for multi-label maps.
    """
    st.datastore.case(image_id)
    latest = st.labels.raters(image_id)
    names = list(dict.fromkeys(raters.split(","))) if raters else sorted(latest)
    if not names:
        raise ApiError(404, f"no rater has labelled {image_id} yet: nothing to fuse")
    unknown = [r for r in names if r not in latest]
    if unknown:
        raise ApiError(404, f"no label of {image_id} by {', '.join(unknown)}")
    if method == "staple" and len(names) < 2:
        raise ApiError(400, f"STAPLE needs at least 2 raters; {image_id} has {len(names)} "
                       f"({', '.join(names)}); use majority")
    arrays = {r: st.labels.read(image_id, r, latest[r]).array for r in names}
    if label is not None:
        arrays = {r: (a == label).astype(np.uint8) for r, a in arrays.items()}
    fused = fuse(arrays, method)
    soft = method == "soft"
    out = np.rint(np.asarray(fused) * 255).astype(np.uint8) if soft else fused
    return ConsensusOut(image_id=image_id, method=method, label=label, raters=names,
                        versions={r: latest[r] for r in names}, soft=soft,
                        scale=255 if soft else 1, mask=encode_mask(out))


@router.get("/{image_id}/{rater}", response_model=LabelOut,
            responses={200: {"content": {m: {} for m in _MEDIA.values()},
                             "description": "JSON, or the file with format=nifti|png"}})
def get_label(image_id: ImageId, rater: Rater, user: CurrentUser, st: State,
              version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
              format: Literal["json", "nifti", "png"] = "json"):
    """A version (default: the latest) of a rater's label: JSON, or the NIfTI/PNG file."""
    st.datastore.case(image_id)
    own_rater(user, rater, write=False)
    rows = st.labels.versions(image_id, rater)
    if not rows:
        raise ApiError(404, f"{rater} has no label of {image_id} yet")
    match = [r for r in rows if version is None or r.version == version]
    if not match:
        raise ApiError(404, f"no version {version} of {rater}'s label of {image_id} "
                       f"(versions 1..{rows[-1].version})")
    row = match[-1]
    path = st.labels.workspace / row.path
    stored = "png" if path.name.endswith(".png") else "nifti"
    if format == "json":
        label = read_image(path, kind="label")
        return LabelOut(version=row.version, mask=encode_mask(label.array),
                        meta=VersionMeta(**row.to_dict()))
    name = f"{image_id}_{rater}_v{row.version}" + (".png" if format == "png" else ".nii.gz")
    if format == stored:
        return FileResponse(path, media_type=_MEDIA[format], filename=name)
    label = read_image(path, kind="label")
    if format == "png" and label.spatial_ndim != 2:
        raise ApiError(400, f"{image_id} is a volume: its label is served as format=nifti "
                       "or json, not png")
    return Response(_converted(st, label, ".png" if format == "png" else ".nii.gz"),
                    media_type=_MEDIA[format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _converted(st: AppState, label, ext: str) -> bytes:
    """The bytes of ``label`` written in another format (through a temporary file)."""
    with _scratch(st) as folder:
        label.metadata["spacing_known"] = False  # pixels only: no PNG sidecar
        write_image(label, folder / f"label{ext}")
        return (folder / f"label{ext}").read_bytes()


@contextlib.contextmanager
def _scratch(st: AppState) -> Iterator[Path]:
    """A temporary folder in the workspace, removed afterwards (and at start-up)."""
    _tmp_dir(st).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=_tmp_dir(st)))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@router.put("/{image_id}/{rater}", status_code=201)
def save(image_id: ImageId, rater: Rater, body: SaveBody, user: Annotator,
         st: State) -> VersionMeta:
    """Save the rater's next version (409 when ``base_version`` is not the latest)."""
    own_rater(user, rater, write=True)
    shape = st.datastore.image(image_id).shape
    array = decode_mask(body.mask, max_voxels=st.settings.max_voxels, shape=shape)
    return _save(st, image_id, rater, user, array, body, base_version=body.base_version)


@router.put("/{image_id}/{rater}/slice", status_code=201)
def save_slice(image_id: ImageId, rater: Rater, body: SliceBody, user: Annotator,
               st: State) -> VersionMeta:
    """Save one slice: the base version (zeros if none) with this slice replaced."""
    own_rater(user, rater, write=True)
    shape = st.datastore.image(image_id).shape
    if len(shape) != 3:
        raise ApiError(422, f"{image_id} is 2D: save its whole label with "
                       f"PUT /api/labels/{image_id}/{rater}")
    if body.index >= shape[body.axis]:
        raise ApiError(422, f"slice index {body.index} out of range 0..{shape[body.axis] - 1} "
                       f"along axis {body.axis}")
    plane = decode_mask(body.mask, max_voxels=st.settings.max_voxels,
                        shape=tuple(s for a, s in enumerate(shape) if a != body.axis))
    latest = st.labels.latest(image_id, rater)
    if latest is not None and latest.version == body.base_version:
        volume = np.asarray(st.labels.read(image_id, rater, latest.version).array)
    else:  # the first save, or a stale base that the store refuses with 409
        volume = np.zeros(shape, np.uint8)
    volume = volume.astype(np.promote_types(volume.dtype, plane.dtype))
    where: list = [slice(None)] * 3
    where[body.axis] = body.index
    volume[tuple(where)] = plane
    return _save(st, image_id, rater, user, volume, body, base_version=body.base_version)


@router.post("/{image_id}/{rater}/upload", status_code=201)
def upload(image_id: ImageId, rater: Rater, user: Annotator, st: State,
           file: Annotated[UploadFile, File(description="a NIfTI or PNG label file")],
           base_version: Annotated[int, Query(ge=0, le=10**9)]) -> VersionMeta:
    """Save an uploaded NIfTI/PNG file (on the image's grid) as the rater's next version."""
    own_rater(user, rater, write=True)
    image = st.datastore.image(image_id)
    filename = (file.filename or "")[:200]
    ext = next((e for e in _UPLOADS if filename.lower().endswith(e)), None)
    if ext is None:
        raise ApiError(422, f"upload {filename!r}: expected a .nii.gz, .nii or .png file")
    label = _read_upload(st, file, ext, filename, image.shape)
    if st.labels.current_path(image_id, rater).suffix == ".png":  # a 2D raster: shape only
        ok, why = label.shape == image.shape, f"shape {image.shape} vs {label.shape}"
    else:
        ok, why = same_grid(image, label)  # what segloop.io.check_same_grid checks
    if not ok:
        raise ApiError(422, f"upload {filename!r} is not on the grid of {image_id}: {why}")
    return _save(st, image_id, rater, user, label.array, base_version=base_version,
                 tools=["upload"], comment=f"uploaded {filename}")


def _read_upload(st: AppState, file: UploadFile, ext: str, filename: str, shape):
    """The uploaded label, read by segloop.io from a temporary file of the workspace."""
    with _scratch(st) as folder:
        path = folder / f"upload{ext}"
        with open(path, "wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        _check_declared_size(path, ext, filename, int(np.prod(shape)))
        try:
            return read_image(path, kind="label")
        except Exception as exc:  # any reader failure: the upload is not a usable label
            why = getattr(exc, "message", None) or type(exc).__name__
            raise ApiError(422, f"upload {filename!r} cannot be read as a label: {why}") from None


def _check_declared_size(path: Path, ext: str, filename: str, voxels: int) -> None:
    """Refuse, from the header alone, a file whose pixels cannot be the image's (bombs)."""
    try:
        if _UPLOADS[ext] == "nifti":
            import nibabel

            declared = nibabel.load(str(path)).header.get_data_shape()
        else:
            from PIL import Image as PILImage

            with PILImage.open(path) as im:
                declared = (im.height, im.width)
    except Exception:  # a header no parser understands
        raise ApiError(422, f"upload {filename!r} is not a readable {_UPLOADS[ext]} file") \
            from None
    if int(np.prod([int(d) for d in declared], dtype=object)) != voxels:
        raise ApiError(422, f"upload {filename!r} holds {list(declared)} voxels; the image has "
                       f"{voxels}")


@router.get("/{image_id}/{rater}/versions")
def versions(image_id: ImageId, rater: Rater, user: CurrentUser,
             st: State) -> list[VersionMeta]:
    """Every version of the rater's label, oldest first."""
    st.datastore.case(image_id)
    own_rater(user, rater, write=False)
    return [VersionMeta(**r.to_dict()) for r in st.labels.versions(image_id, rater)]


@router.post("/{image_id}/{rater}/revert", status_code=201)
def revert(image_id: ImageId, rater: Rater, body: RevertBody, user: Annotator,
           st: State) -> VersionMeta:
    """A new version holding version ``to_version``'s label (the history is kept)."""
    st.datastore.case(image_id)
    own_rater(user, rater, write=True)
    row = st.labels.revert(image_id, rater, body.to_version, base_version=body.base_version,
                           author=user.name)
    return VersionMeta(**row.to_dict())
