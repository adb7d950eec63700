"""Pre-annotation: predict unlabelled images, rank them by a strategy, export the queue.

:func:`preannotate` is the library side of the loop's "pre-annotate new
images" step (the server and ``segloop preannotate`` call it):

1. every input is predicted with the model and its label written on the
   input's grid, as ``segloop predict`` writes it
   (``OUT/predictions/NAME_seg.EXT``; inputs as
   :func:`segloop.learn.predict_files.predict_paths` takes them: an image
   file, a folder of image files, one file per contrast, or a dataset folder
   of any :func:`segloop.io.open_dataset` layout, labelled or not);
2. the images, pre-processed as the network sees them
   (:meth:`~segloop.learn.predict.Predictor.prepare`), are ranked by a
   selection strategy (:func:`segloop.learn.strategies.rank`);
3. the queue is written in rank order: ``OUT/queue.json`` (``strategy``,
   ``model``, ``created`` (UTC, ISO 8601), ``seed``, ``items``: ``rank``
   (1 first), ``id``, ``images`` (the input file(s)), ``prediction``,
   ``score``) and the same items in ``OUT/queue.csv``.

A FiLM model is conditioned on each input's metadata in both steps, as
``segloop predict`` conditions it (a dataset case's values as in training,
else the image's own).

Existing outputs are refused before anything is computed unless
``overwrite``; then the old files are kept as numbered versions
(``NAME.~N~``, :func:`segloop.io.files.keep_version`). The pre-processed
images of the whole run are held in memory for the ranking.

Examples
--------
>>> QueueItem(1, "a.png", ["in/a.png"], "out/predictions/a_seg.png", 0.25).row()
{'rank': 1, 'id': 'a.png', 'score': 0.25, 'prediction': 'out/predictions/a_seg.png', \
'images': 'in/a.png'}
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from segloop.errors import OutputExistsError
from segloop.io import write_image
from segloop.io.files import atomic_output, write_json
from segloop.learn.data import Volume
from segloop.learn.predict import Predictor, load_model
from segloop.learn.predict_files import prediction_jobs
from segloop.learn.strategies import check_strategy, rank

__all__ = ["Queue", "QueueItem", "preannotate"]

_CSV_COLUMNS = ("rank", "id", "score", "prediction", "images")


@dataclass
class QueueItem:
    """One image of the queue: its place, id, input file(s), prediction file and score."""

    rank: int
    id: str
    images: list[str]
    prediction: str
    score: float

    def row(self) -> dict:
        """The CSV row (image files joined by ``;``)."""
        return {"rank": self.rank, "id": self.id, "score": self.score,
                "prediction": self.prediction, "images": ";".join(self.images)}


@dataclass
class Queue:
    """A ranked pre-annotation queue and the files it was written to."""

    strategy: str
    model: str | None
    created: str
    seed: int
    items: list[QueueItem]
    json_path: Path | None = None
    csv_path: Path | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """What ``queue.json`` holds."""
        return {"strategy": self.strategy, "model": self.model, "created": self.created,
                "seed": self.seed, **self.extra, "items": [asdict(i) for i in self.items]}


def _volume(name: str, images: list, predictor: Predictor, meta: dict | None = None) -> Volume:
    """``images`` (one per contrast) pre-processed as the network sees them.

    ``meta``: a FiLM model's metadata values (a dataset case's); the volume
    carries their vector, as in training.
    """
    array, info = predictor.prepare(images)
    return Volume(name, "", array, None, tuple(float(s) for s in info["grid"]["spacing"]),
                  str(images[0].metadata.get("path", name)), info.get("slice_axis"), info,
                  meta=predictor.meta_vector(images, meta))


def _labelled(labelled, predictor: Predictor, out: Path, read_options: dict) -> list[Volume]:
    """Volumes as given, or the images of a file / folder / dataset (ids ``labelled/NAME``)."""
    if not isinstance(labelled, str | Path):
        return list(labelled)
    return [_volume(f"labelled/{job.name}", job.read(), predictor, job.meta)
            for job in prediction_jobs(labelled, predictor, out, read_options)]


def _write_csv(items: list[QueueItem], path: Path, overwrite: bool) -> Path:
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_CSV_COLUMNS)
        writer.writeheader()
        for item in items:
            writer.writerow(item.row())
    return path


def preannotate(model, inputs, out_dir, *, strategy: str = "entropy",
                labelled: Sequence[Volume] | str | Path = (), seed: int = 0,
                overwrite: bool = False, log: Callable[[str], None] | None = print,
                device=None, read_options: dict | None = None) -> Queue:
    """Predict ``inputs``, rank them with ``strategy`` and write the queue under ``out_dir``.

    Parameters
    ----------
    model : str, pathlib.Path or Predictor
        A checkpoint file (:func:`segloop.learn.predict.load_model`) or a
        loaded predictor.
    inputs : str, pathlib.Path or sequence of them
        An image file, a folder of image files, a dataset folder, or one file
        per contrast (as :func:`segloop.learn.predict_files.predict_paths`).
    out_dir : str or pathlib.Path
        Receives ``predictions/``, ``queue.json`` and ``queue.csv`` (created).
    strategy : str
        A name of :data:`segloop.learn.strategies.STRATEGIES`.
    labelled : sequence of Volume, or a path
        Images already labelled (``coreset`` keeps away from them): volumes
        on the network's grid, or one image file / folder / dataset folder
        read like ``inputs`` (ids ``labelled/NAME``).
    seed : int
        Seeds the strategy (random order, dropout masks, first core-set pick).
    overwrite : bool
        Replace existing outputs (old files kept as ``NAME.~N~``); otherwise an
        existing output is an error before anything is computed.
    log : callable or None
        Receives one line per predicted image.
    device : str, optional
        For a checkpoint path, as :func:`~segloop.learn.predict.load_model`.
    read_options : dict, optional
        Passed to :func:`segloop.io.read_image` for files.

    Returns
    -------
    Queue
        The items in rank order, with the paths of ``queue.json`` and ``queue.csv``.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        Unknown strategy, ``mc_dropout`` for a model without dropout, inputs
        the model cannot take.
    segloop.errors.OutputExistsError
        An output exists and ``overwrite`` is false.
    """
    check_strategy(strategy)
    log = log or (lambda line: None)
    predictor = model if isinstance(model, Predictor) else load_model(model, device=device)
    check_strategy(strategy, predictor)
    out = Path(out_dir)
    pred_dir = out / "predictions"
    options = dict(read_options or {})
    jobs = prediction_jobs(inputs, predictor, pred_dir, options)
    targets = [pred_dir / f"{job.stem}_seg{job.ext}" for job in jobs]
    json_path, csv_path = out / "queue.json", out / "queue.csv"
    if not overwrite:
        for target in [*targets, json_path, csv_path]:
            if target.exists():
                raise OutputExistsError("exists; pass --overwrite to replace it (the old file "
                                        "is kept as a numbered version)", path=target)
    known = _labelled(labelled, predictor, pred_dir, options)
    pool, files = [], []
    for n, (job, target) in enumerate(zip(jobs, targets, strict=True), start=1):
        images = job.read()
        pool.append(_volume(job.name, images, predictor, job.meta))
        files.append([str(im.metadata.get("path", job.name)) for im in images])
        write_image(predictor.predict(images, meta=job.meta).label, target, overwrite=overwrite)
        log(f"predicted {n}/{len(jobs)}: {target}")
    ranked = rank(strategy, pool, predictor, labelled=known, seed=seed)
    where = {job.name: (paths, target) for job, paths, target in zip(jobs, files, targets,
                                                                    strict=True)}
    items = [QueueItem(position, name, where[name][0], str(where[name][1]), float(score))
             for position, (name, score) in enumerate(ranked, start=1)]
    source = str(model) if isinstance(model, str | Path) else predictor.source
    queue = Queue(strategy, source, datetime.now(UTC).isoformat(timespec="seconds"), int(seed),
                  items, json_path, csv_path,
                  extra={"labelled": [v.id for v in known]} if known else {})
    write_json(queue.to_dict(), json_path, overwrite=overwrite)
    _write_csv(items, csv_path, overwrite)
    return queue
