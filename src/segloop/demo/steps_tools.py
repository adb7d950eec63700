"""Demo step: the smart tools on the MNI152 template, scored against its tissue map."""

from __future__ import annotations

from typing import Any

import edt
import numpy as np

from segloop.data.mni152 import load_mni152
from segloop.demo.figures import slice_overlay
from segloop.metrics import dice
from segloop.simulate import next_click
from segloop.tools import (
    BoxClicksSession,
    LivewireSession,
    interpolate_slices,
    keep_largest,
    polygon_mask,
)
from segloop.tools.contour import mask_contour

__all__ = ["step_tools", "ventricle"]


def ventricle(tissue: np.ndarray, brain: np.ndarray, spacing) -> np.ndarray:
    """One lateral ventricle: the largest CSF component deeper than 12 mm in the brain.

    The depth condition separates the ventricles from the CSF around the
    brain, which is connected to the sulci.
    """
    depth = edt.edt(brain, anisotropy=spacing)
    return keep_largest(((tissue == 1) & (depth > 12.0)).astype(np.uint8)) > 0


def _anchors(truth2d: np.ndarray, n: int) -> list[tuple[int, int]]:
    contour = mask_contour(truth2d)
    idx = np.linspace(0, len(contour), n, endpoint=False).astype(int)
    return [(int(round(y)), int(round(x))) for y, x in contour[idx]]


def step_tools(ctx) -> dict[str, Any]:
    """Box + clicks, livewire and slice interpolation on real anatomy, with Dice."""
    mni = ctx.cache.get("mni") or load_mni152()
    t1, spacing = mni.t1.array, mni.t1.spacing
    vent = ventricle(mni.tissue.array, mni.brain.array > 0, spacing)
    z = int(np.argmax(vent.sum(axis=(1, 2))))
    image2d, truth2d = t1[z], vent[z]
    truth2d = keep_largest(truth2d.astype(np.uint8)) > 0  # one ventricle at a time

    # box + clicks: the tight box, then clicks where the simulated user would put them
    ys, xs = np.nonzero(truth2d)
    session = BoxClicksSession(image2d, spacing=spacing[1:])
    session.set_box(((ys.min(), xs.min()), (ys.max(), xs.max())))
    box_dice = [round(dice(session.mask, truth2d), 4)]
    for _ in range(3):
        click = next_click(session.mask > 0, truth2d)
        if click is None:
            break
        session.add_click(click[0], positive=click[1])
        box_dice.append(round(dice(session.mask, truth2d), 4))

    # livewire around the whole brain outline on the same slice, vs a polygon
    brain2d = mni.brain.array[z] > 0
    anchors = _anchors(brain2d, 6)
    wire = LivewireSession(image2d, spacing=spacing[1:])
    for a in anchors:
        wire.add_anchor(a)
    wire.close()
    lw = wire.mask() > 0
    poly = polygon_mask(brain2d.shape, anchors) > 0
    lw_dice, poly_dice = dice(lw, brain2d), dice(poly, brain2d)

    # slice interpolation of the ventricle from every k-th axial slice
    zs = np.nonzero(vent.any(axis=(1, 2)))[0]
    interpolation = {}
    for every in (3, 5):
        given = sorted(set(range(int(zs[0]), int(zs[-1]) + 1, every)) | {int(zs[-1])})
        drawn = np.zeros(vent.shape, np.uint8)
        drawn[given] = vent[given]
        filled = interpolate_slices(drawn, axis=0, spacing=spacing) > 0
        unseen = [k for k in range(int(zs[0]), int(zs[-1]) + 1) if k not in given]
        interpolation[every] = {"given": len(given), "unseen": len(unseen),
                                "dice_unseen": round(dice(filled[unseen], vent[unseen]), 4),
                                "work_saved": round((len(given) + len(unseen)) / len(given), 2)}

    fig = slice_overlay(image2d, {"truth": truth2d, "box + 3 clicks": session.mask > 0,
                                  "brain": brain2d, "livewire (6 anchors)": lw},
                        ctx.path("figures", "tools.png"), spacing=spacing[1:],
                        title=f"Smart tools on MNI152 axial slice z={z}")
    report = [
        f"- Box + clicks on a lateral ventricle (slice z={z}): Dice {box_dice[0]:.3f} from the "
        f"box alone, {box_dice[-1]:.3f} after {len(box_dice) - 1} simulated clicks.",
        f"- Livewire around the brain with 6 anchors: Dice {lw_dice:.3f} "
        f"(a polygon through the same 6 points: {poly_dice:.3f}).",
        "- Slice interpolation of the ventricle (a thin, C-shaped object: a hard case) from "
        "every k-th axial slice: "
        + "; ".join(f"k={k}: Dice {v['dice_unseen']:.3f} on the {v['unseen']} slices not given, "
                    f"{v['work_saved']}× fewer slices to draw" for k, v in interpolation.items())
        + ".",
        f"- Figure: `{fig.relative_to(ctx.out)}`.",
    ]
    return {"slice": z, "boxclicks_dice": box_dice,
            "livewire_dice": round(lw_dice, 4), "polygon_dice": round(poly_dice, 4),
            "interpolation": {f"every_{k}": v for k, v in interpolation.items()},
            "files": {"figure": str(fig.relative_to(ctx.out))}, "report": report}
