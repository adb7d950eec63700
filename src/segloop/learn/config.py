"""The training configuration: one typed, validated file drives a whole run.

A config is YAML or JSON with the sections below (every key has a default
except ``data.path``). :func:`load_config` reads it, applies ``--set``
overrides by dotted name (``training.epochs=5``), and validates it; an
unknown key or a bad value raises :class:`ConfigError` naming the key.

``data``
    the dataset folder (any layout :func:`segloop.io.open_dataset` knows), the
    contrasts used as input channels, the label to learn and how its values
    map to classes, the split, 2D slicing or 3D patches, target spacing,
    normalisation, cropping, soft labels.
``model``
    a MONAI U-Net (2D or 3D from ``data.dims``): widths, strides, residual
    units, normalisation, dropout; final activation (``softmax``, ``sigmoid``
    or SoftSeg's ``normrelu``); optionally FiLM conditioning on case metadata
    (``model.film``, :class:`FilmConfig`).
``augmentation``, ``loss``, ``optim``, ``training``, ``inference``, ``output``
    see the fields of each class.
``cascade``
    optional: a stage-1 model locates the region, this config's model segments
    the crop (:class:`CascadeConfig`).

Examples
--------
>>> cfg = load_config({"data": {"path": "/data/em"}}, overrides=["training.epochs=3"])
>>> cfg.training.epochs, cfg.model.channels
(3, [16, 32, 64, 128])
>>> load_config({"data": {"path": "x"}, "training": {"epoch": 3}})
Traceback (most recent call last):
...
segloop.learn.config.ConfigError: training.epoch: unknown key (known: ...)
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from segloop.errors import InvalidArgumentError
from segloop.learn.overrides import apply_override, parse_overrides

__all__ = ["AugmentConfig", "CascadeConfig", "Config", "ConfigError", "DataConfig",
           "FilmConfig", "FilmField", "InferenceConfig", "LossConfig", "ModelConfig",
           "OptimConfig", "OutputConfig", "SplitConfig", "TrainingConfig", "load_config",
           "parse_overrides", "to_dict"]


class ConfigError(InvalidArgumentError):
    """A config file or override with an unknown key or a bad value (the message names it)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


PosInt = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class SplitConfig(_Section):
    """How cases are split into train / validation / test (never mixing a group)."""

    by: str = "subject"  #: ``subject``, ``case`` or a metadata column (e.g. ``institution``)
    test: float | int | list[str] = 0.2  #: fraction, count of groups, or explicit group ids
    val: float | int | list[str] = 0.1
    seed: int = 0


class DataConfig(_Section):
    """The dataset and how its cases become training samples."""

    path: str  #: the dataset folder
    layout: str | None = None  #: a layout name of segloop.io (None: detected)
    contrasts: list[str] | None = None  #: input channels by contrast/suffix (None: the image as is)
    channels: list[int] | None = None  #: channels of a multi-channel image to keep (None: all)
    label: str | list[str] | None = None  #: which label of a case (None: its main label);
    #: a list (soft labels only): the mean of these labels (raters) is the soft truth
    classes: dict[str, list[int]] = Field(default_factory=lambda: {"foreground": [1]})
    #: classes: name -> label values merged into it (BRATS whole tumour: [1, 2, 3, 4])
    background: list[int] = Field(default_factory=list)
    #: background: label values read as background, 0 (ACDC's LV alone: classes {lv: [3]},
    #: background [1, 2]); any other value missing from classes is an error
    soft_labels: bool = False  #: keep label values as floats in [0, 1] (mean of raters...)
    fusion: Literal["majority", "weighted", "staple", "soft", "soft_staple"] | None = None
    #: fusion: train on the consensus of each case's raters (all the raters the case has, of the
    #: kind data.label names, or its only kind): majority / weighted vote or STAPLE (hard
    #: labels), soft (their mean) or soft_staple (STAPLE's posterior; one class), both with
    #: soft_labels; a case with one rater keeps that rater's label
    dims: Literal[2, 3] = 2  #: 2: slices (of volumes) or images; 3: volume patches
    slice_axis: Literal["axial", "coronal", "sagittal", 0, 1, 2] = "axial"
    #: slice_axis: the array axis 0, 1 or 2 (z, y, x) that 2D models slice along; the names
    #: are those axes (axial 0, coronal 1, sagittal 2), whatever the image's direction
    patch_size: list[PosInt] | None = None  #: training patch (None: whole slice / 96³ for 3D)
    spacing: list[Annotated[float, Field(gt=0)]] | None = None  #: resample to this (mm)
    normalize: Literal["zscore", "minmax", "percentile", "none"] = "zscore"
    crop_foreground: bool = False  #: crop each case to its nonzero image region
    foreground_ratio: Fraction = 0.5  #: fraction of samples centred on foreground
    split: SplitConfig = Field(default_factory=SplitConfig)
    cache_dir: str | None = None  #: preprocessed arrays (None: OUTPUT_DIR/cache)
    limit: PosInt | None = None  #: use at most this many cases (quick runs)
    split_channels: list[str] | None = None
    #: split_channels: one name per channel of a multi-channel image (LGG's [t1, flair, t1c]):
    #: each case becomes one single-channel case per channel, id CASE_NAME, same subject,
    #: contrast NAME (segloop.learn.channel_cases; FiLM's contrast metadata)

    @model_validator(mode="after")
    def _check_split_channels(self):
        names = self.split_channels
        if names is not None:
            if not names or len({n.lower() for n in names}) != len(names):
                raise ValueError("split_channels: one distinct name per channel")
            if self.channels is not None:
                raise ValueError("split_channels: not with channels (each channel becomes a "
                                 "case of its own)")
        return self

    @model_validator(mode="after")
    def _check(self):
        if not self.classes:
            raise ValueError("classes: at least one class is needed")
        for name, values in self.classes.items():
            if not values or any(v <= 0 for v in values):
                raise ValueError(f"classes.{name}: label values must be positive integers")
        if any(v <= 0 for v in self.background):
            raise ValueError("background: label values must be positive integers (0 is "
                             "background already)")
        both = sorted(set(self.background) & {v for vs in self.classes.values() for v in vs})
        if both:
            raise ValueError(f"background: values {both} are also in classes")
        if self.fusion in ("soft", "soft_staple") and not self.soft_labels:
            raise ValueError(f"fusion: {self.fusion} gives soft labels; set soft_labels: true")
        if self.fusion is not None and isinstance(self.label, list):
            raise ValueError("fusion: fuses each case's raters; label names their kind "
                             "(e.g. seg-manual), not a list")
        if self.fusion == "soft_staple" and len(self.classes) > 1:
            raise ValueError("fusion: soft_staple needs a single class")
        if self.patch_size is not None and len(self.patch_size) != self.dims:
            raise ValueError(f"patch_size: {self.dims} sizes expected for dims={self.dims}")
        if self.spacing is not None and len(self.spacing) not in (2, 3):
            raise ValueError("spacing: 2 or 3 values expected")
        return self


class FilmField(_Section):
    """One metadata field a FiLM network is conditioned on (:mod:`segloop.learn.metadata`)."""

    name: str  #: the field: a table column, a case metadata key, or the built-in ``contrast``
    kind: Literal["categorical", "numeric"] = "categorical"
    categories: list[str] | None = None
    #: categories: the values a categorical field one-hot encodes (None: those of the
    #: training cases, sorted); numeric fields are z-scored with the training mean / std

    @model_validator(mode="after")
    def _check(self):
        if not self.name.strip():
            raise ValueError("name: an empty field name")
        if self.categories is not None:
            if self.kind == "numeric":
                raise ValueError(f"{self.name}: categories are for categorical fields")
            if not self.categories or len({c.strip().lower() for c in self.categories}) != len(
                    self.categories):
                raise ValueError(f"{self.name}: categories must be distinct and not empty")
        return self


class FilmConfig(_Section):
    """FiLM conditioning of the U-Net on case metadata (:mod:`segloop.learn.film`)."""

    fields: list[FilmField]  #: a field, or its name alone for a categorical one
    levels: list[Annotated[int, Field(ge=0)]] | None = None
    #: levels: U-Net levels modulated, 0 the top (full resolution) to len(model.channels) - 1
    #: the bottom: the down block's output of each (None: every level)
    decoder: bool = True  #: also modulate the up blocks of those levels (not the output block)
    hidden: PosInt = 64  #: width of the generator's hidden layer
    table: str | dict[str, dict[str, str | int | float | bool | None]] | None = None
    #: table: a TSV/CSV file (a case, subject or participant_id column + field columns) or a
    #: mapping {case or subject: {field: value}}; looked up first, then the case's metadata
    on_missing: Literal["missing", "error"] = "missing"
    #: on_missing: a case without a value: the field's "missing" encoding, or an error
    on_unknown: Literal["missing", "error"] = "error"
    #: on_unknown: a category the training cases never had: an error naming it, or the
    #: "missing" encoding with a warning
    drop: Fraction = 0.1  #: probability of hiding each field of a training sample

    @field_validator("fields", mode="before")
    @classmethod
    def _names(cls, value):
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _check(self):
        names = [f.name for f in self.fields]
        if not names:
            raise ValueError("fields: at least one metadata field")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"fields: {dup[0]!r} given twice")
        return self


class ModelConfig(_Section):
    """A MONAI U-Net."""

    name: Literal["unet"] = "unet"
    channels: list[PosInt] = Field(default_factory=lambda: [16, 32, 64, 128])
    strides: list[PosInt] | None = None  #: None: 2 between each level
    num_res_units: Annotated[int, Field(ge=0)] = 1
    norm: Literal["batch", "instance", "none"] = "instance"
    dropout: Fraction = 0.1
    final_activation: Literal["softmax", "sigmoid", "normrelu"] = "softmax"
    film: FilmConfig | None = None  #: condition the U-Net on metadata (None: a plain U-Net)

    @model_validator(mode="after")
    def _check(self):
        if len(self.channels) < 2:
            raise ValueError("channels: at least 2 levels")
        if self.strides is not None and len(self.strides) != len(self.channels) - 1:
            raise ValueError("strides: one fewer than channels")
        return self

    @model_validator(mode="after")
    def _check_film(self):
        levels = self.film.levels if self.film is not None else None
        bad = [v for v in levels or [] if v >= len(self.channels)]
        if bad:
            raise ValueError(f"film.levels: {bad[0]} is not a level of the U-Net (0 to "
                             f"{len(self.channels) - 1}: one per model.channels)")
        return self


class AugmentConfig(_Section):
    """Random transforms applied to training samples (labels follow with nearest-neighbour)."""

    enabled: bool = True
    flip: Fraction = 0.5  #: probability per axis
    rotate_degrees: Annotated[float, Field(ge=0, le=180)] = 15.0
    scale: Annotated[float, Field(ge=0, lt=1)] = 0.1  #: zoom in [1 - s, 1 + s]
    affine_prob: Fraction = 0.5
    elastic_prob: Fraction = 0.0
    gamma: Annotated[float, Field(ge=0, lt=1)] = 0.2  #: gamma in [1 - g, 1 + g]
    gamma_prob: Fraction = 0.3
    noise_std: Annotated[float, Field(ge=0)] = 0.05
    noise_prob: Fraction = 0.2
    bias_field_prob: Fraction = 0.0
    contrast_prob: Fraction = 0.2


class LossConfig(_Section):
    """The training loss (MONAI's where it exists)."""

    name: Literal["dice", "dice_ce", "focal", "generalized_dice", "tversky", "adaptive_wing",
                  "mse"] = "dice_ce"
    include_background: bool = False
    tversky_alpha: Fraction = 0.3
    tversky_beta: Fraction = 0.7
    focal_gamma: Annotated[float, Field(ge=0)] = 2.0
    #: soft labels only: train on them binarised at this value after augmentation
    #: (conventional training on the raters' majority; the test is still scored
    #: against the soft truth); None: never binarised (SoftSeg)
    binarize: Annotated[float, Field(gt=0, le=1)] | None = None


class OptimConfig(_Section):
    """Optimiser and learning-rate schedule."""

    name: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: Annotated[float, Field(gt=0)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    momentum: Fraction = 0.9
    schedule: Literal["none", "cosine", "poly"] = "cosine"
    warmup_epochs: Annotated[int, Field(ge=0)] = 0


class TrainingConfig(_Section):
    """The training run."""

    epochs: PosInt = 50
    iterations_per_epoch: PosInt | None = None  #: None: one pass over the training samples
    batch_size: PosInt = 8
    max_minutes: Annotated[float, Field(gt=0)] | None = None  #: wall-clock budget
    early_stopping: Annotated[int, Field(ge=0)] = 0  #: patience in validations (0: off)
    val_every: PosInt = 1
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(ge=0)] = 0  #: torch threads (0: one per core)
    num_workers: Annotated[int, Field(ge=0)] = 0
    compile: bool = False  #: torch.compile the network
    resume: bool = True  #: continue from OUTPUT_DIR/last.pt when it exists
    init_from: str | None = None  #: start from this checkpoint's weights (transfer)
    #: init_from: any segloop checkpoint of a network of the same shape (dims, input
    #: channels, model.channels/strides/num_res_units/norm; else an error naming the key);
    #: its output block is loaded only when the classes are the same, else re-initialised
    freeze_encoder: bool = False
    #: freeze_encoder: train the decoder only: the U-Net's down path and bottom keep their
    #: (init_from) weights, the optimiser holds the other tensors (segloop.learn.transfer)


class InferenceConfig(_Section):
    """Prediction: sliding window, test-time augmentation, MC dropout, post-processing."""

    roi_size: list[PosInt] | None = None  #: sliding-window size (None: data.patch_size)
    overlap: Annotated[float, Field(ge=0, lt=1)] = 0.25
    batch_size: PosInt = 4
    tta: bool = False
    mc_samples: Annotated[int, Field(ge=0)] = 0  #: MC-dropout passes for uncertainty (0: off)
    threshold: Fraction = 0.5  #: for sigmoid / normrelu outputs
    largest_component: bool = False
    fill_holes: bool = False


class OutputConfig(_Section):
    """Where the run writes."""

    dir: str = "runs/segloop"
    tensorboard: bool = True


_LOCATE_FILES = (".pt", ".pth", ".yaml", ".yml", ".json")
_SECTIONS = ("data", "model", "augmentation", "loss", "optim", "training", "inference", "output")


class CascadeConfig(_Section):
    """Two stages: a locating model finds the region, this config's model segments its crop.

    See :mod:`segloop.learn.cascade` (inference) and :mod:`segloop.learn.cascade_data`
    (training); the stage-1 config is :func:`segloop.learn.cascade_data.locate_config`.
    """

    locate: str | dict
    #: locate: the stage-1 model: a checkpoint (.pt), a config file (.yaml/.yml/.json) or a
    #: mapping of config keys replacing this config's (section by section, key by key: a
    #: key given replaces the value whole); a config is trained first into OUTPUT_DIR/locate
    #: by the same ``segloop train`` (reused once finished, unless training.resume is false)
    classes: list[str] | None = None  #: stage-1 classes whose union is the region (None: all)
    margin_mm: float | list[float] = 10.0
    #: margin_mm: added around the region's box (mm, per axis z, y, x or one for all; on a
    #: volume, two values are the in-plane margins of a 2D model: every slice is kept)
    min_size_mm: float | list[float] | None = None
    #: min_size_mm: smallest extent of the crop (mm, as margin_mm), grown about its centre
    crop_from: Literal["prediction", "label"] = "prediction"
    #: crop_from: where training crops come from: the stage-1 prediction (as at inference)
    #: or the case's own label (every nonzero value, before data.classes maps it)
    on_empty: Literal["whole", "empty"] = "whole"
    #: on_empty: stage 1 finds nothing: segment the whole image, or return background

    @field_validator("locate")
    @classmethod
    def _locate(cls, value):
        if isinstance(value, str) and not value.lower().endswith(_LOCATE_FILES):
            raise ValueError("neither a checkpoint (.pt) nor a config file (.yaml, .yml, .json)")
        unknown = sorted(set(value) - set(_SECTIONS)) if isinstance(value, dict) else []
        if unknown:
            raise ValueError(f"unknown section {unknown[0]!r} (known: {', '.join(_SECTIONS)})")
        return value

    @field_validator("margin_mm", "min_size_mm")
    @classmethod
    def _millimetres(cls, value):
        values = value if isinstance(value, list) else [value]
        if value is not None and (not values or any(v < 0 for v in values)):
            raise ValueError("one size >= 0 (mm) or one per axis")
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, value):
        if value is not None and not value:
            raise ValueError("at least one class (or null: all of them)")
        return value


class Config(_Section):
    """A whole training/inference configuration."""

    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    augmentation: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    cascade: CascadeConfig | None = None
    #: cascade: this model segments the crop a stage-1 model locates (None: one stage)

    @property
    def n_classes(self) -> int:
        """Foreground classes (the network has one more output with softmax)."""
        return len(self.data.classes)

    @model_validator(mode="after")
    def _check(self):
        if self.data.soft_labels and self.model.final_activation == "softmax" \
                and self.n_classes > 1:
            raise ValueError("data.soft_labels with several classes needs sigmoid or normrelu")
        if self.model.final_activation == "normrelu" and self.loss.name not in (
                "adaptive_wing", "mse", "dice"):
            raise ValueError("loss.name: SoftSeg (model.final_activation normrelu) trains with "
                             "adaptive_wing, mse or dice")
        if self.loss.binarize is not None and not self.data.soft_labels:
            raise ValueError("loss.binarize: binarises soft labels; set data.soft_labels: true "
                             "or remove it")
        return self

    @model_validator(mode="after")
    def _check_film(self):
        if self.model.film is not None and self.training.compile:
            raise ValueError("training.compile: not with model.film (the FiLM generator's "
                             "hooks modulate the U-Net's blocks); set training.compile: false")
        return self


# ----------------------------------------------------------------------------- loading


def _key_path(loc) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-after"))


def _known(model: type[BaseModel], loc) -> list[str]:
    """Field names at ``loc`` (minus the last part), for an unknown-key message."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        sections = [a for a in typing.get_args(ann) if isinstance(a, type)
                    and issubclass(a, BaseModel)]  # an optional section: X | None
        ann = sections[0] if len(sections) == 1 else ann
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _error(exc: ValidationError, source: str | None) -> ConfigError:
    err = exc.errors()[0]
    key = _key_path(err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        msg = f"{key}: unknown key (known: {', '.join(_known(Config, err['loc']))})"
    elif err["type"] == "missing":
        msg = f"{key}: required key missing"
    else:
        text = err["msg"].removeprefix("Value error, ")
        msg = f"{key}: {text} (got {err.get('input')!r})" if "input" in err and not isinstance(
            err["input"], dict) else f"{key}: {text}"
    return ConfigError(msg, path=source)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError("config file not found", path=path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"not valid YAML/JSON ({first})", path=path) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of sections", path=path)
    return raw


def load_config(source, *, overrides=None) -> Config:
    """Read, override and validate a config.

    Parameters
    ----------
    source : str, pathlib.Path, dict or Config
        A YAML/JSON file, or the config as a mapping.
    overrides : sequence of str, optional
        ``KEY=VALUE`` items with dotted keys (``data.path=/x``, ``training.max_minutes=20``);
        values are read as YAML except for text keys (:mod:`segloop.learn.overrides`).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        A missing file, bad YAML, an unknown key or a bad value (named).
    """
    if isinstance(source, Config):
        raw, where = to_dict(source), None
    elif isinstance(source, dict):
        raw, where = dict(source), None
    else:
        where = Path(source)
        raw = _read(where)
    raw = copy.deepcopy(raw)
    for parts, value in parse_overrides(overrides, schema=Config):
        apply_override(raw, parts, value)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise _error(exc, None if where is None else str(where)) from None


def to_dict(config: Config) -> dict:
    """The config as plain data (what checkpoints and ``config.yaml`` of a run hold)."""
    return config.model_dump(mode="json")
