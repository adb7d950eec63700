"""The raters of a dataset read for the report: binary masks per case, kinds, groups.

:func:`read_rater_cases` reads every case's raters (of one kind, chosen for
the whole dataset by :func:`choose_kind`) as binary masks, with the case's
region and spacing; :func:`rater_groups` reads a rater attribute (e.g. the
centre) from a ``raters.tsv`` table; :func:`example_case` picks the case a
report shows.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, open_dataset, write_image
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> write_image(Image(np.zeros((4, 4), np.uint8)), root / "images" / "a.png")
>>> for rater in ("ann", "bob"):
...     write_image(Image(np.eye(4, dtype=np.uint8), kind="label"),
...                 root / "labels" / rater / "a.png")
>>> cases, skipped = read_rater_cases(open_dataset(root))
>>> sorted(cases[0].masks), cases[0].spacing, skipped
(['ann', 'bob'], (1.0, 1.0), [])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from segloop.errors import DatasetError
from segloop.io.dataset import Case, Dataset
from segloop.io.raters import rater_kinds

__all__ = ["RaterCase", "choose_kind", "example_case", "rater_groups", "read_rater_cases"]


class RaterCase:
    """One case's binary rater masks, region and spacing, as the report uses them."""

    def __init__(self, case: Case, masks: dict[str, np.ndarray], spacing: tuple[float, ...],
                 region: np.ndarray | None):
        self.case = case
        self.id = case.id
        self.masks = masks
        self.spacing = spacing
        self.region = region

    def read_image(self) -> np.ndarray:
        """The case's image as a 2D/3D gray array (channels averaged)."""
        image = self.case.read_image()
        array = np.asarray(image.array, dtype=np.float32)
        return array.mean(axis=-1) if image.n_channels > 1 else array


def _binary(array: np.ndarray, case: Case, rater: str, class_value: int | None) -> np.ndarray:
    if class_value is not None:
        return array == class_value
    values = np.unique(array)
    extra = [v for v in values.tolist() if v not in (0, 1)]
    if extra:
        raise DatasetError(
            f"case {case.id}, rater {rater}: label values {values.tolist()[:10]} are not binary; "
            "choose the label to score with --class K (class_value=K)")
    return array.astype(bool)


def _region(case: Case, region: str | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if region is None:
        return None
    if not case.has_label(region):
        raise DatasetError(f"case {case.id} has no region label {region!r} "
                           f"(has: {', '.join(sorted(case.labels)) or 'none'})")
    mask = case.read_label(region).array != 0
    if mask.shape != shape:
        raise DatasetError(f"case {case.id}: region {region!r} has shape {mask.shape}, "
                           f"the raters {shape}")
    return mask


def choose_kind(dataset: Dataset, kind: str | None = None) -> str:
    """The kind of raters to use for the whole dataset: ``kind``, the only one, or the main label's.

    Raises
    ------
    DatasetError
        No case has raters, ``kind`` is not a kind found, or there are
        several kinds and none was chosen (the kinds are listed).
    """
    kinds = rater_kinds(dataset.cases)
    if not kinds:
        raise DatasetError("no case of this dataset has raters (expected labels/<rater>/ folders, "
                           "derivatives/labels-<rater>/ or _rater-<id> in BIDS, or a multi-rater "
                           "set such as QUBIQ or DRIVE)", path=dataset.root)
    listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items())
    if kind is not None:
        if kind not in kinds:
            raise DatasetError(f"no raters of {kind!r} (raters found: {listed})", path=dataset.root)
        return kind
    if len(kinds) == 1:
        return next(iter(kinds))
    if dataset.label in kinds:
        return dataset.label
    raise DatasetError(f"raters of several labels ({listed}); choose one with --kind "
                       "(kind=...)", path=dataset.root)


def read_rater_cases(
    dataset: Dataset, *, kind: str | None = None, class_value: int | None = None,
    region: str | None = None, limit: int | None = None,
) -> tuple[list[RaterCase], list[dict[str, str]]]:
    """Read the binary rater masks of every case; cases with < 2 raters are skipped.

    Returns
    -------
    cases : list of RaterCase
    skipped : list of dict
        ``{"case": id, "reason": ...}`` per case left out.
    """
    kind = choose_kind(dataset, kind)
    cases, skipped = [], []
    for case in dataset.cases:
        if limit is not None and len(cases) >= limit:
            break
        names = case.raters.get(kind, {})
        if len(names) < 2:
            skipped.append({"case": case.id, "reason": f"{len(names)} rater(s); 2 are needed"})
            continue
        images = case.read_raters(kind)
        first = next(iter(images.values()))
        masks = {r: _binary(np.asarray(im.array), case, r, class_value) for r, im in images.items()}
        spacing = tuple(float(s) for s in first.spacing)
        cases.append(RaterCase(case, masks, spacing, _region(case, region, first.shape)))
    return cases, skipped


def rater_groups(table: str | os.PathLike, attribute: str) -> dict[str, str]:
    r"""Rater id -> value of ``attribute`` from a rater table (TSV with a ``rater`` column).

    A BIDS-style ``raters.tsv``: tab-separated, a header line, one row per
    rater; ids may be written ``alice`` or ``rater-alice``.  Raters whose
    value is ``n/a`` have no group.

    Raises
    ------
    DatasetError
        The table is malformed or has no such column (the columns are listed).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "raters.tsv"
    >>> _ = p.write_text("rater\tcentre\nrater-a\tparis\nb\tlyon\nc\tn/a\n")
    >>> rater_groups(p, "centre")
    {'a': 'paris', 'b': 'lyon'}
    """
    from segloop.io.bids import read_tsv

    rows = read_tsv(Path(table), key="rater")
    columns = sorted({c for row in rows.values() for c in row} - {"rater"})
    if attribute not in columns:
        raise DatasetError(f"no column {attribute!r} (columns: {', '.join(columns) or 'none'})",
                           path=table)
    out = {}
    for rater, row in rows.items():
        if row.get(attribute) is not None:
            out[rater.removeprefix("rater-")] = str(row[attribute])
    return out


def example_case(cases: list[RaterCase], report: Mapping[str, Any]) -> RaterCase:
    """The case whose mean Dice vs consensus is the median of the cases (for the overlay)."""
    means = {}
    for row in report["cases"]:
        means.setdefault(row["case"], []).append(row["dice"])
    order = sorted(cases, key=lambda c: float(np.nanmean(means.get(c.id, [np.nan]))))
    return order[len(order) // 2]
