"""Demo step: many raters — simulated raters of known bias, their report and their fusion.

Five raters outline the brain on six axial slices of the MNI152 template,
each with a known habit (:func:`segloop.simulate.raters.simulate_rater` on
the template's brain mask): ``ana`` draws 2 mm too far back, ``ben`` 2 mm outside,
``chloe`` 2 mm inside, ``dev`` misses 10 % of the brain in random blobs and
``eli`` draws 1 mm outside and 2 mm to the right.  Ana and Ben work in one
centre, the others in another (``raters.tsv``).  The slices are written as a
plain multi-rater folder (``images/`` + ``labels/<rater>/``), then

1. ``segloop raters report`` (:func:`segloop.fusion.report_files.write_rater_report`)
   measures each rater against the STAPLE consensus: the boundary bias it
   finds is compared with the bias each rater was given, and STAPLE's
   sensitivity ranks the raters;
2. the raters are fused (majority vote, weighted vote, STAPLE) and every
   fusion, and every single rater, is scored against the template's mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segloop.data.mni152 import load_mni152
from segloop.fusion import fuse
from segloop.fusion.report_files import write_rater_report
from segloop.io import Image, write_image
from segloop.metrics import dice
from segloop.simulate.raters import simulated_raters

__all__ = ["CENTRES", "RATERS", "step_raters"]

#: Each simulated rater's habit (arguments of simulate_rater).
RATERS: dict[str, dict[str, Any]] = {
    "ana": {"shift_mm": (2.0, 0.0)},
    "ben": {"grow_mm": 2.0},
    "chloe": {"grow_mm": -2.0},
    "dev": {"miss": 0.1},
    "eli": {"grow_mm": 1.0, "shift_mm": (0.0, 2.0)},
}
#: The centre of each rater.
CENTRES = {"ana": "paris", "ben": "paris", "chloe": "lyon", "dev": "lyon", "eli": "lyon"}
#: Axial slices of the brain, as fractions of its height.
SLICE_FRACTIONS = (0.35, 0.45, 0.55, 0.6, 0.65, 0.75)


def _write_folder(ctx, t1: np.ndarray, brain: np.ndarray, spacing) -> tuple[Any, dict]:
    root = ctx.path("raters", "data", "images").parent
    zs = np.nonzero(brain.any(axis=(1, 2)))[0]
    slices = [int(zs[0] + f * (zs[-1] - zs[0])) for f in SLICE_FRACTIONS]
    masks = {}
    for i, z in enumerate(slices):
        name = f"slice{z:03d}.png"
        image = t1[z].astype(np.float32)
        scaled = np.clip(255 * image / max(float(np.percentile(image, 99.5)), 1e-6), 0, 255)
        write_image(Image(scaled.astype(np.uint8)), root / "images" / name)
        drawn = simulated_raters(brain[z], RATERS, spacing=spacing[1:], seed=100 * i)
        for rater, mask in drawn.items():
            write_image(Image(mask.astype(np.uint8), kind="label"),
                        root / "labels" / rater / name)
        masks[name] = (brain[z], drawn)
    lines = ["rater\tcentre"] + [f"{r}\t{c}" for r, c in CENTRES.items()]
    (root / "raters.tsv").write_text("\n".join(lines) + "\n")
    return root, masks


def _fusion_scores(masks: dict) -> dict[str, float]:
    scores: dict[str, list[float]] = {}
    for truth, drawn in masks.values():
        for method in ("majority", "weighted", "staple"):
            scores.setdefault(method, []).append(dice(fuse(drawn, method) > 0, truth))
        for rater, mask in drawn.items():
            scores.setdefault(rater, []).append(dice(mask, truth))
    return {k: round(float(np.mean(v)), 4) for k, v in scores.items()}


def step_raters(ctx) -> dict[str, Any]:
    """Simulated raters of known bias: the report recovers them; fusion beats most raters."""
    mni = ctx.cache.get("mni") or load_mni152()
    brain = mni.brain.array > 0
    root, masks = _write_folder(ctx, mni.t1.array, brain, mni.t1.spacing)
    report = write_rater_report(root, ctx.out / "raters" / "report", overwrite=True,
                                groups=CENTRES, group_attribute="centre")
    raters = report["raters"]
    given = {r: float(spec.get("grow_mm", 0.0)) for r, spec in RATERS.items()}
    recovered = {r: round(raters[r]["boundary_bias_mm"], 3) for r in RATERS}
    staple_rank = sorted(RATERS, key=lambda r: -raters[r]["staple_sensitivity"])
    fusion = _fusion_scores(masks)
    groups = report["groups"]
    best = max(RATERS, key=lambda r: fusion[r])
    lines = [
        f"{len(RATERS)} simulated raters x {len(masks)} axial slices of the brain "
        f"(plain folder `raters/data`: images/ + labels/<rater>/ + raters.tsv)",
        "boundary bias given vs found (mm, > 0 outside): " + ", ".join(
            f"{r} {given[r]:+.1f}/{recovered[r]:+.2f}" for r in RATERS if r != "dev")
        + f"; dev, who misses 10 % in blobs: {recovered['dev']:+.2f} (the holes' edges)",
        "STAPLE sensitivity, best first: " + ", ".join(
            f"{r} {raters[r]['staple_sensitivity']:.3f}" for r in staple_rank),
        f"inter-rater Dice within centres {groups['within']:.3f}, between "
        f"{groups['between']:.3f}; report in {report['seconds']:.1f} s "
        "(raters/report/: report.json, CSV, agreement.png, bias.png, overlay.png)",
        "Dice vs the template mask: majority {majority:.3f}, weighted {weighted:.3f}, "
        "STAPLE {staple:.3f}; raters ".format(**fusion) + ", ".join(
            f"{r} {fusion[r]:.3f}" for r in RATERS) + f" (best single rater: {best})",
    ]
    return {
        "raters": {r: {"given_grow_mm": given[r], "boundary_bias_mm": recovered[r],
                       "volume_bias": round(raters[r]["volume_bias"], 4),
                       "staple_sensitivity": round(raters[r]["staple_sensitivity"], 4),
                       "staple_specificity": round(raters[r]["staple_specificity"], 4)}
                   for r in RATERS},
        "staple_rank": staple_rank,
        "groups": {"within": groups["within"], "between": groups["between"]},
        "fusion_dice": fusion,
        "report_seconds": report["seconds"],
        "files": {name: str(path) for name, path in report["files"].items()},
        "report": lines,
    }
