"""The training config: defaults, overrides by dotted key, and errors that name the key."""

import json

import pytest

from segloop.learn.config import Config, ConfigError, load_config, parse_overrides, to_dict

BASE = {"data": {"path": "/data/em"}}


def test_defaults_and_overrides():
    cfg = load_config(BASE, overrides=["training.max_minutes=15", "output.dir=/tmp/run",
                                       "model.channels=[8, 16, 32]", "data.classes.cell=[1, 2]",
                                       "data.path=/elsewhere"])
    assert isinstance(cfg, Config)
    assert cfg.training.max_minutes == 15.0 and cfg.output.dir == "/tmp/run"
    assert cfg.model.channels == [8, 16, 32] and cfg.data.path == "/elsewhere"
    # a dotted key under a default mapping replaces the default, it does not add to it
    assert cfg.data.classes == {"cell": [1, 2]} and cfg.n_classes == 1
    assert cfg.training.epochs == 50 and cfg.loss.name == "dice_ce"  # defaults


def test_yaml_and_json_files_round_trip(tmp_path):
    cfg = load_config(BASE, overrides=["data.dims=3", "data.patch_size=[32, 32, 16]"])
    path = tmp_path / "c.json"
    path.write_text(json.dumps(to_dict(cfg)))
    again = load_config(path)
    assert again == cfg
    (tmp_path / "c.yaml").write_text("data:\n  path: x\n  dims: 3\ntraining:\n  epochs: 2\n")
    assert load_config(tmp_path / "c.yaml").training.epochs == 2


@pytest.mark.parametrize("raw, overrides, message", [
    (BASE, ["training.epoch=3"], "training.epoch: unknown key (known: epochs,"),
    (BASE, ["trainin.epochs=3"], "trainin: unknown key (known: data, model,"),
    (BASE, ["training.epochs=0"], "training.epochs: Input should be greater than or equal to 1"),
    (BASE, ["data.dims=4"], "data.dims: Input should be 2 or 3"),
    (BASE, ["loss.name=dise"], "loss.name: Input should be"),
    (BASE, ["data.patch_size=[64, 64, 64]"], "patch_size: 2 sizes expected for dims=2"),
    (BASE, ["data.classes.tumour=[0]"], "classes.tumour: label values must be positive"),
    (BASE, ["model.final_activation=normrelu"], "SoftSeg"),
    ({}, [], "data: required key missing"),
    (BASE, ["training"], "expected KEY=VALUE"),
    (BASE, ["training.epochs.x=1"], "training.epochs"),
])
def test_bad_keys_and_values_are_named(raw, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(raw, overrides=overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML/JSON"):
        load_config(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="list.yaml: a config must be a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "typo.yaml").write_text("data:\n  path: x\n  pth: y\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: data.pth: unknown key"):
        load_config(tmp_path / "typo.yaml")


def test_override_values_are_yaml_scalars():
    assert parse_overrides(["a.b=1", "c=true", "d=[1, 2]", "e=text", "f="]) == [
        (["a", "b"], 1), (["c"], True), (["d"], [1, 2]), (["e"], "text"), (["f"], None)]


def test_softseg_needs_a_regression_or_dice_loss():
    cfg = load_config(BASE, overrides=["model.final_activation=normrelu", "loss.name=adaptive_wing",
                                       "data.soft_labels=true"])
    assert cfg.model.final_activation == "normrelu" and cfg.data.soft_labels


@pytest.mark.parametrize("override, key, expected", [
    ("data.path=on", "data.path", "on"),  # YAML would read a bool
    ("data.path=2024", "data.path", "2024"),
    ("data.path=null", "data.path", "null"),  # a folder named null: path takes no None
    ("data.split.by=yes", "data.split.by", "yes"),
    ("data.layout=no", "data.layout", "no"),
    ("data.label=1e3", "data.label", "1e3"),
    ("data.label=[r1, r2]", "data.label", ["r1", "r2"]),  # lists stay lists
    ("training.init_from=", "training.init_from", None),  # optional text: null is None
    ("data.cache_dir=~", "data.cache_dir", None),
    ("data.slice_axis=1", "data.slice_axis", 1),  # not a text key: YAML
    ("training.resume=off", "training.resume", False),
])
def test_text_keys_keep_the_override_as_written(override, key, expected):
    cfg = load_config(BASE, overrides=[override])
    section, *rest = key.split(".")
    value = getattr(cfg, section)
    for part in rest:
        value = getattr(value, part)
    assert value == expected
