"""Predictions of image files and folders, written beside their names (``segloop predict``).

:func:`predict_paths` predicts one image file or every image file of a folder
(:func:`list_inputs`) with a :class:`segloop.learn.predict.Predictor` and
writes, for an input ``NAME.EXT``, ``NAME_seg.EXT`` (class indices, the input's
geometry; :func:`output_suffix` gives the extension), optionally the
probabilities (``NAME_prob*``: float32, or 16-bit PNG holding
``round(p * 65535)``) and the uncertainty maps and scores. Existing outputs are
refused before anything is computed unless ``overwrite`` (the old files are
then kept as numbered versions).

Examples
--------
>>> output_suffix("scan.mhd"), output_suffix("volume.h5")
(('scan', '.mha'), ('volume', '.nii.gz'))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segloop.errors import SegloopError
from segloop.io import Image
from segloop.learn.predict import Prediction, Predictor, load_model

__all__ = ["list_inputs", "output_suffix", "predict_paths"]


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


def list_inputs(inputs, *, skip_outputs: bool = False) -> list[Path]:
    """The image files to predict: ``inputs`` itself, or the image files directly in a folder.

    ``skip_outputs`` leaves out files named like predictions (``*_seg``,
    ``*_prob*``, ``*_entropy``, ``*_variance``), for a folder that is also the output.
    """
    from segloop.errors import DatasetError, FileMissingError
    from segloop.io import format_of

    root = Path(inputs)
    if not root.exists():
        raise FileMissingError("input does not exist", path=root)
    if not root.is_dir():
        return [root]
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


def _planned(path: Path, out: Path, *, soft: bool, classes, activation: str,
             uncertainty: bool) -> list[Path]:
    stem, ext = output_suffix(path)
    files = [out / f"{stem}_seg{ext}"]
    if soft:
        tags = ["_prob"] if len(classes) == 1 else [f"_prob-{c}" for c in classes]
        files += [out / f"{stem}{t}{ext}" for t in tags]
    if uncertainty:
        files += [out / f"{stem}_{m}.nii.gz" for m in ("entropy", "variance")]
    return files


def predict_paths(model, inputs, output_dir, *, soft: bool = False, tta: bool | None = None,
                  mc: int = 0, uncertainty: bool = False, overwrite: bool = False,
                  device=None, read_options: dict | None = None) -> list[Path]:
    """Predict an image file or every image file of a folder; write the results.

    For an input ``NAME.EXT`` (see :func:`output_suffix` for the extension):
    ``NAME_seg.EXT`` (class indices, the input's geometry); with ``soft``,
    ``NAME_prob.EXT`` (one foreground class) or ``NAME_prob-CLASS.EXT``
    (several): float32, or 16-bit PNG holding ``round(p * 65535)``; with
    uncertainty, ``NAME_entropy.nii.gz``, ``NAME_variance.nii.gz`` and one
    ``uncertainty.json`` ``{input file name: scores}`` for the run.

    Parameters
    ----------
    model : str, pathlib.Path or Predictor
        A checkpoint file or a loaded predictor.
    inputs : str or pathlib.Path
        An image file, or a folder whose image files are all predicted.
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
        Passed to :func:`segloop.io.read_image` (HDF5 ``axes``/``spacing``, DICOM ``series``).

    Returns
    -------
    list of pathlib.Path
        Every file written.
    """
    from segloop.errors import OutputExistsError
    from segloop.io import read_image, write_image
    from segloop.io.files import write_json

    predictor = model if isinstance(model, Predictor) else load_model(model, device=device)
    inf = predictor.config.inference
    uncertainty = bool(uncertainty or mc)
    mc = int(mc or (inf.mc_samples if uncertainty else 0))
    tta_flag = inf.tta if tta is None else bool(tta)
    out = Path(output_dir)
    files = list_inputs(inputs, skip_outputs=Path(inputs).resolve() == out.resolve())
    plans = {f: _planned(f, out, soft=soft, classes=predictor.classes,
                         activation=predictor.activation, uncertainty=uncertainty)
             for f in files}
    targets = [p for ps in plans.values() for p in ps]
    if uncertainty:
        targets.append(out / "uncertainty.json")
    if not overwrite:
        for target in targets:
            if target.exists():
                raise OutputExistsError("exists; pass --overwrite to replace it (the old file "
                                        "is kept as a numbered version)", path=target)
    out.mkdir(parents=True, exist_ok=True)
    written, scores = [], {}
    for f in files:
        image = read_image(f, **(read_options or {}))
        plan = iter(plans[f])
        if uncertainty:
            result = predictor.uncertainty(image, mc=mc, tta=tta_flag or not mc, soft=soft)
            pred = result.prediction if not mc else predictor.predict(image, tta=tta, soft=soft)
            scores[f.name] = result.scores
        else:
            pred = predictor.predict(image, tta=tta, soft=soft)
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
