"""The raw metadata values of a case or an image, before :mod:`segloop.learn.metadata` encodes them.

The raw value of each field of ``model.film.fields`` for a case
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

Examples
--------
>>> from segloop.learn.config import FilmConfig
>>> film = FilmConfig(fields=["contrast", "sex"], table={"sub-01": {"sex": "n/a"}})
>>> field_values(film, subject="01", metadata={"sex": "F"}, contrast="T2w",
...              table=read_table(film.table))
{'contrast': 'T2w', 'sex': 'F'}
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

from segloop.errors import DatasetError, FileMissingError, SegloopError
from segloop.io.bids import parse_bids_name

__all__ = ["MISSING_TEXT", "case_values", "field_values", "image_values", "is_missing",
           "read_table"]

#: Text values that mean "no value" (compared lower-case, stripped).
MISSING_TEXT = frozenset({"", "n/a", "na", "nan", "none", "null", "-"})
_KEYS = ("case", "subject", "participant_id")  # table columns naming the row


def is_missing(value) -> bool:
    """Whether ``value`` is no value: None, NaN, or text of :data:`MISSING_TEXT`.

    Examples
    --------
    >>> is_missing(" N/A "), is_missing(float("nan")), is_missing(0), is_missing("F")
    (True, True, False, False)
    """
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_TEXT


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
        A file without a key column, or not a text table (named).
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
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError("model.film.table: not a readable text table "
                           f"({type(exc).__name__})", path=path) from None
    suffix = path.suffix.lower()
    delimiter = "\t" if suffix == ".tsv" else ","
    if suffix not in (".tsv", ".csv") and text:
        try:
            delimiter = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",\t;").delimiter
        except csv.Error:  # one column (or no delimiter found): read it as CSV
            pass
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
        if is_missing(value):
            value = meta.get(f.name)
        if is_missing(value) and f.name == "contrast":
            value = contrast
        out[f.name] = None if is_missing(value) else value
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
