"""Raters: which labels of a case were drawn by whom, and reading them together.

Several experts may label the same image.  Their labels stay apart in
``case.labels`` (one name each), and :attr:`Case.raters
<segloop.io.dataset.Case.raters>` says which of them are raters of what::

    case.raters == {kind: {rater id: name of that rater's label in case.labels}}

The *kind* is what was drawn.  Where the raters come from:

* ``qubiq_brain_growth_7raters``: kind ``manual``, raters ``rater1`` ...
  ``raterR``, each the name of its label.
* ``retina_drive_2raters``: kind ``manual``, raters ``rater1`` and ``rater2``.
* ``raters`` (``images/<name>`` + ``labels/<rater>/<name>``): kind
  ``manual``, raters (and label names) the folder names.
* ``bids``: the kind is the BIDS label (``seg-manual``), the rater the
  ``<id>`` of ``derivatives/labels-<id>/`` or of a ``rater-<id>`` entity, and
  the label name ``<label>_rater-<id>`` (``seg-manual_rater-alice``); see
  :mod:`segloop.io.bids`.

A label that is not a rater's (QUBIQ ``alpha``, DRIVE ``fov``, a plain
``derivatives/labels/`` label) is in ``case.labels`` only.  Rater ids are
listed in plain ``sorted`` order everywhere.  Images may have different
raters (some raters skip some images): each case lists those it has, and
:func:`rater_kinds` lists every rater of every kind over the cases.

Examples
--------
>>> rater_label_name("seg-manual", "alice")
'seg-manual_rater-alice'
>>> split_rater_entity({"sub": "01", "rater": "bob"}, "seg-manual")
({'sub': '01'}, 'seg-manual', 'bob')
>>> split_rater_entity({"sub": "01"}, "rater-bob_seg-manual")
({'sub': '01'}, 'seg-manual', 'bob')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from segloop.errors import DatasetError, GeometryMismatchError, InvalidArgumentError
from segloop.io.geometry import same_grid
from segloop.io.image import Image

if TYPE_CHECKING:
    from segloop.io.dataset import Case

__all__ = [
    "RATER_ENTITY",
    "rater_kind",
    "rater_kinds",
    "rater_label_name",
    "rater_labels",
    "read_raters",
    "split_rater_entity",
]

#: The BIDS entity key naming a rater (``rater-<id>``).
RATER_ENTITY = "rater"
_RATER_TOKEN = re.compile(r"^rater-([a-zA-Z0-9]+)$")


def rater_label_name(label: str, rater: str) -> str:
    """Name in ``case.labels`` of rater ``rater``'s ``label`` in a BIDS dataset."""
    return f"{label}_{RATER_ENTITY}-{rater}"


def split_rater_entity(
    entities: dict[str, str], label: str | None
) -> tuple[dict[str, str], str | None, str | None]:
    """Take the ``rater-<id>`` entity out of a BIDS label file name's parts.

    Parameters
    ----------
    entities : dict of str to str
        The entities before the suffix (:attr:`segloop.io.bids.BidsName.entities`).
    label : str or None
        The text after the suffix (``rater-alice_seg-manual``).

    Returns
    -------
    tuple
        ``(entities, label, rater)``: without the rater part (``label`` is
        ``None`` when nothing else is left), and the rater id or ``None``.

    Raises
    ------
    InvalidArgumentError
        The rater is given twice.

    Examples
    --------
    >>> split_rater_entity({"sub": "01"}, "seg-manual_rater-2")
    ({'sub': '01'}, 'seg-manual', '2')
    >>> split_rater_entity({"sub": "01"}, "seg-manual")
    ({'sub': '01'}, 'seg-manual', None)
    """
    found = [entities[RATER_ENTITY]] if RATER_ENTITY in entities else []
    kept = []
    for token in label.split("_") if label else []:
        match = _RATER_TOKEN.match(token)
        if match:
            found.append(match.group(1))
        else:
            kept.append(token)
    if len(found) > 1:
        raise InvalidArgumentError(f"the rater is given {len(found)} times ({', '.join(found)})")
    rest = {k: v for k, v in entities.items() if k != RATER_ENTITY}
    return rest, "_".join(kept) or None, found[0] if found else None


def _kinds(case: Case) -> str:
    return ", ".join(sorted(case.raters)) or "none"


def rater_kind(case: Case, kind: str | None = None) -> str | None:
    """The kind of raters meant by ``kind`` for ``case`` (``None``: the case has no rater).

    ``kind=None`` means the case's only kind, else the kind of its main label
    (``case.label`` is that kind, or one of its raters' labels).

    Raises
    ------
    DatasetError
        ``kind`` is not one of the case's kinds, or ``None`` is ambiguous;
        the message names the case and the kinds found.
    """
    if not case.raters:
        return None
    if kind is not None:
        if kind not in case.raters:
            raise DatasetError(
                f"case {case.id} has no raters of kind {kind!r} (kinds: {_kinds(case)})"
            )
        return kind
    if len(case.raters) == 1:
        return next(iter(case.raters))
    if case.label in case.raters:
        return case.label
    owners = [k for k, names in case.raters.items() if case.label in names.values()]
    if len(owners) == 1:
        return owners[0]
    raise DatasetError(
        f"case {case.id} has raters of several kinds ({_kinds(case)}); name the kind"
    )


def rater_labels(case: Case, kind: str | None = None) -> dict[str, str]:
    """Rater id -> label name of ``case`` for ``kind``, sorted by rater id.

    ``kind`` is resolved by :func:`rater_kind`; no rater at all gives ``{}``.
    """
    kind = rater_kind(case, kind)
    return {} if kind is None else dict(sorted(case.raters[kind].items()))


def read_raters(case: Case, kind: str | None = None) -> dict[str, Image]:
    """Read every rater's label of ``case`` and check they share one grid.

    Each image's ``metadata`` gets ``rater`` (the id) and ``rater_kind``.

    Raises
    ------
    DatasetError
        Bad ``kind`` (see :func:`rater_kind`), or a label that cannot be read.
    GeometryMismatchError
        A rater's label is not on the grid of the first rater's; the message
        names the case and both raters.
    """
    resolved = rater_kind(case, kind)
    out: dict[str, Image] = {}
    for rater, name in rater_labels(case, resolved).items():
        image = case.read_label(name)
        image.metadata.update(rater=rater, rater_kind=resolved)
        if out:
            first, reference = next(iter(out.items()))
            ok, why = same_grid(reference, image)
            if not ok:
                raise GeometryMismatchError(
                    f"case {case.id}: the {resolved!r} label of rater {rater!r} ({name}) is "
                    f"not on the grid of rater {first!r}'s: {why}"
                )
        out[rater] = image
    return out


def rater_kinds(cases: Iterable[Case]) -> dict[str, list[str]]:
    """Every kind of rater label over ``cases`` and its rater ids (sorted).

    Examples
    --------
    >>> from pathlib import Path
    >>> from segloop.io.dataset import Case
    >>> a = Case("a", "a", Path("a.png"), raters={"manual": {"r2": "r2", "r1": "r1"}})
    >>> b = Case("b", "b", Path("b.png"), raters={"manual": {"r3": "r3"}})
    >>> rater_kinds([a, b, Case("c", "c", Path("c.png"))])
    {'manual': ['r1', 'r2', 'r3']}
    """
    found: dict[str, set[str]] = {}
    for case in cases:
        for kind, names in case.raters.items():
            found.setdefault(kind, set()).update(names)
    return {kind: sorted(ids) for kind, ids in sorted(found.items())}
