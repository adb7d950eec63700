"""Presets: commented starting configs that validate, round-trip and use schema keys only."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import BaseModel

from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.learn.config import Config, load_config, to_dict
from segloop.learn.presets import PRESETS, preset_dict, preset_text, write_preset


def _schema_keys(model: type[BaseModel], raw: dict, prefix: str = "") -> list[str]:
    """Keys of ``raw`` that are not fields of ``model`` (recursively)."""
    unknown = []
    for key, value in raw.items():
        field = model.model_fields.get(key)
        if field is None:
            unknown.append(prefix + key)
            continue
        ann = field.annotation
        if isinstance(value, dict) and isinstance(ann, type) and issubclass(ann, BaseModel):
            unknown += _schema_keys(ann, value, f"{prefix}{key}.")
    return unknown


@pytest.mark.parametrize("name", PRESETS)
def test_preset_validates_round_trips_and_uses_schema_keys_only(name, tmp_path):
    raw = preset_dict(name)
    assert raw["data"]["path"] == "path/to/dataset"
    assert _schema_keys(Config, raw) == []
    # every section and every key of the schema is in the file, with a comment
    assert set(raw) == set(Config.model_fields)
    for section, fields in to_dict(load_config(raw)).items():
        if fields is None:  # an optional section left out (cascade: null)
            assert raw[section] is None, section
            continue
        assert set(raw[section]) == set(fields), section
    cfg = load_config(raw)
    assert load_config(to_dict(cfg)) == cfg
    path = write_preset(name, tmp_path / f"{name}.yaml")
    assert load_config(path) == cfg
    text = preset_text(name)
    assert text.startswith("# segloop training config")
    leaves = [line for line in text.splitlines()
              if re.match(r"^\s+[a-z_]+: \S", line)]  # a key with a value
    assert len(leaves) >= 60 and all("#" in line for line in leaves)


def test_presets_differ_where_they_should():
    two, three, soft = (load_config(preset_dict(n)) for n in PRESETS)
    assert (two.data.dims, three.data.dims, soft.data.dims) == (2, 3, 2)
    assert three.data.patch_size == [64, 64, 64]
    assert (soft.data.soft_labels, soft.model.final_activation, soft.loss.name) == \
        (True, "normrelu", "adaptive_wing")
    assert two.model.final_activation == "softmax" and two.loss.name == "dice_ce"


def test_write_preset_refuses_to_overwrite_unless_asked_and_keeps_a_version(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("mine: true\n")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_preset("2d", path)
    assert path.read_text() == "mine: true\n"
    write_preset("3d", path, overwrite=True)
    assert yaml.safe_load(path.read_text())["data"]["dims"] == 3
    assert (tmp_path / "my.yaml.~1~").read_text() == "mine: true\n"
    with pytest.raises(InvalidArgumentError, match="unknown preset"):
        write_preset("4d", tmp_path / "x.yaml")
