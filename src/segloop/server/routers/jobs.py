"""``/api/jobs`` (admins): training and prediction in the background, with progress and cancel.

A training job takes a training config as JSON (the YAML of ``segloop config
init``, as a mapping) and ``--set``-style overrides; it is validated before the
job is queued (a bad key is a 400 naming it).  The server decides where it
writes: ``output.dir`` is ``WORKSPACE/runs/<job id>`` whatever the config
says; ``data.path`` defaults to the served dataset and, like
``data.cache_dir`` and ``training.init_from``, must lie inside the dataset or
the workspace (relative paths are read from the workspace).  A prediction job
predicts images with the served model into ``WORKSPACE/predictions/<job id>/``
(never into a rater's labels).  Jobs run in :class:`segloop.server.jobs.JobRunner`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from segloop.server.deps import Admin, State
from segloop.server.errors import ApiError
from segloop.server.jobs import JobRunner
from segloop.server.models import NO_MODEL, hub_of


@asynccontextmanager
async def _lifespan(app):
    yield
    runner = app.state.segloop.extras.get("jobs")
    if runner is not None:  # stop: running jobs are cancelled
        await run_in_threadpool(runner.shutdown)


router = APIRouter(prefix="/api/jobs", tags=["jobs"], lifespan=_lifespan)


def setup(state) -> None:
    """At start-up: the app's job runner; jobs a crash left running become failed."""
    runner = JobRunner(state)
    state.extras["jobs"] = runner
    state.extras["jobs_recovered"] = runner.recover()


def _runner(st) -> JobRunner:
    runner = st.extras.get("jobs")
    if runner is None:  # the router mounted without its start-up (should not happen)
        setup(st)
        runner = st.extras["jobs"]
    return runner


class JobRequest(BaseModel):
    """A job: ``train`` (config, overrides) or ``predict`` (image_ids; default all images)."""

    kind: Literal["train", "predict"]
    config: dict[str, Any] | None = Field(None, description="a training config (train)")
    overrides: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=50, description="KEY=VALUE, dotted keys (train)")
    image_ids: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        None, max_length=100_000, description="images to predict (predict; default: all)")


class JobOut(BaseModel):
    """A job and its state."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    message: str
    user: str
    params: dict
    result: dict
    created_at: str
    finished_at: str | None
    cancel_requested: bool = False


def _out(runner: JobRunner, job) -> dict:
    return {**job.to_dict(), "cancel_requested": runner.cancel_requested(job.id)}


def _inside(value: str, name: str, st, roots: list[Path]) -> str:
    """``value`` as an absolute path inside one of ``roots`` (relative: from the workspace)."""
    try:
        path = Path(value)
        path = (path if path.is_absolute() else st.settings.workspace / path).resolve()
    except (OSError, ValueError, RuntimeError):
        raise ApiError(400, f"{name}: {value[:200]!r} is not a usable path") from None
    if not any(path == r or path.is_relative_to(r) for r in roots):
        raise ApiError(400, f"{name}: {value!r} lies outside the dataset and the workspace")
    return str(path)


def _train_params(body: JobRequest, st, job_id: str) -> dict:
    from segloop.learn.config import load_config, to_dict

    raw = dict(body.config or {})
    data = raw.get("data") or {}
    if isinstance(data, dict):  # anything else: load_config names the problem
        raw["data"] = {"path": str(st.settings.dataset), **data}
    cfg = load_config(raw, overrides=body.overrides)
    workspace, dataset = st.settings.workspace.resolve(), st.settings.dataset.resolve()
    roots = [dataset, workspace]
    cfg.data.path = _inside(cfg.data.path, "data.path", st, roots)
    if cfg.data.cache_dir is not None:
        cfg.data.cache_dir = _inside(cfg.data.cache_dir, "data.cache_dir", st, [workspace])
    init = cfg.training.init_from
    if init is not None and not (st.settings.model and Path(init) == st.settings.model):
        cfg.training.init_from = _inside(init, "training.init_from", st, roots)
    cfg.output.dir = str(workspace / "runs" / job_id)
    return {"config": to_dict(cfg), "overrides": list(body.overrides)}


def _predict_params(body: JobRequest, st) -> dict:
    if body.config is not None or body.overrides:
        raise ApiError(422, "a predict job takes image_ids only (it uses the served model)")
    if hub_of(st).path is None:
        raise ApiError(409, NO_MODEL)
    ids = st.datastore.ids() if body.image_ids is None else list(dict.fromkeys(body.image_ids))
    if not ids:
        raise ApiError(422, "image_ids: no image to predict")
    for image_id in ids:
        st.datastore.case(image_id)  # 404 for an unknown id
    return {"image_ids": ids}


@router.post("", response_model=JobOut, status_code=202)
def submit(body: JobRequest, admin: Admin, st: State) -> dict:
    """Queue a job; 409 while another training job is queued or running."""
    import uuid

    runner = _runner(st)
    job_id = str(uuid.uuid4())
    params = (_train_params(body, st, job_id) if body.kind == "train"
              else _predict_params(body, st))
    return _out(runner, runner.submit(body.kind, params, admin.name, job_id=job_id))


@router.get("", response_model=list[JobOut])
def jobs(admin: Admin, st: State,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    """The latest jobs, newest first."""
    runner = _runner(st)
    return [_out(runner, job) for job in runner.list(limit)]


@router.get("/{job_id}", response_model=JobOut)
def job(job_id: str, admin: Admin, st: State) -> dict:
    """One job: status, progress 0..1, message, parameters and result."""
    runner = _runner(st)
    return _out(runner, runner.get(job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: str, admin: Admin, st: State) -> dict:
    """Cancel a job (a running one stops at its next progress check); 409 if it finished."""
    runner = _runner(st)
    return _out(runner, runner.cancel(job_id))
