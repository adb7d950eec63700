"""Case metadata as a vector: what a FiLM network (:mod:`segloop.learn.film`) is conditioned on.

**Values.** The raw value of each field of ``model.film.fields`` for a case
(:func:`case_values`) comes from, in this order:

1. ``model.film.table``: a TSV/CSV file (a ``case``, ``subject`` or
   ``participant_id`` column, then one column per field) or an inline mapping
   ``{case id or subject: {field: value}}``; a row is found by case id, then by
   subject (also as ``sub-SUBJECT``);
2. the case's metadata (:attr:`segloop.io.Case.metadata`: BIDS sidecar JSON and
   ``participants.tsv`` rows are merged there by :mod:`segloop.io`; the
   ``data.csv`` columns of LGG...);
3. built-ins: ``contrast`` is the case's contrast (the BIDS suffix, or the
   channel name of ``data.split_channels``).

An image read outside a dataset has only the values of its own metadata
(:func:`image_values`). Text that says "no value" (empty, ``n/a``, ``na``,
``nan``, ``none``, ``null``, ``-``; any case) counts as missing.

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

import csv
import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from segloop.errors import DatasetError, FileMissingError, InvalidArgumentError, SegloopError
from segloop.io.bids import parse_bids_name

__all__ = ["MISSING_TEXT", "MetadataEncoder", "MetadataWarning", "build_spec", "case_values",
           "field_values", "image_values", "read_table"]

#: Text values that mean "no value" (compared lower-case, stripped).
MISSING_TEXT = frozenset({"", "n/a", "na", "nan", "none", "null", "-"})
_KEYS = ("case", "subject", "participant_id")  # table columns naming the row
SPEC_VERSION = 1


class MetadataWarning(UserWarning):
    """A metadata value encoded as missing (``model.film.on_unknown: missing``)."""


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_TEXT


# ----------------------------------------------------------------------------- values
def read_table(table, *, required: bool = True) -> dict[str, dict]:
    """``{case id or subject: {column: value}}`` of ``model.film.table``.

    Parameters
    ----------
    table : str, os.PathLike, mapping or None
        A TSV/CSV file (``.tsv``: tabs, ``.csv``: commas, else sniffed) with a
        ``case``, ``subject`` or ``participant_id`` column, or the mapping itself.
    required : bool
        A missing file is an error (training); otherwise it is skipped
        (inference on another machine: the images' metadata and ``--meta``
        give the values).

    Raises
    ------
    segloop.errors.FileMissingError
        No such file (``required``).
    segloop.errors.DatasetError
        A file without a key column (named).
    """
    if table is None:
        return {}
    if isinstance(table, Mapping):
        return {str(k): dict(v or {}) for k, v in table.items()}
    path = Path(table)
    if not path.is_file():
        if required:
            raise FileMissingError("model.film.table: no such file", path=path)
        return {}
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    delimiter = "\t" if suffix == ".tsv" else "," if suffix == ".csv" else csv.Sniffer().sniff(
        text.splitlines()[0] if text else ",", delimiters=",\t;").delimiter
    rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    columns = list(rows[0]) if rows else []
    key = next((k for k in _KEYS if k in columns), None)
    if key is None:
        raise DatasetError(f"model.film.table: no {', '.join(_KEYS)} column (columns: "
                           f"{', '.join(columns) or 'none'})", path=path)
    return {str(r[key]).strip(): {c: v for c, v in r.items() if c != key} for r in rows}


def field_values(film, *, case_id: str | None = None, subject: str | None = None,
                 metadata: Mapping | None = None, contrast: str | None = None,
                 table: Mapping | None = None) -> dict:
    """The raw value of every field of ``film`` (None when missing): table, metadata, built-ins.

    ``table``: :func:`read_table`'s mapping (read once by the caller).

    Examples
    --------
    >>> from segloop.learn.config import FilmConfig
    >>> film = FilmConfig(fields=["contrast", "sex"], table={"sub-01": {"sex": "F"}})
    >>> field_values(film, subject="01", contrast="T2w", table=read_table(film.table))
    {'contrast': 'T2w', 'sex': 'F'}
    """
    rows = table or {}
    keys = [k for k in (case_id, subject, f"sub-{subject}" if subject else None) if k]
    row = next((rows[k] for k in keys if k in rows), {})
    meta = metadata or {}
    out = {}
    for f in film.fields:
        value = row.get(f.name)
        if _is_missing(value):
            value = meta.get(f.name)
        if _is_missing(value) and f.name == "contrast":
            value = contrast
        out[f.name] = None if _is_missing(value) else value
    return out


def case_values(film, case, *, table: Mapping | None = None) -> dict:
    """:func:`field_values` of a :class:`segloop.io.Case` (its id, subject, metadata, contrast)."""
    return field_values(film, case_id=case.id, subject=case.subject, metadata=case.metadata,
                        contrast=case.contrast, table=table)


def image_values(film, image, *, table: Mapping | None = None) -> dict:
    """:func:`field_values` of a :class:`segloop.io.Image` from its own metadata.

    A case's image carries its ``case`` and ``subject`` (table rows apply) and
    may carry its ``contrast``; an image read from a BIDS-named file
    (``sub-01_T2w.nii.gz``) has the subject and contrast (suffix) of its name.

    Examples
    --------
    >>> import numpy as np
    >>> from segloop.io import Image
    >>> from segloop.learn.config import FilmConfig
    >>> image = Image(np.zeros((2, 2)), metadata={"path": "/data/sub-07_T2w.nii.gz"})
    >>> image_values(FilmConfig(fields=["contrast", "sex"]), image, table={"sub-07": {"sex": "M"}})
    {'contrast': 'T2w', 'sex': 'M'}
    """
    meta = dict(getattr(image, "metadata", None) or {})
    subject, contrast = meta.get("subject"), meta.get("contrast")
    if meta.get("path") and (subject is None or contrast is None):
        try:
            name = parse_bids_name(Path(str(meta["path"])).name)
        except SegloopError:  # not a BIDS file name
            name = None
        if name is not None:
            subject = subject or name.entities.get("sub")
            contrast = contrast or name.suffix
    return field_values(film, case_id=meta.get("case"), subject=subject, metadata=meta,
                        contrast=contrast, table=table)


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
        ``{case id: {field: raw value}}`` of the training cases (:func:`case_values`).

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
        present = {cid: v[f.name] for cid, v in values.items() if not _is_missing(v.get(f.name))}
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


class MetadataEncoder:
    """Encode raw field values as the float32 vector of a spec (:func:`build_spec`).

    Parameters
    ----------
    spec : dict
        :func:`build_spec`'s plain data (``preprocess["metadata"]`` of a checkpoint).
    """

    def __init__(self, spec: Mapping):
        try:
            self.spec = {"version": int(spec["version"]), "fields": [dict(f) for f in
                                                                     spec["fields"]],
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
            if _is_missing(value):
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
