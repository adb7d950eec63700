"""Demo step: the loop on the ``learn`` step's model — rank, pre-annotate, correct, fine-tune.

The U-Net of the ``learn`` step plays its part in the annotation loop:

1. **pre-annotation queue** (:func:`segloop.learn.queue.preannotate`): it
   predicts every held-out slab and ranks them by the ``entropy`` strategy
   (the most uncertain first), writing ``queue.json`` / ``queue.csv`` and the
   predicted labels — what an annotator opens next;
2. **scribble fine-tuning** (BIFSeg, :class:`segloop.learn.finetune.FinetuneSession`)
   on slices of the top-ranked slab: for the tissue (grey or white matter:
   one connected object per slice) the model segments worst there, the
   simulated annotator draws scribbles (a foreground stroke along the
   tissue's skeleton, a background ring, then strokes on the largest
   errors) and the model's probabilities, cut by a CRF, are fine-tuned on that
   image; beside graph cut alone with the same simulated user. The shared
   model is not changed (the session trains a copy).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from segloop.data.mni152 import TISSUE_NAMES

__all__ = ["SCRIBBLES", "SLICES", "step_loop"]

#: Scribbles per slice (the first foreground and background strokes count as 2).
SCRIBBLES = 4
#: Slices of the top-ranked slab corrected with scribbles.
SLICES = 3
#: Tissues the simulated annotator may correct: those that are one connected object on an axial
#: slice (CSF falls apart into many pieces; a scribble session segments one object).
LABELS = (2, 3)


def _quiet(line: str) -> None:
    pass


def _worst_class(model, volume, labels) -> tuple[int, float]:
    """The class among ``labels`` with the lowest Dice of the model's prediction on ``volume``."""
    label = model.to_label(model.infer(volume.image, slice_axis=volume.slice_axis),
                           slice_axis=volume.slice_axis)
    dice = {}
    for k in labels:
        a, b = label == k, np.asarray(volume.label) == k
        total = int(a.sum()) + int(b.sum())
        dice[k] = 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total
    k = min(dice, key=dice.get)
    return k, dice[k]


def step_loop(ctx) -> dict[str, Any]:
    """Rank the held-out slabs, then correct the most uncertain one with scribbles."""
    if importlib.util.find_spec("torch") is None or "learn" not in ctx.results \
            or "skipped" in ctx.results["learn"]:
        return {"skipped": "needs the learn step's model (the `learn` extra: torch, MONAI)",
                "report": ["Skipped: no model from the `learn` step."]}
    from segloop.bench.finetune import cases_of, play
    from segloop.learn.data import prepare_data
    from segloop.learn.finetune import FinetuneSession
    from segloop.learn.predict import load_model
    from segloop.learn.queue import preannotate
    from segloop.tools import GraphCutSession

    model = load_model(ctx.path("learn", "run") / "best.pt", device="cpu")
    queue = preannotate(model, ctx.path("learn", "heldout"), ctx.path("loop", "queue"),
                        strategy="entropy", log=_quiet)
    top = queue.items[0]
    volumes = {v.id: v for v in prepare_data(model.config, log=_quiet).test}
    volume = volumes[top.id.split(".")[0]]  # the slab's file name, its case id + .nii.gz
    label, model_dice = _worst_class(model, volume, LABELS)
    cases = cases_of([volume], label=label, slices=SLICES, limit=None, two_d=True)
    rows = []
    for case in cases:
        image, truth, sp = case["image"], case["truth"], case["spacing"]
        outputs = model.infer(image)
        initial = model.to_label(outputs) == label
        start = 2.0 * (initial & truth).sum() / max(1, initial.sum() + truth.sum())
        bif, bif_s = play(FinetuneSession(model, image, label=label, spacing=sp, outputs=outputs),
                          truth, scribbles=SCRIBBLES, spacing=sp)
        cut, cut_s = play(GraphCutSession(image, channel_axis=0, spacing=sp), truth,
                          scribbles=SCRIBBLES, spacing=sp)
        rows.append({"slice": case["slice"], "model": round(float(start), 4),
                     "bifseg": round(bif[-1], 4), "graphcut": round(cut[-1], 4),
                     "bifseg_seconds": round(float(np.mean(bif_s)), 2),
                     "graphcut_seconds": round(float(np.mean(cut_s)), 2)})
    name = TISSUE_NAMES[label]
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("model", "graphcut", "bifseg")}
    table = [f"| slice {r['slice']} | {r['model']:.3f} | {r['graphcut']:.3f} | "
             f"{r['bifseg']:.3f} | {r['bifseg_seconds']:.1f} s |" for r in rows]
    report = [
        f"- Pre-annotation queue of the {len(queue.items)} held-out slabs, most uncertain first "
        "(`entropy` strategy): " + ", ".join(f"{i.id} ({i.score:.3f})" for i in queue.items[:4])
        + f"; `{queue.json_path.relative_to(ctx.out)}`, predictions in "
        "`loop/queue/predictions/`.",
        f"- The top slab's worst tissue is {name} (model Dice {model_dice:.3f} on the slab). "
        f"The simulated annotator corrects {len(rows)} of its slices with {SCRIBBLES} "
        "scribbles each (foreground skeleton + background ring, then strokes on the largest "
        "errors); the shared model is untouched:", "",
        f"| {name} Dice | model | graph cut alone | BIFSeg (CRF + fine-tuning) | "
        "seconds per scribble |", "|---|---|---|---|---|", *table,
        f"| mean | {means['model']:.3f} | {means['graphcut']:.3f} | {means['bifseg']:.3f} | |",
    ]
    return {"queue": [{"id": i.id, "score": round(float(i.score), 5)} for i in queue.items],
            "corrected": {"slab": volume.id, "tissue": name, "slab_model_dice": model_dice,
                          "scribbles": SCRIBBLES, "slices": rows,
                          "mean": {k: round(v, 4) for k, v in means.items()}},
            "files": {"queue": str(queue.json_path.relative_to(ctx.out))},
            "report": report}
