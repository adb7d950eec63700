"""Case metadata as a vector: what a FiLM network (:mod:`segloop.learn.film`) is conditioned on.

**Values.** The raw value of each field of ``model.film.fields`` for a case
or an image (``model.film.table``, the case's metadata, its contrast; text such
as ``n/a`` is no value) comes from :mod:`segloop.learn.metadata_values`.

**Encoding.** :func:`build_spec` learns the encoding from the training cases
(plain data: it is stored in checkpoints as ``preprocess["metadata"]``) and
:class:`MetadataEncoder` applies it. Each field is a block of the vector that
ends with a *missing flag*:

* categorical: a one-hot of its categories (``categories`` of the config, or
  the training cases' values sorted; matched case-insensitively), then the
  flag;
* numeric: ``(value - mean) / std`` with the training cases' mean and standard
  deviation (std 1 when they all agree), then the flag.

A missing field is all zeros with the flag at 1 (``model.film.on_missing:
error`` makes it a :class:`~segloop.errors.DatasetError` naming the case and
the field). A category no training case had is an error naming the field, the
value and the known categories (``on_unknown: error``, the default), or with
``on_unknown: missing`` the missing encoding and a :class:`MetadataWarning`.
A numeric field that is not a number is always an error.

Examples
--------
>>> from segloop.learn.config import load_config
>>> film = load_config({"data": {"path": "x"}, "model": {"film": {"fields": [
...     "contrast", {"name": "age", "kind": "numeric"}]}}}).model.film
>>> spec = build_spec(film, {"a": {"contrast": "T2w", "age": 30},
...                          "b": {"contrast": "T1w", "age": "50"}})
>>> enc = MetadataEncoder(spec)
>>> enc.fields, enc.size
(['contrast', 'age'], 5)
>>> enc.encode({"contrast": "t1w", "age": 40}).tolist()
[1.0, 0.0, 0.0, 0.0, 0.0]
>>> enc.encode({"contrast": None, "age": 60}).tolist()
[0.0, 0.0, 1.0, 2.0, 0.0]
>>> enc.decode(enc.encode({"contrast": "T2w"}))
{'contrast': 'T2w', 'age': None}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

from segloop.errors import DatasetError, InvalidArgumentError
from segloop.learn.metadata_values import is_missing

__all__ = ["MetadataEncoder", "MetadataWarning", "build_spec"]

SPEC_VERSION = 1


class MetadataWarning(UserWarning):
    """A metadata value encoded as missing (``model.film.on_unknown: missing``)."""


# ----------------------------------------------------------------------------- spec
def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _number(value, field: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: metadata field {field!r} is numeric, got {value!r}") \
            from None
    return number


def build_spec(film, values: Mapping[str, Mapping]) -> dict:
    """The encoding of ``film``'s fields learned from the training cases' values.

    Parameters
    ----------
    film : FilmConfig
        ``model.film``.
    values : mapping
        ``{case id: {field: raw value}}`` of the training cases
        (:func:`~segloop.learn.metadata_values.case_values`).

    Returns
    -------
    dict
        Plain data: ``version``, ``fields`` (``name``, ``kind``, ``categories``
        or ``mean`` / ``std``), ``size`` (vector length), ``on_missing``,
        ``on_unknown``.

    Raises
    ------
    segloop.errors.DatasetError
        A categorical field without ``categories`` that no training case has,
        a numeric value that is not a number, or (``on_missing: error``) a
        training case without a value (named).
    """
    fields, size = [], 0
    for f in film.fields:
        present = {cid: v[f.name] for cid, v in values.items() if not is_missing(v.get(f.name))}
        if film.on_missing == "error" and len(present) < len(values):
            cid = next(c for c in values if c not in present)
            raise DatasetError(f"case {cid}: no value for metadata field {f.name!r} "
                               "(model.film.on_missing: error)")
        if f.kind == "categorical":
            categories = [c.strip() for c in f.categories] if f.categories else []
            if not categories:
                seen: dict[str, str] = {}
                for v in sorted(_text(v) for v in present.values()):
                    seen.setdefault(v.lower(), v)
                categories = list(seen.values())
            if not categories:
                raise DatasetError(f"metadata field {f.name!r}: no training case has a value "
                                   "(give model.film.fields categories, or check the table "
                                   "and the cases' metadata)")
            fields.append({"name": f.name, "kind": "categorical", "categories": categories})
            size += len(categories) + 1
        else:
            numbers = [_number(v, f.name, f"case {cid}") for cid, v in present.items()]
            numbers = [x for x in numbers if math.isfinite(x)]
            mean = float(np.mean(numbers)) if numbers else 0.0
            std = float(np.std(numbers)) if numbers else 1.0
            fields.append({"name": f.name, "kind": "numeric", "mean": mean,
                           "std": std if std > 1e-8 else 1.0})
            size += 2
    return {"version": SPEC_VERSION, "fields": fields, "size": size,
            "on_missing": film.on_missing, "on_unknown": film.on_unknown}


def _checked_field(field: Mapping) -> dict:
    """One field of a spec, its keys checked (KeyError, TypeError, ValueError when bad)."""
    out = {"name": str(field["name"]), "kind": str(field["kind"])}
    if out["kind"] == "categorical":
        out["categories"] = [str(c) for c in field["categories"]]
        if not out["categories"]:
            raise ValueError(f"field {out['name']!r} without categories")
    elif out["kind"] == "numeric":
        out["mean"], out["std"] = float(field["mean"]), float(field["std"])
    else:
        raise ValueError(f"field {out['name']!r} of kind {out['kind']!r}")
    return out


class MetadataEncoder:
    """Encode raw field values as the float32 vector of a spec (:func:`build_spec`).

    Parameters
    ----------
    spec : dict
        :func:`build_spec`'s plain data (``preprocess["metadata"]`` of a checkpoint).
    """

    def __init__(self, spec: Mapping):
        try:
            self.spec = {"version": int(spec["version"]),
                         "fields": [_checked_field(f) for f in spec["fields"]],
                         "size": int(spec["size"]), "on_missing": str(spec["on_missing"]),
                         "on_unknown": str(spec["on_unknown"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"not a metadata spec ({exc!r} missing or bad)") from None
        if self.spec["version"] > SPEC_VERSION:
            raise InvalidArgumentError(f"metadata spec version {self.spec['version']} is newer "
                                       f"than this segloop reads ({SPEC_VERSION})")
        #: ``(start, stop)`` of each field's block; its missing flag is at ``stop - 1``
        self.blocks: list[tuple[int, int]] = []
        start = 0
        for f in self.spec["fields"]:
            width = len(f["categories"]) + 1 if f["kind"] == "categorical" else 2
            self.blocks.append((start, start + width))
            start += width
        if start != self.spec["size"]:
            raise InvalidArgumentError(f"metadata spec: size {self.spec['size']} but its fields "
                                       f"take {start}")
        self._lower = [{c.lower(): i for i, c in enumerate(f.get("categories") or [])}
                       for f in self.spec["fields"]]

    @property
    def fields(self) -> list[str]:
        """The field names, in vector order."""
        return [f["name"] for f in self.spec["fields"]]

    @property
    def size(self) -> int:
        """Length of the vector (``meta_dim`` of the network)."""
        return self.spec["size"]

    def missing(self) -> np.ndarray:
        """The vector of a case without any value (every field's missing flag set)."""
        out = np.zeros(self.size, np.float32)
        for _, stop in self.blocks:
            out[stop - 1] = 1.0
        return out

    def check_names(self, values: Mapping, *, what: str = "metadata") -> None:
        """Refuse field names the encoder does not know (``--meta`` typos)."""
        unknown = [k for k in values if k not in self.fields]
        if unknown:
            raise InvalidArgumentError(f"{what}: unknown field {unknown[0]!r} (the model's "
                                       f"fields: {', '.join(self.fields)})")

    def encode(self, values: Mapping, *, where: str = "image") -> np.ndarray:
        """``float32 (size,)`` of ``{field: raw value}`` (absent keys are missing values).

        ``where`` names the case or file in errors and warnings.

        Raises
        ------
        segloop.errors.DatasetError
            A missing value under ``on_missing: error``, an unknown category
            under ``on_unknown: error`` (naming the known ones), a numeric
            field that is not a number.
        """
        out = self.missing()
        for f, (start, stop), lower in zip(self.spec["fields"], self.blocks, self._lower,
                                           strict=True):
            value = values.get(f["name"])
            if is_missing(value):
                if self.spec["on_missing"] == "error":
                    raise DatasetError(f"{where}: no value for metadata field {f['name']!r} "
                                       "(model.film.on_missing: error; e.g. segloop predict "
                                       f"--meta {f['name']}=VALUE)")
                continue
            if f["kind"] == "numeric":
                x = _number(value, f["name"], where)
                if math.isfinite(x):
                    out[start], out[stop - 1] = (x - f["mean"]) / f["std"], 0.0
                continue
            index = lower.get(_text(value).lower())
            if index is None:
                message = (f"{where}: metadata field {f['name']!r} has the value {value!r}, "
                           f"unknown to the model (known: {', '.join(f['categories'])})")
                if self.spec["on_unknown"] == "error":
                    raise DatasetError(message + "; model.film.on_unknown: missing encodes it "
                                       "as missing")
                warnings.warn(message + "; encoded as missing", MetadataWarning, stacklevel=2)
                continue
            out[start + index], out[stop - 1] = 1.0, 0.0
        return out

    def decode(self, vector) -> dict:
        """``{field: category, number or None}`` of an encoded vector (numbers un-z-scored)."""
        v = np.asarray(vector, dtype=np.float64).reshape(-1)
        if v.size != self.size:
            raise InvalidArgumentError(f"a metadata vector of {v.size} values; the spec has "
                                       f"{self.size}")
        out = {}
        for f, (start, stop) in zip(self.spec["fields"], self.blocks, strict=True):
            if v[stop - 1] >= 0.5:
                out[f["name"]] = None
            elif f["kind"] == "numeric":
                out[f["name"]] = float(v[start] * f["std"] + f["mean"])
            else:
                out[f["name"]] = f["categories"][int(np.argmax(v[start:stop - 1]))]
        return out
