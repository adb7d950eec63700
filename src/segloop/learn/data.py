"""Cases of a dataset as preprocessed in-memory volumes, split for training.

:func:`prepare_data` opens ``data.path`` with :func:`segloop.io.open_dataset`,
keeps the cases that have the configured contrasts and label(s), splits them
by group (``data.split``; :mod:`segloop.learn.splitting`) and reads each one through the cache of
:mod:`segloop.learn.cache`, so that a second run (and every epoch) never
re-reads the NIfTI/PNG/HDF5 files. Each case becomes a :class:`Volume`:

* the image, ``float32 (C, *spatial)``: contrasts (main image + ``extra_images``)
  and channels stacked first, cropped, normalised and resampled by
  :func:`segloop.learn.preprocess.preprocess_image` (the very steps inference
  repeats);
* the label: class indices ``uint8`` (``data.classes`` maps label values to
  classes ``1..K`` in their order, 0 stays background, any other value is an
  error), or with ``data.soft_labels`` one ``float32`` channel per class in
  [0, 1] (the mean of the binarised class masks of the listed labels, e.g. the
  7 raters of QUBIQ), resampled nearest-neighbour / linearly on the image grid.

Contrasts: ``data.contrasts`` names the input channels; each is the case's
main image when its ``contrast`` matches (case-insensitive) or an extra image of
that name. Cases having none of them are skipped (so on a BIDS dataset where
each contrast is a separate case, ``contrasts: [T2w]`` selects the T2w cases);
a case having some but not all is an error naming the case.

Examples
--------
>>> from pathlib import Path
>>> from segloop.io import Case
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "x", "contrasts": ["t1"]}}).data
>>> case = Case("c1", "s1", Path("c1_T1.nii.gz"), labels={"seg": Path("c1_seg.nii.gz")},
...             label="seg", contrast="T1")
>>> label_names(cfg, case), group_of(case, "subject")
(['seg'], 's1')
>>> [p.name for p in case_files(case, cfg)]
['c1_T1.nii.gz', 'c1_seg.nii.gz']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segloop.errors import DatasetError, InvalidArgumentError
from segloop.io import Case, Image, check_same_grid, open_dataset
from segloop.learn.cache import ArrayCache, cache_key
from segloop.learn.cascade_crop import crop_image
from segloop.learn.channel_cases import split_channels
from segloop.learn.config import Config, DataConfig
from segloop.learn.metadata import MetadataEncoder, build_spec
from segloop.learn.metadata_values import case_values, read_table
from segloop.learn.preprocess import preprocess_image, preprocess_settings, to_grid
from segloop.learn.splitting import group_of, split_groups

__all__ = ["PreparedData", "Volume", "case_files", "contrast_sources", "group_of", "label_names",
           "open_config_dataset", "prepare_data", "read_volume", "select_cases", "split_groups"]


@dataclass
class Volume:
    """One preprocessed case (see the module docstring).

    ``slice_axis`` is the spatial axis 2D models slice along (None for 2D
    images and 3D models; ``info["slice_axis"]``); ``info`` is what
    :func:`segloop.learn.preprocess.restore_geometry` needs; ``meta`` the
    case's metadata vector for a FiLM model (``float32 (D,)``,
    :mod:`segloop.learn.metadata`; None otherwise).
    """

    id: str
    group: str
    image: np.ndarray
    label: np.ndarray | None
    spacing: tuple[float, ...]
    source: str
    slice_axis: int | None = None
    info: dict = field(default_factory=dict, repr=False)
    meta: np.ndarray | None = field(default=None, repr=False)


@dataclass
class PreparedData:
    """The split volumes and what a checkpoint stores to preprocess new images alike."""

    train: list[Volume]
    val: list[Volume]
    test: list[Volume]
    in_channels: int
    preprocess: dict


# ----------------------------------------------------------------------------- cases
def label_names(cfg: DataConfig, case: Case) -> list[str]:
    """The label(s) of ``case`` to learn (``data.label`` or the case's main label)."""
    if cfg.fusion is not None:  # every rater of the kind data.label names (or the only kind)
        if cfg.label is not None:
            return list(case.raters.get(cfg.label, {}).values())
        return list(case.rater_labels().values())
    if cfg.label is None:
        return [case.label] if case.label else []
    names = [cfg.label] if isinstance(cfg.label, str) else list(cfg.label)
    if len(names) > 1 and not cfg.soft_labels:
        raise InvalidArgumentError("data.label: a list of labels needs data.soft_labels: true")
    return names


def contrast_sources(case: Case, cfg: DataConfig) -> list[str | None] | None:
    """Image name per contrast (None: the main image); None when the case has none of them."""
    if not cfg.contrasts:
        return [None]
    extra = {k.lower(): k for k in case.extra_images}
    found = [None if (case.contrast or "").lower() == c.lower() else extra.get(c.lower(), "")
             for c in cfg.contrasts]
    if all(f == "" for f in found):
        return None
    missing = [c for c, f in zip(cfg.contrasts, found, strict=True) if f == ""]
    if missing:
        raise DatasetError(f"case {case.id} has no {', '.join(missing)} image (data.contrasts; "
                           f"has: {', '.join([case.contrast or '?', *case.extra_images])})")
    return found


def case_files(case: Case, cfg: DataConfig) -> list[Path]:
    """Every file :func:`read_volume` reads for ``case`` (the cache key stamps them)."""
    names = contrast_sources(case, cfg) or [None]
    files = [case.image if n is None else case.extra_images[n] for n in names]
    for name in label_names(cfg, case):
        parts = case.label_options.get(name, {}).get("parts")
        files += [Path(p) for p, _ in parts] if parts else [case.labels[name]]
    return files


def _class_map(label: np.ndarray, cfg: DataConfig, case: Case) -> np.ndarray:
    values = np.unique(label)
    known = {v for vs in cfg.classes.values() for v in vs} | set(cfg.background)
    unknown = [int(v) for v in values if v != 0 and int(v) not in known]
    if unknown:
        raise DatasetError(f"case {case.id}: labels with classes not in the config: values "
                           f"{unknown} (data.classes and data.background map {sorted(known)})")
    lut = np.zeros(int(values.max()) + 1 if values.size else 1, np.uint8)
    for index, vs in enumerate(cfg.classes.values(), start=1):
        lut[[v for v in vs if v < lut.size]] = index
    return lut[label.astype(np.int64)]


def _read_label(case: Case, cfg: DataConfig, image: Image, names: list[str]) -> np.ndarray:
    """Hard: ``uint8 (1, *input)`` class indices; soft: ``float32 (K, *input)``."""
    if cfg.fusion not in (None, "soft") and len(names) > 1:  # soft: the mean below
        return _fused_label(case, cfg, image, names)
    maps = []
    for name in names:
        lab = case.read_label(name)
        check_same_grid(image, lab)
        if lab.kind == "label":
            idx = _class_map(lab.array, cfg, case)
            maps.append(idx[None] if not cfg.soft_labels else np.stack(
                [idx == k for k in range(1, len(cfg.classes) + 1)]).astype(np.float32))
        elif cfg.soft_labels and len(cfg.classes) == 1:
            maps.append(np.clip(lab.array, 0, 1).astype(np.float32)[None])
        else:
            raise DatasetError(f"case {case.id}: label {name!r} is soft; it needs "
                               "data.soft_labels and a single class")
    return maps[0] if len(maps) == 1 else np.mean(maps, axis=0, dtype=np.float32)


def _fused_label(case: Case, cfg: DataConfig, image: Image, names: list[str]) -> np.ndarray:
    """The consensus of the case's raters ``names`` (``data.fusion``), as :func:`_read_label`."""
    from segloop.fusion import fuse, multilabel_staple, soft_consensus

    maps = {}
    for name in names:
        lab = case.read_label(name)
        check_same_grid(image, lab)
        if lab.kind != "label":
            raise DatasetError(f"case {case.id}: rater label {name!r} is not a label map; "
                               "data.fusion fuses label maps")
        maps[name] = _class_map(lab.array, cfg, case)
    k = len(cfg.classes)
    if cfg.fusion == "soft_staple":
        return soft_consensus(maps, method="staple").astype(np.float32)[None]
    if cfg.fusion == "staple" and k > 1:
        fused = multilabel_staple(maps).labels
    else:
        fused = fuse(maps, cfg.fusion)
    fused = np.asarray(fused, np.uint8)
    if cfg.soft_labels:
        return np.stack([fused == c for c in range(1, k + 1)]).astype(np.float32)
    return fused[None]


def read_volume(case: Case, cfg: DataConfig, *, box=None) -> Volume:
    """Read one case: its contrasts, its label(s), preprocessed (no cache).

    ``box``: ``[[lo, hi], ...]`` per axis of the native grid: the case cropped
    to it before preprocessing (a cascade's stage 2, :mod:`segloop.learn.cascade_crop`;
    ``info`` then describes the crop's grid and holds ``cascade_box``).
    """
    sources = contrast_sources(case, cfg)
    if sources is None:
        raise DatasetError(f"case {case.id} has none of data.contrasts {cfg.contrasts}")
    images = full = [case.read_image(n) for n in sources]
    if box is not None:
        images = [crop_image(im, box) for im in full]
    array, info = preprocess_image(images, cfg)
    if box is not None:
        info["cascade_box"] = [[int(lo), int(hi)] for lo, hi in box]
    names = [n for n in label_names(cfg, case) if case.has_label(n)]
    label = None
    if names:
        raw = _read_label(case, cfg, full[0], names)
        if box is not None:
            raw = raw[(slice(None), *(slice(lo, hi) for lo, hi in box))]
        label = to_grid(raw, info, "image" if cfg.soft_labels else "label")
        label = np.clip(label, 0, 1).astype(np.float32) if cfg.soft_labels else label[0].astype(
            np.uint8)
    return Volume(case.id, group_of(case, cfg.split.by) or "", array, label,
                  tuple(float(s) for s in info["grid"]["spacing"]), str(case.image),
                  info["slice_axis"], info)


def select_cases(cases: Sequence[Case], cfg: DataConfig) -> list[Case]:
    """Cases sorted by id with the configured contrasts and label(s), ``data.limit`` first."""
    chosen = [c for c in sorted(cases, key=lambda c: c.id)
              if contrast_sources(c, cfg) is not None
              and (names := label_names(cfg, c)) and all(c.has_label(n) for n in names)]
    return chosen[: cfg.limit] if cfg.limit else chosen


# ----------------------------------------------------------------------------- preparing
def _cached(case: Case, cfg: DataConfig, cache: ArrayCache, settings: dict) -> Volume:
    extra = [case.image_options, case.label_options]
    if getattr(case, "channel_names", None):  # data.split_channels: one channel of the image
        extra.append({"channel": case.channel})
    key = cache_key(settings, case_files(case, cfg), extra=extra)
    hit = cache.load(case.id, key)
    if hit is not None:
        arrays, meta = hit
        return Volume(case.id, group_of(case, cfg.split.by) or "", arrays["image"],
                      arrays.get("label"), tuple(meta["spacing"]), meta["source"],
                      meta["slice_axis"], meta["info"])
    vol = read_volume(case, cfg)
    arrays = {"image": vol.image} | ({"label": vol.label} if vol.label is not None else {})
    cache.save(case.id, key, arrays, {"spacing": list(vol.spacing), "source": vol.source,
                                      "slice_axis": vol.slice_axis, "info": vol.info})
    return vol


def open_config_dataset(d: DataConfig):
    """The dataset of ``data.path`` (layout ``data.layout``, labels ``data.label``).

    :func:`segloop.io.open_dataset`, with its hints in terms of the config
    (``data.layout``); the first of several labels names the label suffix.
    """
    label = d.label if isinstance(d.label, str) else (d.label[0] if d.label else None)
    if d.fusion is not None:
        label = None  # data.label names the raters' kind, not a label of the cases
    try:
        return open_dataset(d.path, format=d.layout, label_suffix=label)
    except DatasetError as exc:  # io's hint names its commands' option
        if "--format" not in exc.message:
            raise
        hint = "name one with data.layout; a labels/ folder beside images/?"
        raise DatasetError(exc.message.replace("name one with --format", hint),
                           path=exc.path) from None
    except InvalidArgumentError as exc:
        if "unknown dataset format" not in exc.message:
            raise
        message = exc.message.replace("dataset format", "layout")
        raise InvalidArgumentError(f"data.layout: {message}", path=exc.path) from None


def _no_cases(ds, d: DataConfig) -> DatasetError:
    """Why no case has what training needs: no label at all, not this one, not these contrasts."""
    found = sorted({n for c in ds.cases for n in c.labels})
    if d.label is None:
        want = [ds.label] if ds.label else []
    else:
        want = [d.label] if isinstance(d.label, str) else list(d.label)
    if not found:
        why = (f"{len(ds.cases)} case{'s' * (len(ds.cases) != 1)} ({ds.layout} layout), none "
               "with a label file")
    elif not want or not set(want) <= set(found):
        missing = [w for w in want if w not in found]
        why = (f"no case has a {missing[0]!r} label" if missing else "the layout names no "
               "main label") + f" (data.label picks one of: {', '.join(found)})"
    else:
        present = sorted({x for c in ds.cases for x in [c.contrast, *c.extra_images] if x})
        why = (f"no labelled case has the contrasts {', '.join(d.contrasts or [])} "
               f"(data.contrasts; present: {', '.join(present) or 'none'})")
    return DatasetError(f"no labels found to train on: {why}", path=ds.root)


def prepare_data(cfg: Config, *, log: Callable[[str], object] = print) -> PreparedData:
    """Open, select, split and read (through the cache) the dataset of ``cfg``.

    Parameters
    ----------
    cfg : Config
        The run's config: ``data.*`` decides the cases and their preprocessing
        (``data.split_channels``: one case per channel,
        :mod:`segloop.learn.channel_cases`), the cache lives in
        ``data.cache_dir`` (default ``OUTPUT_DIR/cache``). With ``model.film``
        the metadata encoding is learned on the training cases
        (:func:`segloop.learn.metadata.build_spec`) and every volume gets its
        ``meta`` vector.
    log : callable
        Receives the summary lines (cases per split, cache hits; the metadata
        fields and how many values are missing).

    Returns
    -------
    PreparedData
        The train / val / test :class:`Volume` lists, the input channels and
        the preprocessing settings a checkpoint keeps (``metadata``: the
        encoding, FiLM models).

    Raises
    ------
    DatasetError
        No case with the label(s) and contrasts (``no labels found to train
        on: ...`` says which is missing), a folder no layout fits (set
        ``data.layout``), unmapped label values, missing contrasts, channel
        counts that differ; FiLM: a metadata value missing under
        ``on_missing: error``, a category unknown to the training cases under
        ``on_unknown: error``, a numeric value that is not a number (named).
    segloop.errors.FileMissingError
        ``model.film.table`` names no file.
    InvalidArgumentError
        A bad ``data.layout`` or ``data.split`` (named).
    """
    d = cfg.data
    ds = open_config_dataset(d)
    every = split_channels(ds.cases, d.split_channels)  # one case per channel when asked
    cases = select_cases(every, d)
    if not cases:
        raise _no_cases(ds, d)
    parts = split_groups(cases, d.split)
    cache = ArrayCache(Path(d.cache_dir) if d.cache_dir else Path(cfg.output.dir) / "cache")
    settings = preprocess_settings(d)
    out = {name: [_cached(c, d, cache, settings) for c in part] for name, part in parts.items()}
    volumes = [v for part in out.values() for v in part]
    counts = {v.image.shape[0] for v in volumes}
    if len(counts) > 1:
        odd = next(v for v in volumes if v.image.shape[0] != volumes[0].image.shape[0])
        raise DatasetError(f"case {odd.id} has {odd.image.shape[0]} input channels, "
                           f"case {volumes[0].id} {volumes[0].image.shape[0]}", path=ds.root)
    split = f", {len(d.split_channels)} channels each" if d.split_channels else ""
    log(f"data: {len(cases)} of {len(every)} cases ({ds.layout}{split}) -> train "
        f"{len(out['train'])}, val {len(out['val'])}, test {len(out['test'])} "
        f"(split by {d.split.by}); cache {cache.stats['hits']} hits, "
        f"{cache.stats['misses']} read ({cache.folder})")
    in_channels = volumes[0].image.shape[0]
    preprocess = settings | {"in_channels": in_channels, "version": 1}
    if cfg.model.film is not None and parts["train"]:
        preprocess["metadata"] = _with_metadata(cfg.model.film, parts, out, log)
    return PreparedData(out["train"], out["val"], out["test"], in_channels, preprocess)


def _with_metadata(film, parts: dict, out: dict, log) -> dict:
    """Learn the metadata encoding on the training cases; set every volume's ``meta``."""
    table = read_table(film.table)
    values = {name: {c.id: case_values(film, c, table=table) for c in part}
              for name, part in parts.items()}
    spec = build_spec(film, values["train"])
    encoder = MetadataEncoder(spec)
    for name, volumes in out.items():
        for v in volumes:
            v.meta = encoder.encode(values[name][v.id], where=f"case {v.id}")
    described = [f"{f['name']} ({', '.join(f['categories'])})" if f["kind"] == "categorical"
                 else f"{f['name']} (mean {f['mean']:.4g}, std {f['std']:.4g})"
                 for f in spec["fields"]]
    missing = sum(int(v.meta[stop - 1]) for vs in out.values() for v in vs
                  for _, stop in encoder.blocks)
    log(f"metadata: {'; '.join(described)}; {missing} missing value{'s' * (missing != 1)}")
    return spec
