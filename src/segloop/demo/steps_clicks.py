"""Demo step: the simulated annotator counts the interactions each tool needs on MNI152 objects."""

from __future__ import annotations

from typing import Any

import numpy as np

from segloop.bench.clicks import summarise
from segloop.bench.plots import write_plot
from segloop.data.mni152 import load_mni152
from segloop.demo.steps_tools import ventricle
from segloop.simulate import get_driver
from segloop.simulate.polygon_baseline import polygon_vertices
from segloop.simulate.protocol import noc
from segloop.tools import keep_largest

__all__ = ["DEMO_TOOLS", "step_clicks"]

#: The segloop tools the demo plays (the peers are in ``segloop bench clicks``).
DEMO_TOOLS = ("boxclicks", "graphcut", "livewire", "geodesic", "polygon")
_MAX = 12
_TARGETS = (0.85, 0.9)


def _objects(mni) -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]]:
    """(name, image, one-object mask, spacing): ventricle, brain and white matter on axial cuts."""
    t1, spacing = mni.t1.array.astype(np.float32), tuple(float(s) for s in mni.t1.spacing)
    vent = ventricle(mni.tissue.array, mni.brain.array > 0, spacing)
    z = int(np.argmax(vent.sum(axis=(1, 2))))
    brain = mni.brain.array > 0
    zb = int(np.argmax(brain.sum(axis=(1, 2))))
    wm = keep_largest((mni.tissue.array[zb + 20] == 3).astype(np.uint8)) > 0
    one = keep_largest(vent[z].astype(np.uint8)) > 0
    return [(f"ventricle z={z}", t1[z], one, spacing[1:]),
            (f"brain z={zb}", t1[zb], brain[zb], spacing[1:]),
            (f"white matter z={zb + 20}", t1[zb + 20], wm, spacing[1:])]


def step_clicks(ctx) -> dict[str, Any]:
    """Play each tool with the simulated annotator; NoC@85/90 and a Dice-vs-interactions plot."""
    mni = ctx.cache.get("mni") or load_mni152()
    cases = []
    for name, image, truth, spacing in _objects(mni):
        polygon = {f"{100 * t:g}": polygon_vertices(truth, t, spacing=spacing) for t in _TARGETS}
        for tool in DEMO_TOOLS:
            trace = get_driver(tool)(image, truth, spacing=spacing, max_interactions=_MAX,
                                     stop_at=max(_TARGETS), rng=np.random.default_rng(0))
            cases.append({"dataset": "MNI152", "case": name, "tool": tool,
                          **trace.as_dict(), "seconds": trace.seconds,
                          "polygon_vertices": polygon,
                          **{f"noc{100 * t:g}": noc(trace.dice, t, _MAX) for t in _TARGETS}})
    summary = [summarise("MNI152", tool, [c for c in cases if c["tool"] == tool],
                         targets=_TARGETS, max_interactions=_MAX, dims=2)
               for tool in DEMO_TOOLS]
    report = {"suite": "clicks", "args": {"max_interactions": _MAX}, "summary": summary,
              "cases": cases}
    fig = write_plot(report, ctx.path("figures", "clicks.png"))
    by_tool = {r["tool"]: r for r in summary}
    names = sorted({c["case"] for c in cases}, key=[c["case"] for c in cases].index)
    lines = [
        f"- The simulated annotator (DESIGN.md protocol) on {len(names)} objects of the template "
        f"({', '.join(names)}), at most {_MAX} interactions; NoC = interactions to reach the "
        "Dice target (a failure counts as the cap):",
        *(f"  - {tool}: NoC@85 {r['noc85']:.2f}, NoC@90 {r['noc90']:.2f}, "
          f"Dice after 3: {r['dice_at_3']:.3f}"
          + ("" if tool == "polygon" else f", {r['ratio_vs_polygon90']}× fewer than the "
             "polygon baseline")
          for tool, r in by_tool.items()),
        "- The full table, with OpenCV and scikit-image peers on 10 real datasets: "
        "`segloop bench clicks` (docs/benchmarks.md).",
        f"- Figure: `{fig.relative_to(ctx.out)}`.",
    ]
    return {"objects": names, "max_interactions": _MAX,
            "summary": {t: {k: r[k] for k in ("noc85", "noc90", "dice_at_1", "dice_at_3",
                                               "failures90", "polygon_vertices90",
                                               "ratio_vs_polygon90")}
                        for t, r in by_tool.items()},
            "files": {"figure": str(fig.relative_to(ctx.out))}, "report": lines}
