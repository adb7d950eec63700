"""Background jobs: training and prediction in worker threads, their state in the database.

:class:`JobRunner` keeps one row per job in the ``jobs`` table
(:class:`segloop.server.db.Job`: kind, status, progress 0..1, message,
parameters, result), so the list survives a restart; :meth:`JobRunner.recover`,
run at start-up, marks a job a crash left ``running`` (or ``queued``) as
``failed`` ("server restarted").  Statuses: ``queued`` -> ``running`` ->
``done`` | ``failed`` | ``cancelled``.

Each kind has one worker thread taking its jobs in order, and only one
training job may be queued or running at a time (:meth:`JobRunner.submit`
refuses a second with 409).  Cancelling is cooperative: the job's callbacks
(``log`` and ``progress`` of :func:`segloop.learn.train.train`, which are called
after every training iteration and epoch; the loop over images of a
prediction) call :meth:`JobContext.check`, which raises :class:`Cancelled`
once :meth:`JobRunner.cancel` was asked.  Progress is written to the database
at most every :data:`WRITE_EVERY` seconds.

The work itself is in :data:`TASKS` (``train``: :func:`run_train`,
``predict``: :func:`run_predict`); it receives a :class:`JobContext` and the
job's parameters and returns the job's result.

Examples
--------
>>> ctx = JobContext("j1", None, threading.Event())
>>> ctx.cancel.set()
>>> try:
...     ctx.check()
... except Cancelled as exc:
...     print(exc)
cancelled
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from segloop.errors import SegloopError
from segloop.server.db import Job, now
from segloop.server.errors import ApiError

__all__ = ["ACTIVE", "FINISHED", "TASKS", "WRITE_EVERY", "Cancelled", "JobContext", "JobRunner",
           "run_predict", "run_train"]

log = logging.getLogger("segloop.server.jobs")

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
#: Least seconds between two progress writes of a job.
WRITE_EVERY = 0.5


class Cancelled(Exception):
    """Raised inside a job when it was asked to stop."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class JobContext:
    """What a running job sees: its id, the runner, its cancel flag, a progress reporter."""

    def __init__(self, job_id: str, runner: JobRunner | None, cancel: threading.Event):
        self.id, self.runner, self.cancel = job_id, runner, cancel
        self._written = 0.0

    def check(self) -> None:
        """Raise :class:`Cancelled` when the job was asked to stop."""
        if self.cancel.is_set():
            raise Cancelled()

    def report(self, progress: float | None = None, message: str | None = None) -> None:
        """Record progress (0..1) and / or a message (written at most every WRITE_EVERY s)."""
        self.check()
        t = time.monotonic()
        if self.runner is not None and t - self._written >= WRITE_EVERY:
            self._written = t
            fields: dict[str, Any] = {}
            if progress is not None:
                fields["progress"] = min(max(float(progress), 0.0), 1.0)
            if message is not None:
                fields["message"] = message[:2000]
            self.runner.update(self.id, **fields)


class JobRunner:
    """The jobs of one server (see the module docstring)."""

    def __init__(self, state):
        self.state = state
        self.sessions = state.sessions
        self._queues: dict[str, queue.Queue] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stopping = False

    # ------------------------------------------------------------------ rows
    def update(self, job_id: str, **fields) -> Job | None:
        """Write ``fields`` to the job's row; the row."""
        with self.sessions() as db:
            job = db.get(Job, job_id)
            if job is None:
                return None
            for name, value in fields.items():
                setattr(job, name, value)
            db.commit()
            return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; 404 for an unknown id."""
        with self.sessions() as db:
            job = db.get(Job, job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}")
        return job

    def list(self, limit: int = 100) -> list[Job]:
        """The latest ``limit`` jobs, newest first."""
        with self.sessions() as db:
            return list(db.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)))

    def cancel_requested(self, job_id: str) -> bool:
        """Whether the job was asked to stop and has not stopped yet."""
        event = self._cancel.get(job_id)
        return bool(event and event.is_set())

    def recover(self) -> list[str]:
        """Mark the jobs a crash left queued or running as failed; their ids."""
        with self.sessions() as db:
            jobs = list(db.scalars(select(Job).where(Job.status.in_(ACTIVE))))
            for job in jobs:
                job.message = ("failed: server restarted" if job.status == "running" else
                               "failed: server restarted before the job started")
                job.status, job.finished_at = "failed", now()
            db.commit()
        return [job.id for job in jobs]

    # ------------------------------------------------------------------ actions
    def submit(self, kind: str, params: dict, user: str, *,
               job_id: str | None = None) -> Job:
        """Queue a job of ``kind`` (a name of :data:`TASKS`); 409 for a second training job."""
        if self._stopping:
            raise ApiError(503, "the server is stopping")
        if kind not in TASKS:
            raise ApiError(422, f"kind: unknown job kind {kind!r}")
        job_id = job_id or str(uuid.uuid4())
        with self._lock:
            if kind == "train":
                with self.sessions() as db:
                    busy = db.scalar(select(Job).where(Job.kind == "train",
                                                       Job.status.in_(ACTIVE)).limit(1))
                if busy is not None:
                    raise ApiError(409, f"training job {busy.id} is {busy.status}: one training "
                                   "job at a time (cancel it or wait)")
            job = Job(id=job_id, kind=kind, status="queued", progress=0.0, message="queued",
                      user=user, params=json.dumps(params), result="{}")
            with self.sessions() as db:
                db.add(job)
                db.commit()
            self._cancel[job_id] = threading.Event()
            self._worker(kind).put(job_id)
        return job

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a queued one at once, a running one at its next check; 409 if finished."""
        with self._lock:
            job = self.get(job_id)
            if job.status in FINISHED:
                raise ApiError(409, f"job {job_id} is {job.status} already")
            self._cancel.setdefault(job_id, threading.Event()).set()
            if job.status == "queued":
                job = self.update(job_id, status="cancelled", message="cancelled before it "
                                  "started", finished_at=now())
        return job

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel every job and stop the workers (waits up to ``timeout`` seconds)."""
        with self._lock:
            self._stopping = True
            for event in self._cancel.values():
                event.set()
            for q in self._queues.values():
                q.put(None)
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ workers
    def _worker(self, kind: str) -> queue.Queue:
        if kind not in self._threads or not self._threads[kind].is_alive():
            self._queues[kind] = queue.Queue()
            thread = threading.Thread(target=self._loop, args=(self._queues[kind],),
                                      name=f"segloop-{kind}-jobs", daemon=True)
            self._threads[kind] = thread
            thread.start()
        return self._queues[kind]

    def _loop(self, jobs: queue.Queue) -> None:
        while True:
            job_id = jobs.get()
            if job_id is None:
                return
            self._run(job_id)

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        cancel = self._cancel.setdefault(job_id, threading.Event())
        if job.status != "queued":
            return
        if cancel.is_set():
            self.update(job_id, status="cancelled", message="cancelled: the server stopped",
                        finished_at=now())
            return
        self.update(job_id, status="running", message="running")
        ctx = JobContext(job_id, self, cancel)
        try:
            result = TASKS[job.kind](ctx, json.loads(job.params), self.state)
        except Cancelled:
            why = "cancelled: the server stopped" if self._stopping else "cancelled"
            self.update(job_id, status="cancelled", message=why, finished_at=now())
        except SegloopError as exc:
            self.update(job_id, status="failed", message=f"failed: {exc.message}",
                        finished_at=now())
        except Exception:
            log.exception("job %s (%s) failed", job_id, job.kind)
            self.update(job_id, status="failed", message="failed: internal error (logged on "
                        "the server)", finished_at=now())
        else:
            self.update(job_id, status="done", progress=1.0, message="done",
                        result=json.dumps(result), finished_at=now())
        finally:
            self._cancel.pop(job_id, None)


# ----------------------------------------------------------------------------- tasks
def _relative(path: Path, workspace: Path) -> str:
    return str(Path(path).resolve().relative_to(workspace.resolve()))


def run_train(ctx: JobContext, params: dict, state) -> dict:
    """Train the job's config (:func:`segloop.learn.train.train`); its metrics and checkpoint."""
    from segloop.learn.config import load_config
    from segloop.learn.train import train

    cfg = load_config(params["config"])
    last = [""]  # the latest line of train()'s log (an epoch's loss and validation Dice)

    def progress(event: dict) -> None:
        epochs = max(1, event["epochs"])
        if event["stage"] == "train":
            done = event["epoch"] - 1 + event["iteration"] / max(1, event["iterations"])
        else:  # validation of an epoch
            done = event["epoch"]
        where = f"{event['stage']} epoch {event['epoch']}/{event['epochs']}"
        ctx.report(progress=0.95 * done / epochs,
                   message=f"{where}; {last[0]}" if last[0] else where)

    def log_line(line: str) -> None:
        ctx.check()
        last[0] = line
        log.info("job %s: %s", ctx.id, line)

    result = train(cfg, log=log_line, progress=progress)
    workspace = state.settings.workspace
    best = Path(cfg.output.dir) / "best.pt"
    return {"checkpoint": _relative(best, workspace) if best.is_file() else None,
            "output": _relative(Path(cfg.output.dir), workspace),
            **{k: result.get(k) for k in ("dice", "epochs", "seconds", "stopped", "best",
                                          "test_cases")}}


def run_predict(ctx: JobContext, params: dict, state) -> dict:
    """Predict the job's images with the served model into ``predictions/<job id>/``."""
    from segloop.io import write_image
    from segloop.learn.predict_files import output_suffix
    from segloop.server.models import hub_of

    hub = hub_of(state)
    workspace = state.settings.workspace
    out = workspace / "predictions" / ctx.id
    files, ids = [], params["image_ids"]
    for n, image_id in enumerate(ids, start=1):
        ctx.check()
        try:
            label, _, _, _ = hub.predict(image_id)
        except SegloopError as exc:
            files.append({"image_id": image_id, "path": None, "error": exc.message})
            continue
        image = state.datastore.image(image_id)
        ext = output_suffix(state.datastore.case(image_id).image)[1]
        target = out / f"{image_id}_seg{ext}"
        write_image(image.with_array(label, kind="label", channels=False), target,
                    overwrite=True)
        files.append({"image_id": image_id, "path": _relative(target, workspace)})
        ctx.report(progress=n / len(ids), message=f"predicted {n}/{len(ids)}")
    return {"directory": _relative(out, workspace), "model": hub.path.name, "files": files}


#: Job kind -> ``task(context, params, app_state) -> result``.
TASKS: dict[str, Callable[[JobContext, dict, Any], dict]] = {
    "train": run_train, "predict": run_predict,
}
