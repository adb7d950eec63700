"""ITK's ``MorphologicalContourInterpolator``, the slice-interpolation peer, run on demand.

ITK's interpolator is in the PyPI package ``itk-morphologicalcontourinterpolation``
(about 1.4 GB with ``itk``), an optional extra of the benchmark only. It is
run in this process when ``import itk`` works here, or else in a subprocess
of the interpreter named by the environment variable ``SEGLOOP_ITK_PYTHON``
(e.g. a separate venv's ``bin/python``). Jobs go as ``.npy`` files in a
temporary folder, so one interpreter start serves every input; jobs left
undone by a crash of ITK are run again in a new process.

Examples
--------
>>> itk_runner(env={ITK_ENV: "/no/such/python"}) is None
True
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["ATTEMPTS", "ITK_ENV", "itk_runner", "run_jobs"]

#: Environment variable naming a Python interpreter that can ``import itk``.
ITK_ENV = "SEGLOOP_ITK_PYTHON"

# Runs inside the ITK interpreter: argv[1] is a JSON list of jobs
# {"input", "output", "times", "axis", "repeats"}; each job's output label and its times (ms)
# are written as soon as it is done, so that a crash loses only the job it hit.
_SCRIPT = r"""
import json, sys, time
import numpy as np
import itk

def run(job):
    given = np.load(job["input"])
    image = itk.image_from_array(given)
    times = []
    for _ in range(job["repeats"] + 1):
        f = itk.MorphologicalContourInterpolator.New(image)
        f.SetAxis(given.ndim - 1 - job["axis"])  # ITK orders axes x, y, z
        t0 = time.perf_counter()
        f.Update()
        times.append((time.perf_counter() - t0) * 1000.0)
    np.save(job["output"], itk.array_from_image(f.GetOutput()))
    with open(job["times"], "w") as fh:
        json.dump(times[1:], fh)  # the first call warms ITK up

for job in json.loads(sys.argv[1]):
    run(job)
"""

#: Attempts at the jobs a crashed ITK process left undone (ITK 5.4's interpolator
#: now and then aborts with a heap corruption on large inputs).
ATTEMPTS = 3


def _in_process() -> bool:
    try:
        import itk  # noqa: F401
    except ImportError:
        return False
    return True


def itk_runner(env=None):
    """How to run ITK here: ``"in-process"``, an interpreter path, or None (unavailable)."""
    env = os.environ if env is None else env
    python = env.get(ITK_ENV)
    if python:
        return python if Path(python).exists() else None
    return "in-process" if _in_process() else None


def run_jobs(given: list[np.ndarray], *, runner: str | None, axis: int = 0,
             repeats=5) -> tuple[list[np.ndarray], list[list[float]]]:
    """Interpolate each label volume of ``given`` with ITK; return the outputs and times (ms).

    Parameters
    ----------
    given : list of ndarray
        Label volumes ``(z, y, x)`` holding only the drawn slices.
    runner : str or None
        From :func:`itk_runner`.
    axis : int
        Axis across which the slices were drawn (array order).
    repeats : int or list of int
        Timed calls per input (one number for all, or one each), after one
        untimed call.

    Raises
    ------
    RuntimeError
        When ITK is not available, or its process failed :data:`ATTEMPTS` times.
    """
    if runner is None:
        raise RuntimeError(f"ITK is not importable here and {ITK_ENV} is not set")
    counts = [repeats] * len(given) if np.isscalar(repeats) else list(repeats)
    with tempfile.TemporaryDirectory(prefix="segloop-itk-") as tmp:
        jobs = []
        for i, (arr, n) in enumerate(zip(given, counts, strict=True)):
            src = Path(tmp, f"in{i}.npy")
            np.save(src, np.ascontiguousarray(arr, dtype=np.uint8))
            jobs.append({"input": str(src), "output": str(Path(tmp, f"out{i}.npy")),
                         "times": str(Path(tmp, f"times{i}.json")), "axis": int(axis),
                         "repeats": int(n)})
        error = ""
        for _ in range(ATTEMPTS):
            pending = [job for job in jobs if not Path(job["times"]).exists()]
            if not pending:
                break
            error = _run(runner, pending)
        if any(not Path(job["times"]).exists() for job in jobs):
            raise RuntimeError(f"ITK failed {ATTEMPTS} times: {error}")
        outputs = [np.load(job["output"]) for job in jobs]
        times = [json.loads(Path(job["times"]).read_text()) for job in jobs]
    return outputs, times


def _run(runner: str, jobs: list[dict]) -> str:
    """Run ``jobs``; return the error text of a failure ('' when all went well)."""
    if runner == "in-process":
        namespace: dict = {}
        exec(compile(_SCRIPT.split("for job in")[0], "itk_mci", "exec"), namespace)
        for job in jobs:
            namespace["run"](job)
        return ""
    done = subprocess.run([runner, "-c", _SCRIPT, json.dumps(jobs)], capture_output=True,
                          text=True, timeout=1800, check=False)
    return "" if done.returncode == 0 else done.stderr.strip()[-500:]
