"""Run the demo: each capability of segloop adds one step.

``run_demo(out_dir)`` creates the output folder, runs every step of
:data:`STEPS` in order, and writes ``report.md`` (what was done, with the
numbers) and ``results.json`` (the same, machine-readable). A step is a
function ``step(ctx) -> dict`` that writes its files under ``ctx.out`` and
returns its numbers and the files it wrote.

The output folder is owned by the demo (it holds a ``.segloop-demo``
marker): a rerun moves the previous run to ``<out>.previous``. A folder
without the marker is never replaced unless ``overwrite=True``, in which
case it is kept as a numbered version.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segloop import __version__
from segloop.errors import OutputExistsError
from segloop.io.files import keep_version, write_errors, write_json

__all__ = ["DemoContext", "run_demo"]

MARKER = ".segloop-demo"


@dataclass
class DemoContext:
    """What the steps share: the output folder, a logger and earlier results."""

    out: Path
    log: Callable[[str], None]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def path(self, *parts: str) -> Path:
        """A path under the output folder (parents created)."""
        p = self.out.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def _prepare(out: Path, overwrite: bool) -> None:
    with write_errors(out):
        _replace_previous(out, overwrite)
        out.mkdir(parents=True)
        (out / MARKER).write_text(f"segloop {__version__}\n")


def _replace_previous(out: Path, overwrite: bool) -> None:
    if out.exists():
        if (out / MARKER).exists():
            previous = out.with_name(out.name + ".previous")
            if previous.exists():
                shutil.rmtree(previous)
            out.rename(previous)
        elif out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        elif overwrite:
            keep_version(out)
        else:
            raise OutputExistsError("exists and was not made by segloop demo; choose another "
                                    "--out or pass --overwrite (it is kept as a version)",
                                    path=out)


def _steps():
    from segloop.demo import (
        steps_clicks,
        steps_data,
        steps_deploy,
        steps_dicom,
        steps_learn,
        steps_loop,
        steps_raters,
        steps_tools,
    )

    return [
        ("data", "Real data in, real data out: MNI152 template I/O", steps_data.step_data),
        ("dicom", "Hospital formats: DICOM series and DICOM-SEG", steps_dicom.step_dicom),
        ("baseline", "Metrics on real data: a threshold baseline vs the tissue map",
         steps_data.step_baseline),
        ("phantom", "Seeded phantoms with known truth", steps_data.step_phantom),
        ("tools", "Smart annotation tools, no training data", steps_tools.step_tools),
        ("clicks", "Every click counted: the simulated annotator", steps_clicks.step_clicks),
        ("learn", "Deep learning: a 2D U-Net trained, applied and its uncertainty measured",
         steps_learn.step_learn),
        ("deploy", "On a laptop CPU: the U-Net exported to ONNX and int8",
         steps_deploy.step_deploy),
        ("loop", "The loop: a pre-annotation queue, then scribbles fine-tune the model (BIFSeg)",
         steps_loop.step_loop),
        ("raters", "Many raters: bias found, consistency and fusion (majority, STAPLE)",
         steps_raters.step_raters),
    ]


def run_demo(out_dir: str | Path = "segloop-demo", *, overwrite: bool = False,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every demo step and write the report.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Output folder (created).
    overwrite : bool
        Replace a folder that was not made by the demo (kept as a version).
    log : callable
        Receives one line per event.

    Returns
    -------
    dict
        ``{"out": path, "steps": {name: results}}``, as in ``results.json``.
    """
    out = Path(out_dir).resolve()
    _prepare(out, overwrite)
    ctx = DemoContext(out=out, log=log)
    report = [f"# segloop demo (version {__version__})", "",
              "Built-in data: the MNI152 2009a template shipped inside nilearn's wheel "
              "(an average of 152 real brain MRIs, with tissue probability maps).", ""]
    for name, title, step in _steps():
        log(f"[{name}] {title}")
        t0 = time.perf_counter()
        result = step(ctx)
        result["seconds"] = round(time.perf_counter() - t0, 2)
        ctx.results[name] = result
        report += [f"## {title}", "", *result.get("report", []), "",
                   f"_{result['seconds']} s_", ""]
        for line in result.get("report", []):
            log(f"    {line}")
    results = {"out": str(out), "segloop_version": __version__,
               "steps": {k: {kk: vv for kk, vv in v.items() if kk != "report"}
                         for k, v in ctx.results.items()}}
    write_json(results, out / "results.json")
    (out / "report.md").write_text("\n".join(report) + "\n")
    log(f"demo report: {out / 'report.md'} (numbers in {out / 'results.json'})")
    return json.loads((out / "results.json").read_text())
