"""A cascade's training data: the stage-1 config, each case's crop box, the cropped cases.

:func:`locate_config` is the stage-1 (locating) config of a cascade config
(``cascade.locate``): a config file as written, or a mapping of keys that
replace the stage-2 config's, section by section and key by key (a key given
replaces the stage-2 value whole: ``data.classes: {heart: [1, 2, 3]}`` is the
only class), so that ``--set data.path=...`` or ``--set training.epochs=...``
of the stage-2 config reaches both stages. Either way it trains into
``OUTPUT_DIR/locate`` and caches into its own folder (``data.cache_dir`` only
when the stage-1 keys give one).

:func:`prepare_cascade_data` reads the stage-2 cases as
:func:`segloop.learn.data.prepare_data` does (same selection, same split),
each cropped **before** preprocessing to its box:

* the cases: selected and split as for one model (``data.split_channels``
  too);
* the region: the stage-1 prediction of the case's image on its native grid
  (``cascade.crop_from: prediction``, as at inference), or every nonzero
  value of its label(s) before ``data.classes`` maps them (``label``); the
  region's box (and the image's shape and spacing) is cached per case under
  ``CACHE/regions``, keyed by the case's files, the settings and (prediction)
  the stage-1 checkpoint's file stamp, so stage 1 runs once per case;
* the box: :func:`cascade_box` (margin and minimal size in mm, clamped);
  a case whose region is empty is used whole (``on_empty: whole``) or left
  out (``empty``);
* the cropped volume: :func:`segloop.learn.data.read_volume` with the box,
  cached like any volume with the box in its key.

Examples
--------
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "d", "classes": {"rv": [1], "lv": [3]}},
...                    "output": {"dir": "runs/c"},
...                    "cascade": {"locate": {"data": {"classes": {"heart": [1, 2, 3]},
...                                                    "spacing": [4, 4]}}}})
>>> stage1 = locate_config(cfg)
>>> stage1.data.classes, stage1.data.spacing, stage1.data.path, stage1.output.dir, stage1.cascade
({'heart': [1, 2, 3]}, [4.0, 4.0], 'd', 'runs/c/locate', None)
>>> cascade_box([[2, 5], [3, 4]], shape=(10, 10), spacing=(2.0, 1.0), cfg=load_config(
...     {"data": {"path": "d"}, "cascade": {"locate": "l.pt", "margin_mm": 2}}))
[[1, 6], [1, 6]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.io import Case
from segloop.learn.cache import ArrayCache, cache_key
from segloop.learn.cascade_crop import expand_box, region_box
from segloop.learn.channel_cases import split_channels
from segloop.learn.config import Config, ConfigError, load_config, to_dict
from segloop.learn.data import (
    PreparedData,
    Volume,
    case_files,
    contrast_sources,
    label_names,
    open_config_dataset,
    read_volume,
    select_cases,
    split_groups,
)
from segloop.learn.preprocess import preprocess_settings, slice_axis_index
from segloop.learn.splitting import group_of

__all__ = ["CascadeData", "cascade_box", "locate_config", "prepare_cascade_data", "split_cases"]

_REGION_VERSION = 1


def locate_config(cfg: Config) -> Config | None:
    """The stage-1 config of cascade config ``cfg`` (None when ``cascade.locate`` is a checkpoint).

    Raises
    ------
    segloop.learn.config.ConfigError
        A bad stage-1 key (named ``cascade.locate...``), a missing file, a
        locating config that is a cascade itself, or a cascade config with
        ``model.film`` (not supported).
    """
    if cfg.cascade is None:
        raise ConfigError("cascade: not a cascade config (no cascade section)")
    if getattr(cfg.model, "film", None) is not None:
        raise ConfigError("cascade: not with model.film (a cascade's cropped cases carry no "
                          "metadata vector)")
    locate = cfg.cascade.locate
    out = str(Path(cfg.output.dir) / "locate")
    if isinstance(locate, str):
        if locate.lower().endswith((".pt", ".pth")):
            return None
        stage1 = load_config(locate)
        raw, where = to_dict(stage1), locate
        if stage1.cascade is not None:
            raise ConfigError("cascade.locate: the locating config is a cascade itself",
                              path=locate)
    else:
        raw, where = to_dict(cfg), None
        raw.pop("cascade")
        raw["data"]["cache_dir"] = None
        for section, values in locate.items():
            if not isinstance(values, dict):
                raise ConfigError(f"cascade.locate.{section}: a section of keys expected")
            raw[section] = {**raw[section], **values}
    raw["output"]["dir"] = out
    try:
        return load_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"cascade.locate: {exc.message}", path=where) from None


def cascade_box(region, *, shape, spacing, cfg: Config, where: str | None = None):
    """The crop box of a region box: :func:`~segloop.learn.cascade_crop.expand_box` per ``cfg``.

    ``cascade.margin_mm`` and ``min_size_mm``; two in-plane values on a volume
    keep ``data.slice_axis`` whole for a 2D model.
    """
    keep = (slice_axis_index(cfg.data.slice_axis)
            if cfg.data.dims == 2 and len(shape) == 3 else None)
    return expand_box(region, shape=shape, spacing=spacing, margin_mm=cfg.cascade.margin_mm,
                      min_size_mm=cfg.cascade.min_size_mm, keep_axis=keep, where=where)


@dataclass
class CascadeData:
    """Stage 2's cropped cases and what scoring the cascade on whole images needs."""

    data: PreparedData
    test_cases: list[Case]  #: the test split's cases (scored whole, through the cascade)
    boxes: dict[str, list | None] = field(default_factory=dict)  #: crop box per case id
    left_out: list[str] = field(default_factory=list)  #: empty regions, ``on_empty: empty``


def split_cases(cfg: Config) -> dict[str, list[Case]]:
    """The cases of ``cfg`` split as :func:`segloop.learn.data.prepare_data` splits them."""
    ds = open_config_dataset(cfg.data)
    cases = select_cases(split_channels(ds.cases, cfg.data.split_channels), cfg.data)
    if not cases:
        raise InvalidArgumentError("no labelled case to train on (data.label, data.contrasts)",
                                   path=cfg.data.path)
    return split_groups(cases, cfg.data.split)


def _extra(case: Case) -> list:
    """What besides its files decides a case's content (its options; its channel)."""
    extra = [case.image_options, case.label_options]
    if getattr(case, "channel_names", None):  # data.split_channels: one channel of the image
        extra.append({"channel": case.channel})
    return extra


def _label_region(case: Case, cfg: Config):
    """Every nonzero value of the case's label(s) (before data.classes), and its grid."""
    mask, like = None, None
    for name in label_names(cfg.data, case):
        lab = case.read_label(name)
        nonzero = lab.array > 0
        mask = nonzero if mask is None else (mask | nonzero)
        like = lab
    return mask, like


def _region(case: Case, cfg: Config, locate, regions: ArrayCache, region_ids: list[int]):
    """``(region box or None, shape, spacing)`` of one case on its native grid, cached."""
    how = cfg.cascade.crop_from
    files = case_files(case, cfg.data)
    if how == "prediction":
        files = files + [locate.source]
    key = cache_key({"crop_from": how, "classes": region_ids, "version": _REGION_VERSION},
                    files, extra=_extra(case))
    hit = regions.load(case.id, key)
    if hit is not None:
        meta = hit[1]
        return meta["box"], tuple(meta["shape"]), tuple(meta["spacing"])
    if how == "label":
        mask, like = _label_region(case, cfg)
    else:
        images = [case.read_image(n) for n in contrast_sources(case, cfg.data)]
        mask = np.isin(locate.predict(images, tta=False).label.array, region_ids)
        like = images[0]
    box = region_box(mask)
    meta = {"box": box, "shape": list(like.shape), "spacing": list(like.spacing)}
    regions.save(case.id, key, {}, meta)
    return box, tuple(like.shape), tuple(like.spacing)


def _cropped(case: Case, cfg: Config, box, cache: ArrayCache, settings: dict) -> Volume:
    d = cfg.data
    key = cache_key(settings | {"cascade_box": box}, case_files(case, d), extra=_extra(case))
    name = f"{case.id}.crop"  # beside the case's whole volume, if another run caches it here
    hit = cache.load(name, key)
    if hit is not None:
        arrays, meta = hit
        return Volume(case.id, group_of(case, d.split.by) or "", arrays["image"],
                      arrays.get("label"), tuple(meta["spacing"]), meta["source"],
                      meta["slice_axis"], meta["info"])
    vol = read_volume(case, d, box=box)
    arrays = {"image": vol.image} | ({"label": vol.label} if vol.label is not None else {})
    cache.save(name, key, arrays, {"spacing": list(vol.spacing), "source": vol.source,
                                   "slice_axis": vol.slice_axis, "info": vol.info})
    return vol


def prepare_cascade_data(cfg: Config, *, locate=None, region_ids=None,
                         log: Callable[[str], object] = print) -> CascadeData:
    """Stage 2's train / val / test volumes, each case cropped to its box (module docstring).

    Parameters
    ----------
    cfg : Config
        The cascade (stage-2) config.
    locate : segloop.learn.predict.Predictor, optional
        The stage-1 model (needed with ``cascade.crop_from: prediction``); its
        ``source`` (the checkpoint file) is part of the region cache key.
    region_ids : list of int, optional
        Stage-1 class indices forming the region
        (:func:`segloop.learn.cascade.region_classes`; default: all).
    log : callable
        Receives one summary line.
    """
    if cfg.cascade.crop_from == "prediction" and locate is None:
        raise InvalidArgumentError("cascade.crop_from: prediction needs the locating model")
    if region_ids is None:
        region_ids = list(range(1, len(locate.classes) + 1)) if locate is not None else []
    parts = split_cases(cfg)
    root = Path(cfg.data.cache_dir) if cfg.data.cache_dir else Path(cfg.output.dir) / "cache"
    cache, regions = ArrayCache(root), ArrayCache(root / "regions")
    settings = preprocess_settings(cfg.data)
    out: dict[str, list[Volume]] = {}
    boxes, left_out, empty, fractions = {}, [], 0, []
    for name in ("train", "val", "test"):
        out[name] = []
        for case in parts[name]:
            region, shape, spacing = _region(case, cfg, locate, regions, region_ids)
            if region is None:
                empty += 1
                if cfg.cascade.on_empty == "empty":
                    left_out.append(case.id)
                    continue
                box = [[0, n] for n in shape]
            else:
                box = cascade_box(region, shape=shape, spacing=spacing, cfg=cfg,
                                  where=str(case.image))
            boxes[case.id] = box
            fractions.append(float(np.prod([b - a for a, b in box]) / np.prod(shape)))
            out[name].append(_cropped(case, cfg, box, cache, settings))
    volumes = [v for part in out.values() for v in part]
    if not out["train"]:
        raise InvalidArgumentError("no training case left after cropping (stage 1 found no "
                                   "region; cascade.on_empty: empty)", path=cfg.data.path)
    log(f"cascade data: {len(volumes)} cases cropped to {100 * np.mean(fractions):.0f} % of "
        f"their voxels on average (boxes from the {cfg.cascade.crop_from}; train "
        f"{len(out['train'])}, val {len(out['val'])}, test {len(out['test'])}); "
        f"{empty} empty region(s){' left out' if left_out else ''}; regions "
        f"{regions.stats['hits']} cached, {regions.stats['misses']} computed; volumes "
        f"{cache.stats['hits']} cached, {cache.stats['misses']} read")
    in_channels = volumes[0].image.shape[0]
    prepared = PreparedData(out["train"], out["val"], out["test"], in_channels,
                            settings | {"in_channels": in_channels, "version": 1})
    return CascadeData(prepared, list(parts["test"]), boxes, left_out)
