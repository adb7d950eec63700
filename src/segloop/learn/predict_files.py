"""Predictions of image files, folders and datasets, written by name (``segloop predict``).

:func:`predict_paths` predicts one image file, every image file of a folder
(:func:`list_inputs`), one file per contrast of a multi-contrast model, or the
cases of a dataset folder, with a :class:`segloop.learn.predict.Predictor` and
writes, for an input ``NAME.EXT``, ``NAME_seg.EXT`` (class indices, the input's
geometry; :func:`output_suffix` gives the extension), optionally the
probabilities (``NAME_prob*``: float32, or 16-bit PNG holding
``round(p * 65535)``) and the uncertainty maps and scores. Existing outputs are
refused before anything is computed unless ``overwrite`` (the old files are
then kept as numbered versions).

A FiLM model (``model.film``) is conditioned on each input's metadata: the
``meta`` values given (``segloop predict --meta KEY=VALUE``) for every input,
completed by each image's own metadata; the cases of a dataset folder bring
theirs as in training (:func:`segloop.learn.metadata_values.case_values`: the
``model.film.table``, the case's metadata, its contrast), ``meta`` overriding
them. ``data.split_channels`` models predict each channel of a dataset's
cases as a case of its own (``ID_NAME_seg.EXT``).

Examples
--------
>>> output_suffix("scan.mhd"), output_suffix("volume.h5")
(('scan', '.mha'), ('volume', '.nii.gz'))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segloop.errors import SegloopError
from segloop.io import Image
from segloop.learn.predict import Prediction, Predictor, load_model

__all__ = ["list_inputs", "output_suffix", "predict_paths", "prediction_jobs"]


#: Formats a prediction is written in as they are; the others become NIfTI (JPEG: PNG).
_KEEP_SUFFIX = {"nifti", "mgh", "png", "tiff"}
_RENAME = {".nhdr": ".nrrd", ".mhd": ".mha", ".nrrd": ".nrrd", ".mha": ".mha"}


def output_suffix(path) -> tuple[str, str]:
    """``(stem, extension)`` of the prediction written for the input ``path``.

    NIfTI, MGH, PNG and TIFF inputs keep their extension, NRRD / MetaImage
    become ``.nrrd`` / ``.mha``, JPEG-like inputs ``.png``, HDF5 and DICOM
    ``.nii.gz``.

    Examples
    --------
    >>> output_suffix("sub-01_T2w.nii.gz"), output_suffix("slice.jpg")
    (('sub-01_T2w', '.nii.gz'), ('slice', '.png'))
    """
    from segloop.io import format_of
    from segloop.io.files import compound_suffix

    p = Path(path)
    suffix = compound_suffix(p)
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    fmt = format_of(p)
    if fmt in _KEEP_SUFFIX:
        return stem, suffix
    if suffix in _RENAME:
        return stem, _RENAME[suffix]
    return stem, ".png" if fmt == "jpeg" else ".nii.gz"


_OUTPUT_TAGS = ("_seg", "_prob", "_entropy", "_variance")


def _image_files(root: Path, *, skip_outputs: bool) -> list[Path]:
    """``[root]`` for a file; the image files directly in a folder; [] when missing."""
    from segloop.io import format_of

    if not root.is_dir():
        return [root] if root.exists() else []
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            format_of(entry)
        except SegloopError:  # not an image file: not an input
            continue
        stem = output_suffix(entry)[0]
        if skip_outputs and any(tag in stem for tag in _OUTPUT_TAGS):
            continue
        found.append(entry)
    return found


def list_inputs(inputs, *, skip_outputs: bool = False) -> list[Path]:
    """The image files to predict: ``inputs`` itself, or the image files directly in a folder.

    ``skip_outputs`` leaves out files named like predictions (``*_seg``,
    ``*_prob*``, ``*_entropy``, ``*_variance``), for a folder that is also the output.
    """
    from segloop.errors import DatasetError, FileMissingError

    root = Path(inputs)
    if not root.exists():
        raise FileMissingError("input does not exist", path=root)
    found = _image_files(root, skip_outputs=skip_outputs)
    if not found:
        raise DatasetError("no image file to predict in this folder", path=root)
    return found


def _soft_images(pred: Prediction, activation: str) -> list[tuple[str, Image]]:
    """``(tag, image)`` per class: ``_prob`` for one class, ``_prob-NAME`` for several."""
    probs = pred.probabilities
    values = probs.array[..., 1:] if activation == "softmax" else probs.array
    many = values.shape[-1] > 1
    out = []
    for i, name in enumerate(pred.classes):
        tag = f"_prob-{name}" if many else "_prob"
        out.append((tag, Image(values[..., i], spacing=probs.spacing, origin=probs.origin,
                               direction=probs.direction, kind="soft",
                               metadata=dict(probs.metadata))))
    return out


def _write_soft(image: Image, path: Path, overwrite: bool) -> None:
    """Float file, or a 16-bit PNG holding ``round(p * 65535)``."""
    from segloop.io import write_image

    if path.suffix.lower() != ".png":
        write_image(image, path, overwrite=overwrite)
        return
    from PIL import Image as PILImage

    from segloop.io.files import atomic_output

    scaled = np.rint(np.clip(image.array, 0, 1) * 65535).astype(np.uint16)
    with atomic_output(path, overwrite=overwrite) as tmp:
        PILImage.fromarray(scaled).save(tmp, format="PNG")


@dataclass
class _Job:
    """One prediction to write: its name, output stem and extension, and how to read it."""

    name: str  # key of uncertainty.json: the input file name or the case id
    stem: str
    ext: str
    read: Callable[[], list[Image]]
    meta: dict | None = None  # metadata values of a FiLM model (None: the image's own)


def _file_job(files: list[Path], read_options: dict) -> _Job:
    from segloop.io import read_image

    stem, ext = output_suffix(files[0])
    return _Job(files[0].name, stem, ext,
                lambda: [read_image(f, **read_options) for f in files])


def _contrasts(predictor: Predictor) -> list[str]:
    return list(predictor.config.data.contrasts or [])


def _dataset_jobs(ds, predictor: Predictor) -> list[_Job]:
    """One job per case of a dataset having the model's contrasts (read as training reads them)."""
    from segloop.errors import DatasetError
    from segloop.learn.channel_cases import split_channels
    from segloop.learn.data import contrast_sources

    d = predictor.config.data
    jobs = []
    for case in sorted(split_channels(ds.cases, d.split_channels), key=lambda c: c.id):
        sources = contrast_sources(case, d)  # one missing: an error
        if sources is None:  # none of them (BIDS: a case of another contrast)
            continue
        jobs.append(_Job(case.id, case.id.replace("/", "_"), output_suffix(case.image)[1],
                         lambda case=case, sources=sources: [case.read_image(n)
                                                             for n in sources],
                         predictor.case_meta(case)))
    if not jobs:
        raise DatasetError(f"no case has the model's contrasts {_contrasts(predictor)} "
                           "(data.contrasts)", path=ds.root)
    return jobs


def prediction_jobs(inputs, predictor: Predictor, out: Path, read_options: dict) -> list[_Job]:
    """What to predict: files, one file per contrast, or the cases of a dataset folder."""
    from segloop.errors import DatasetError, FileMissingError, InvalidArgumentError
    from segloop.io import open_dataset

    paths = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
    contrasts, named = _contrasts(predictor), predictor._named()
    if not paths:
        raise InvalidArgumentError("no input to predict")
    if len(paths) > 1:  # one file per contrast, in the config's order
        for p in paths:
            if not p.is_file():
                raise FileMissingError("no such image file (several inputs are one file per "
                                       "contrast)", path=p)
        if contrasts and len(paths) != len(contrasts):
            raise InvalidArgumentError(
                f"{len(paths)} input files; the model{named} takes {len(contrasts)} "
                f"(data.contrasts: {', '.join(contrasts)}), one file per contrast in this order")
        return [_file_job(paths, read_options)]
    root = paths[0]
    if root.is_file():
        return [_file_job([root], read_options)]
    if not root.is_dir():
        raise FileMissingError("input does not exist", path=root)
    loose = _image_files(root, skip_outputs=root.resolve() == out.resolve())
    if loose and len(contrasts) < 2:
        return [_file_job([f], read_options) for f in loose]
    try:
        ds = open_dataset(root, format=predictor.config.data.layout)
    except DatasetError:
        if loose:
            raise InvalidArgumentError(
                f"a folder of single images; the model{named} takes the contrasts "
                f"{', '.join(contrasts)} (data.contrasts): pass one file per contrast in this "
                "order, or a dataset folder whose cases have them", path=root) from None
        if len(contrasts) < 2:
            raise DatasetError("no image file to predict in this folder", path=root) from None
        raise
    return _dataset_jobs(ds, predictor)


def _check_meta(predictor: Predictor, meta: dict) -> None:
    """Refuse metadata for a plain model, or fields the model does not know (``--meta``)."""
    from segloop.errors import InvalidArgumentError

    encoder = getattr(getattr(predictor, "network", None), "meta_encoder", None)
    if not getattr(predictor, "meta_dim", 0) or encoder is None:
        raise InvalidArgumentError(f"--meta: the model{predictor._named()} takes no metadata "
                                   "(it is not a FiLM model: no model.film)")
    encoder.check_names(meta, what="--meta")


def _planned(job: _Job, out: Path, *, soft: bool, classes, uncertainty: bool) -> list[Path]:
    files = [out / f"{job.stem}_seg{job.ext}"]
    if soft:
        tags = ["_prob"] if len(classes) == 1 else [f"_prob-{c}" for c in classes]
        files += [out / f"{job.stem}{t}{job.ext}" for t in tags]
    if uncertainty:
        files += [out / f"{job.stem}_{m}.nii.gz" for m in ("entropy", "variance")]
    return files


def predict_paths(model, inputs, output_dir, *, soft: bool = False, tta: bool | None = None,
                  mc: int = 0, uncertainty: bool = False, overwrite: bool = False,
                  device=None, read_options: dict | None = None,
                  meta: dict | None = None) -> list[Path]:
    """Predict an image file, every image file of a folder, or a dataset; write the results.

    For an input ``NAME.EXT`` (see :func:`output_suffix` for the extension):
    ``NAME_seg.EXT`` (class indices, the input's geometry); with ``soft``,
    ``NAME_prob.EXT`` (one foreground class) or ``NAME_prob-CLASS.EXT``
    (several): float32, or 16-bit PNG holding ``round(p * 65535)``; with
    uncertainty, ``NAME_entropy.nii.gz``, ``NAME_variance.nii.gz`` and one
    ``uncertainty.json`` ``{input file name: scores}`` for the run. The cases
    of a dataset folder are named by their id (``ID_seg.EXT``, the
    extension of the case's image), and so are their scores.

    A model of several contrasts (``data.contrasts``) takes one file per
    contrast, in the config's order (named after the first), or a dataset
    folder (:func:`segloop.io.open_dataset`, layout ``data.layout``) whose
    cases give the contrasts by name as in training (the case's contrast or
    an extra image; a case missing one is an error naming it, a case having
    none is skipped).

    Parameters
    ----------
    model : str, pathlib.Path or Predictor
        A checkpoint file or a loaded predictor.
    inputs : str, pathlib.Path or sequence of them
        An image file; a folder whose image files are all predicted (a folder
        without loose image files, or any folder for a model of several
        contrasts: a dataset whose cases are predicted); or several files,
        one per contrast.
    output_dir : str or pathlib.Path
        Created when missing.
    soft, tta : bool
        Write probabilities; average flipped passes (default ``inference.tta``).
    mc : int
        MC-dropout passes for uncertainty (implies ``uncertainty``).
    uncertainty : bool
        Write the maps and scores; samples: ``mc`` passes, else
        ``inference.mc_samples``, and the flips when ``tta`` (TTA alone when
        neither gives MC passes).
    overwrite : bool
        Replace existing outputs (old files kept as ``NAME.~N~``); otherwise
        an existing output is an error before anything is computed.
    device : str, optional
        As for :func:`segloop.learn.predict.load_model`.
    read_options : dict, optional
        Passed to :func:`segloop.io.read_image` (HDF5 ``axes``/``spacing``,
        DICOM ``series``) for files; a dataset's cases use their own.
    meta : dict, optional
        Metadata values ``{field: value}`` of a FiLM model for every input
        (see the module docstring).

    Returns
    -------
    list of pathlib.Path
        Every file written.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        ``meta`` for a model without metadata, or naming a field the model
        does not know; inputs that do not fit the model.
    """
    from segloop.errors import OutputExistsError
    from segloop.io import write_image
    from segloop.io.files import write_json

    predictor = model if isinstance(model, Predictor) else load_model(model, device=device)
    inf = predictor.config.inference
    uncertainty = bool(uncertainty or mc)
    mc = int(mc or (inf.mc_samples if uncertainty else 0))
    tta_flag = inf.tta if tta is None else bool(tta)
    out = Path(output_dir)
    if meta:
        _check_meta(predictor, meta)
    jobs = prediction_jobs(inputs, predictor, out, dict(read_options or {}))
    plans = [_planned(job, out, soft=soft, classes=predictor.classes, uncertainty=uncertainty)
             for job in jobs]
    targets = [p for ps in plans for p in ps]
    if uncertainty:
        targets.append(out / "uncertainty.json")
    if not overwrite:
        for target in targets:
            if target.exists():
                raise OutputExistsError("exists; pass --overwrite to replace it (the old file "
                                        "is kept as a numbered version)", path=target)
    out.mkdir(parents=True, exist_ok=True)
    written, scores = [], {}
    for job, planned in zip(jobs, plans, strict=True):
        image = job.read()
        plan = iter(planned)
        values = {**(job.meta or {}), **(meta or {})}
        kw = {"meta": values} if values else {}  # only FiLM models take metadata
        if uncertainty:
            result = predictor.uncertainty(image, mc=mc, tta=tta_flag or not mc, soft=soft, **kw)
            pred = (result.prediction if not mc
                    else predictor.predict(image, tta=tta, soft=soft, **kw))
            scores[job.name] = result.scores
        else:
            pred = predictor.predict(image, tta=tta, soft=soft, **kw)
        target = next(plan)
        write_image(pred.label, target, overwrite=overwrite)
        written.append(target)
        if soft:
            for _, img in _soft_images(pred, predictor.activation):
                target = next(plan)
                _write_soft(img, target, overwrite)
                written.append(target)
        if uncertainty:
            for name in ("entropy", "variance"):
                target = next(plan)
                write_image(result.maps[name], target, overwrite=overwrite)
                written.append(target)
    if uncertainty:
        written.append(write_json(scores, out / "uncertainty.json", overwrite=overwrite))
    return written
