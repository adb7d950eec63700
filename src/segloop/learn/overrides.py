"""``--set KEY=VALUE`` overrides of a config, read by the type of the key they set.

``segloop train CONFIG --set training.max_minutes=20 --set data.path=/data/em``
overrides any key by its dotted name (:func:`segloop.learn.config.load_config`
applies them before validating). A VALUE is read as YAML (``20`` is a number,
``true`` a bool, ``[8, 16]`` a list, ``null`` or nothing is None), except that
a key whose type is text keeps the text as written: ``data.path=on``,
``data.path=2024`` or ``data.split.by=yes`` are the folder ``on``, the folder
``2024`` and the column ``yes``, not a bool and a number. A key that also
accepts None (``training.init_from``, ``data.cache_dir``) still takes
``null``, ``~`` or an empty value as None.

Examples
--------
>>> parse_overrides(["training.epochs=3", "data.path=on", "model.channels=[8, 16]",
...                  "training.init_from=null"])  # doctest: +NORMALIZE_WHITESPACE
[(['training', 'epochs'], 3), (['data', 'path'], 'on'), (['model', 'channels'], [8, 16]),
 (['training', 'init_from'], None)]
>>> raw = {"data": {"path": "x"}}
>>> apply_override(raw, ["data", "split", "test"], 2)
>>> raw
{'data': {'path': 'x', 'split': {'test': 2}}}
"""

from __future__ import annotations

import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel

from segloop.errors import InvalidArgumentError

__all__ = ["apply_override", "parse_overrides"]


def _annotation(schema: type[BaseModel], parts: list[str]):
    """The type of the field at dotted ``parts`` of ``schema`` (None: not a field)."""
    model = schema
    for part in parts[:-1]:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    field = model.model_fields.get(parts[-1])
    return None if field is None else field.annotation


def _accepts(annotation) -> tuple[bool, bool]:
    """Whether a field of this type accepts text, and None."""
    if annotation is str:
        return True, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return str in args, type(None) in args
    return False, False


def _value(text: str, annotation) -> Any:
    try:
        parsed = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        parsed = text
    text_ok, none_ok = _accepts(annotation)
    if not text_ok or isinstance(parsed, str | list | dict):
        return parsed
    if parsed is None and none_ok:
        return None
    return text.strip()  # on, yes, 2024, 1e3, null: the text as written


def parse_overrides(overrides, *, schema: type[BaseModel] | None = None,
                    ) -> list[tuple[list[str], Any]]:
    """``["a.b=1", ...]`` as ``[(["a", "b"], 1), ...]``.

    Parameters
    ----------
    overrides : sequence of str or None
        ``KEY=VALUE`` items with dotted keys.
    schema : pydantic model class, optional
        The config schema that decides which keys are text (default:
        :class:`segloop.learn.config.Config`). Keys it does not know are read as
        YAML (the schema's validation names them afterwards).

    Returns
    -------
    list of (list of str, object)
        The key's parts and its value (see the module docstring).

    Raises
    ------
    segloop.learn.config.ConfigError
        An item that is not ``KEY=VALUE`` with a dotted key.
    """
    from segloop.learn.config import Config, ConfigError  # the schema imports this module

    schema = schema or Config
    out = []
    for item in overrides or []:
        key, sep, value = str(item).partition("=")
        parts = key.strip().split(".")
        if not sep or not key.strip() or any(not p for p in parts):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key")
        out.append((parts, _value(value, _annotation(schema, parts))))
    return out


def apply_override(raw: dict, parts: list[str], value) -> None:
    """Set ``raw[parts[0]][parts[1]]... = value`` in a config mapping, creating sections.

    Raises
    ------
    segloop.errors.InvalidArgumentError
        A part of the key that is a value, not a section (the message names it).
    """
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise _config_error(f"--set {'.'.join(parts)}: {'.'.join(parts[:i + 1])} is not "
                                "a section")
        node = nxt
    node[parts[-1]] = value


def _config_error(message: str) -> InvalidArgumentError:
    from segloop.learn.config import ConfigError

    return ConfigError(message)
