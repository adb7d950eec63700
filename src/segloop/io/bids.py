"""BIDS datasets: raw images, ``derivatives/labels``, sidecars and tables.

What is read::

    <root>/dataset_description.json, participants.tsv, samples.tsv, <suffix>.json
    <root>/sub-<s>/[ses-<t>/]<datatype>/sub-<s>[_ses-<t>][_<key>-<value>...]_<suffix><ext>
    <root>/sub-<s>/sub-<s>_sessions.tsv, [ses-<t>/]sub-<s>[_ses-<t>]_scans.tsv
    <root>/derivatives/labels/sub-<s>/[ses-<t>/]<datatype>/<image name>_<label><ext>
    <root>/derivatives/labels-<rater>/sub-<s>/[ses-<t>/]<datatype>/<image name>_<label><ext>

* Images: ``.nii``, ``.nii.gz``, ``.png``, ``.tif``, ``.tiff``, ``.ome.tif``,
  ``.jpg`` in any datatype folder (``anat``, ``ct``, ``micr``...).  The case
  id is the file name without extension; the contrast is the BIDS suffix.
* Labels: the image's name plus ``_<label>`` (``_seg-manual``,
  ``_labels-disc-manual``, ``_seg-axon-manual``...).  Every label found is
  listed in ``case.labels``; the configured one (default ``seg-manual``) is
  the main label.  Raster labels are read with ``threshold="auto"`` (0/255
  masks, and the stray 130/218/233 values of the SEM masks, become {0, 1}).
* Raters (see :mod:`segloop.io.raters`): a label drawn by rater ``<id>``
  (letters and digits) sits in ``derivatives/labels-<id>/`` (a sibling of
  ``derivatives/labels/``, same tree inside), or carries a ``rater-<id>``
  entity in its name, in any ``derivatives/labels*/`` folder.  The entity may
  stand among the entities before the suffix or among the parts of the label
  after it: ``sub-01_rater-alice_T2w_seg-manual``,
  ``sub-01_T2w_rater-alice_seg-manual`` and
  ``sub-01_T2w_seg-manual_rater-alice`` are all rater ``alice``'s
  ``seg-manual`` of image ``sub-01_T2w`` (the entity is left out when the
  label is matched to its image).  Such a label is listed in ``case.labels``
  as ``<label>_rater-<id>`` (``seg-manual_rater-alice``) and in
  ``case.raters[<label>][<id>]``; a label without a rater stays a plain
  label (``seg-manual``, the main label).  Images may have different raters.
  A ``rater-<id>`` entity naming another rater than its ``labels-<id>/``
  folder, or given twice, is a problem and the file is skipped; one rater's
  label found twice (in ``labels-alice/`` and with ``rater-alice`` in
  ``labels/``) is a duplicate like any other.
* Metadata, later sources overriding earlier ones: the ``participants.tsv``
  row, the ``samples.tsv`` row (``sample_id`` + ``participant_id``), the
  ``sessions.tsv`` and ``scans.tsv`` rows, then the sidecar JSON merged by
  the BIDS inheritance principle (root, subject, session and datatype levels;
  a sidecar applies when its suffix is the image's and its entities are a
  subset of the image's; the deeper and more specific wins).  A microscopy
  ``PixelSize`` inherited that way gives the pixel spacing of the image and
  of its labels.  ``metadata["entities"]``, ``["datatype"]`` and
  ``["dataset"]`` are added.
* Nested datasets: a folder of the root (other than ``sub-*``,
  ``derivatives``, ``sourcedata``, ``code``...) that holds its own
  ``dataset_description.json`` is a BIDS dataset too (BEP024 CT and BEP031
  microscopy sets are shipped that way).  Its cases are part of the same
  :class:`~segloop.io.dataset.Dataset`, with ``metadata["dataset"]`` set to
  its relative path (``"."`` for the root); ``Dataset.parts`` lists them, and
  splitting by subject keeps subjects of different datasets apart.
* Problems reported (not raised): an unparsable file name, a name that does
  not match its folders, two files for the same entities (``.nii`` and
  ``.nii.gz``; the one used is named), a label without an image, an
  unreadable or ambiguous sidecar, a ``dataset_description.json`` that is
  not a JSON object, a subject missing from ``participants.tsv``.  A malformed TSV table is an
  error (:class:`~segloop.errors.DatasetError` naming the file and line).

Why not pybids: checked with pybids 0.22.0 on ``shared/data/bids_ivadomed``.
It installs 26 packages (pandas, SQLAlchemy, formulaic, bids-validator,
bidsschematools, universal_pathlib...; a fresh environment of ~390 MB) into
a layer meant to need only NumPy and the image libraries.  With validation
on (its default) it indexes 21 files and only ``sub-unf01..03``: the nested
CT and microscopy datasets are left out; with ``validate=False`` it merges
their subjects into one index without saying which dataset each comes from.
It ignores ``derivatives/labels`` unless that folder has its own
``dataset_description.json``; with one added, ``sub-unf01_T2w_seg-manual``
is indexed as ``{subject, datatype, segmentation: manual}`` with no suffix
(the ``T2w`` is lost, so the label cannot be matched to its image),
``_lesion-manual`` and ``_labels-disc-manual`` keep only the subject, and
``get(suffix="seg-manual")`` finds nothing.  Indexing is also slow for big
sets: about 12 s for 8,000 small files (1,000 subjects x 2 sessions x 2
contrasts, image + sidecar), against about 0.7 s for this parser, which
lists folders and reads no file but the JSON sidecars and TSV tables.

Examples
--------
>>> n = parse_bids_name("sub-rat3_ses-02_sample-data11_run-1_SEM_seg-axon-manual.png")
>>> n.entities, n.suffix, n.label, n.extension
({'sub': 'rat3', 'ses': '02', 'sample': 'data11', 'run': '1'}, 'SEM', 'seg-axon-manual', '.png')
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segloop.errors import DatasetError, InvalidArgumentError
from segloop.io.dataset import Case
from segloop.io.layouts_base import Found, dirs_in, files_in, natural_key, relative
from segloop.io.raters import rater_label_name, split_rater_entity

__all__ = [
    "IMAGE_EXTENSIONS",
    "BidsName",
    "build_bids",
    "find_bids_datasets",
    "is_bids",
    "parse_bids_name",
    "read_tsv",
]

#: Image extensions of raw images and labels, longest first.
IMAGE_EXTENSIONS = (
    ".nii.gz",
    ".ome.tiff",
    ".ome.tif",
    ".nii",
    ".png",
    ".tiff",
    ".tif",
    ".jpeg",
    ".jpg",
)
_RASTER = (".ome.tiff", ".ome.tif", ".png", ".tiff", ".tif", ".jpeg", ".jpg")
_OTHER_EXTENSIONS = (".tsv.gz", ".json", ".tsv")
_NOT_NESTED = {"derivatives", "sourcedata", "code", "stimuli", "phenotype"}
_KEY = re.compile(r"^[a-zA-Z]+$")
_LABEL = re.compile(r"^[a-zA-Z0-9]+$")
_UNIT_TO_MM = {"mm": 1.0, "um": 1e-3, "µm": 1e-3, "μm": 1e-3, "nm": 1e-6, "cm": 10.0}


@dataclass(frozen=True)
class BidsName:
    """The parts of a BIDS file name.

    ``entities`` keeps file order; ``label`` is the text after the suffix
    (``seg-manual`` in ``sub-01_T1w_seg-manual.nii.gz``) or ``None``.
    """

    entities: dict[str, str]
    suffix: str
    label: str | None
    extension: str

    @property
    def key(self) -> tuple:
        """What identifies the image: sorted entities and the suffix."""
        return (*sorted(self.entities.items()), self.suffix)


def _extension(name: str) -> str:
    lower = name.lower()
    for ext in IMAGE_EXTENSIONS + _OTHER_EXTENSIONS:
        if lower.endswith(ext):
            return ext
    return Path(name).suffix.lower()


def parse_bids_name(name: str, *, require_subject: bool = True) -> BidsName:
    """Split a BIDS file name into entities, suffix, label and extension.

    Parameters
    ----------
    name : str
        A file name (no folder).
    require_subject : bool
        The first entity must be ``sub`` (false for top-level sidecars such
        as ``T1w.json``).

    Returns
    -------
    BidsName

    Raises
    ------
    InvalidArgumentError
        The name does not follow ``[key-value_]...suffix[_label].ext``.

    Examples
    --------
    >>> parse_bids_name("sub-01_ses-1_T1w.nii.gz").key
    (('ses', '1'), ('sub', '01'), 'T1w')
    >>> parse_bids_name("acq-fast_T1w.json", require_subject=False).entities
    {'acq': 'fast'}
    """
    ext = _extension(name)
    stem = name[: len(name) - len(ext)] if ext else name
    entities: dict[str, str] = {}
    suffix: str | None = None
    rest: list[str] = []
    for token in stem.split("_"):
        if suffix is not None:
            if not token:
                raise InvalidArgumentError(f"{name!r}: empty part after the suffix")
            rest.append(token)
            continue
        key, dash, value = token.partition("-")
        if dash:
            if not _KEY.match(key) or not _LABEL.match(value):
                raise InvalidArgumentError(
                    f"{name!r}: {token!r} is not a key-value entity "
                    "(letters, then '-', then letters/digits)"
                )
            if key in entities:
                raise InvalidArgumentError(f"{name!r}: entity {key!r} appears twice")
            entities[key] = value
        elif _LABEL.match(token):
            suffix = token
        else:
            raise InvalidArgumentError(f"{name!r}: {token!r} is neither an entity nor a suffix")
    if suffix is None:
        raise InvalidArgumentError(f"{name!r}: no suffix (such as _T1w) after the entities")
    if require_subject and next(iter(entities), None) != "sub":
        raise InvalidArgumentError(f"{name!r}: does not start with sub-<label>")
    return BidsName(entities, suffix, "_".join(rest) or None, ext)


def _value(text: str) -> Any:
    """A TSV cell: ``n/a`` and empty -> None, numbers that round-trip -> int/float."""
    text = text.strip()
    if text in ("", "n/a"):
        return None
    if re.fullmatch(r"-?(0|[1-9]\d*)", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return text


def read_tsv(path: Path, *, key: str | Sequence[str]) -> dict[Any, dict[str, Any]]:
    r"""Read a BIDS table (tab-separated, header line) into rows keyed by ``key``.

    Parameters
    ----------
    path : pathlib.Path
        ``participants.tsv``, ``samples.tsv``, ``*_sessions.tsv`` or ``*_scans.tsv``.
    key : str or sequence of str
        The identifying column(s); a row's key is the value (or tuple of values).

    Returns
    -------
    dict
        Key -> row (column -> value; ``n/a`` is ``None``).

    Raises
    ------
    DatasetError
        The file is empty, lacks a key column, has a row with the wrong number
        of fields or a repeated key; the message names the file and line.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "participants.tsv"
    >>> _ = p.write_text("participant_id\tage\nsub-01\t31\nsub-02\tn/a\n")
    >>> read_tsv(p, key="participant_id")["sub-02"]
    {'participant_id': 'sub-02', 'age': None}
    """
    keys = (key,) if isinstance(key, str) else tuple(key)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the table ({exc})", path=path) from exc
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise DatasetError("the table is empty (expected a header line)", path=path)
    header = [h.strip() for h in numbered[0][1].split("\t")]
    missing = [k for k in keys if k not in header]
    if missing:
        raise DatasetError(
            f"no {' / '.join(missing)} column in the header "
            f"({', '.join(header)}); is the file tab-separated?",
            path=path,
        )
    if len(set(header)) != len(header):
        raise DatasetError(f"repeated column names in the header ({', '.join(header)})", path=path)
    rows: dict[Any, dict[str, Any]] = {}
    for lineno, line in numbered[1:]:
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DatasetError(
                f"line {lineno} has {len(fields)} fields, the header has {len(header)}", path=path
            )
        row = {h: _value(f) for h, f in zip(header, fields, strict=True)}
        for k in keys:
            row[k] = fields[header.index(k)].strip()
        row_key = row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
        if row_key in rows:
            raise DatasetError(f"line {lineno} repeats {row_key!r}", path=path)
        rows[row_key] = row
    return rows


def is_bids(root: Path) -> bool:
    """Whether ``root`` looks like a BIDS dataset (description file or ``sub-*`` folders)."""
    return (root / "dataset_description.json").is_file() or any(
        d.name.startswith("sub-") for d in dirs_in(root)
    )


def find_bids_datasets(root: Path) -> list[Path]:
    """``root`` and the BIDS datasets nested in it (folders with a description file)."""
    found = [root]
    for child in dirs_in(root):
        if child.name.startswith("sub-") or child.name in _NOT_NESTED:
            continue
        if (child / "dataset_description.json").is_file():
            found.extend(find_bids_datasets(child))
    return found


class _Sidecars:
    """JSON sidecars per folder, parsed once; unreadable ones reported once."""

    def __init__(self, root: Path, problems: list[str]):
        self.root, self.problems, self.cache = root, problems, {}

    def _in(self, folder: Path) -> list[tuple[BidsName, dict, Path]]:
        if folder not in self.cache:
            found = []
            for path in files_in(folder, (".json",)):
                try:
                    name = parse_bids_name(path.name, require_subject=False)
                except InvalidArgumentError:
                    continue  # not a sidecar (dataset_description.json, genetic_info.json...)
                if name.label is not None:
                    continue
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, ValueError) as exc:
                    self.problems.append(
                        f"{relative(path, self.root)}: unreadable sidecar JSON ({exc})"
                    )
                    continue
                if not isinstance(data, dict):
                    self.problems.append(
                        f"{relative(path, self.root)}: sidecar is not a JSON object"
                    )
                    continue
                found.append((name, data, path))
            self.cache[folder] = found
        return self.cache[folder]

    def merged(self, image: BidsName, folders: list[Path]) -> dict[str, Any]:
        """The inherited sidecar of ``image``: less specific levels first."""
        out: dict[str, Any] = {}
        for folder in folders:
            applicable = [
                (n, d, p)
                for n, d, p in self._in(folder)
                if n.suffix == image.suffix and n.entities.items() <= image.entities.items()
            ]
            applicable.sort(key=lambda t: len(t[0].entities))
            sizes = [len(n.entities) for n, _, _ in applicable]
            if len(set(sizes)) != len(sizes):
                self.problems.append(
                    "several sidecars apply at one level: "
                    + ", ".join(relative(p, self.root) for _, _, p in applicable)
                )
            for _, data, _ in applicable:
                out.update(data)
        return out


def _pixel_size_mm(sidecar: dict, where: str, problems: list[str]) -> list[float] | None:
    size, unit = sidecar.get("PixelSize"), str(sidecar.get("PixelSizeUnits", "um"))
    if size is None:
        return None
    try:
        values = [float(f"{float(v) * _UNIT_TO_MM[unit]:.12g}") for v in size]
    except (KeyError, TypeError, ValueError):
        problems.append(f"{where}: unusable PixelSize {size!r} {unit!r} in its sidecar")
        return None
    return values if values and all(v > 0 for v in values) else None


def _prefer(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (IMAGE_EXTENSIONS.index(_extension(p.name)), p.name))


def _duplicates(found: dict, what: str, root: Path, problems: list[str]) -> dict:
    out = {}
    for key, paths in found.items():
        paths = _prefer(paths)
        if len(paths) > 1:
            problems.append(
                f"duplicate {what} for the same entities: "
                f"{', '.join(relative(p, root) for p in paths)} "
                f"(using {relative(paths[0], root)})"
            )
        out[key] = paths[0]
    return out


def _raw_images(ds: Path, root: Path, problems: list[str]) -> dict[tuple, dict]:
    """Raw images of one dataset by key, with their folders and table rows."""
    participants = (
        read_tsv(ds / "participants.tsv", key="participant_id")
        if (ds / "participants.tsv").is_file()
        else None
    )
    samples = (
        read_tsv(ds / "samples.tsv", key=("sample_id", "participant_id"))
        if (ds / "samples.tsv").is_file()
        else {}
    )
    found: dict[tuple, list[Path]] = {}
    info: dict[tuple, dict] = {}
    for subdir in (d for d in dirs_in(ds) if d.name.startswith("sub-")):
        subject = subdir.name[4:]
        if participants is not None and subdir.name not in participants:
            problems.append(f"{relative(subdir, root)}: not listed in participants.tsv")
        row = dict((participants or {}).get(subdir.name, {}))
        sessions_tsv = subdir / f"{subdir.name}_sessions.tsv"
        sessions = read_tsv(sessions_tsv, key="session_id") if sessions_tsv.is_file() else {}
        ses_dirs = [d for d in dirs_in(subdir) if d.name.startswith("ses-")]
        for sesdir in ses_dirs or [subdir]:
            session = sesdir.name[4:] if ses_dirs else None
            prefix = subdir.name + (f"_ses-{session}" if session else "")
            scans_tsv = sesdir / f"{prefix}_scans.tsv"
            scans = read_tsv(scans_tsv, key="filename") if scans_tsv.is_file() else {}
            for dtdir in (d for d in dirs_in(sesdir) if not d.name.startswith("ses-")):
                for path in files_in(dtdir, IMAGE_EXTENSIONS):
                    try:
                        name = parse_bids_name(path.name)
                    except InvalidArgumentError as exc:
                        problems.append(
                            f"{relative(path, root)}: unparsable BIDS name: {exc.message}"
                        )
                        continue
                    if name.entities.get("sub") != subject or name.entities.get("ses") != session:
                        problems.append(
                            f"{relative(path, root)}: name does not match its "
                            f"folder {relative(sesdir, root)}"
                        )
                        continue
                    if name.label is not None:
                        problems.append(
                            f"{relative(path, root)}: unexpected '_{name.label}' "
                            "after the suffix (labels go in derivatives/labels/)"
                        )
                        continue
                    meta = dict(row)
                    if "sample" in name.entities:
                        meta.update(
                            samples.get((f"sample-{name.entities['sample']}", subdir.name), {})
                        )
                    meta.update(sessions.get(f"ses-{session}", {}) if session else {})
                    meta.update(scans.get(relative(path, sesdir), {}))
                    found.setdefault(name.key, []).append(path)
                    info[name.key] = {
                        "name": name,
                        "meta": meta,
                        "datatype": dtdir.name,
                        "folders": [ds, subdir, *([sesdir] if session else []), dtdir],
                    }
    images = _duplicates(found, "images", root, problems)
    return {key: dict(info[key], path=path) for key, path in images.items()}


def _label_folders(ds: Path, root: Path, problems: list[str]) -> list[tuple[Path, str | None]]:
    """``derivatives/labels`` (no rater) and every ``derivatives/labels-<rater>``."""
    out = []
    for folder in dirs_in(ds / "derivatives"):
        rater = folder.name[len("labels-") :] if folder.name.startswith("labels-") else None
        if folder.name == "labels":
            out.append((folder, None))
        elif rater is not None and _LABEL.match(rater):
            out.append((folder, rater))
        elif rater is not None:
            problems.append(
                f"{relative(folder, root)}: not read: a rater id is letters and digits only"
            )
    return out


def _without_rater(name: BidsName, folder_rater: str | None) -> tuple[BidsName, str | None]:
    """A label's name without its ``rater-<id>`` entity, and its rater (folder or entity)."""
    entities, label, rater = split_rater_entity(name.entities, name.label)
    if folder_rater is not None and rater not in (None, folder_rater):
        raise InvalidArgumentError(
            f"its rater-{rater} entity contradicts its folder labels-{folder_rater}"
        )
    return BidsName(entities, name.suffix, label, name.extension), folder_rater or rater


def _derived_labels(ds: Path, root: Path, problems: list[str]) -> tuple[dict, dict]:
    """Label files under ``derivatives/labels*`` by image key, then label name.

    Returns ``(labels, raters)``: image key -> {label name -> path}, and image
    key -> {label -> {rater -> label name}}.
    """
    found: dict[tuple, list[Path]] = {}
    for base, folder_rater in _label_folders(ds, root, problems):
        for path in sorted(base.rglob("*")):
            if not path.is_file() or _extension(path.name) not in IMAGE_EXTENSIONS:
                continue
            try:
                name = parse_bids_name(path.name)
            except InvalidArgumentError as exc:
                problems.append(f"{relative(path, root)}: unparsable BIDS name: {exc.message}")
                continue
            try:
                name, rater = _without_rater(name, folder_rater)
            except InvalidArgumentError as exc:
                problems.append(f"{relative(path, root)}: not read: {exc.message}")
                continue
            if name.label is None:
                problems.append(
                    f"{relative(path, root)}: label without a label suffix "
                    "(expected <image name>_<label>, e.g. _seg-manual)"
                )
                continue
            found.setdefault((name.key, name.label, rater), []).append(path)
    labels: dict[tuple, dict[str, Path]] = {}
    raters: dict[tuple, dict[str, dict[str, str]]] = {}
    for (key, label, rater), path in _duplicates(found, "labels", root, problems).items():
        named = label if rater is None else rater_label_name(label, rater)
        labels.setdefault(key, {})[named] = path
        if rater is not None:
            raters.setdefault(key, {}).setdefault(label, {})[rater] = named
    return labels, raters


def _check_description(ds: Path, root: Path, problems: list[str]) -> None:
    """Report a ``dataset_description.json`` that is not a readable JSON object."""
    path = ds / "dataset_description.json"
    if not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = "empty file (0 bytes)" if path.stat().st_size == 0 else f"not valid JSON ({exc})"
        problems.append(f"{relative(path, root)}: {reason}")
        return
    if not isinstance(data, dict):
        problems.append(
            f"{relative(path, root)}: not a JSON object (a {type(data).__name__} at the top level)"
        )


def _cases_of(ds: Path, root: Path, problems: list[str]) -> list[Case]:
    rel = relative(ds, root) if ds != root else "."
    _check_description(ds, root, problems)
    images = _raw_images(ds, root, problems)
    labels, raters = _derived_labels(ds, root, problems)
    for key in sorted(labels.keys() - images.keys()):
        for path in labels[key].values():
            problems.append(f"{relative(path, root)}: label without an image")
    sidecars = _Sidecars(root, problems)
    cases = []
    for key, item in sorted(images.items(), key=lambda kv: natural_key(kv[1]["path"].name)):
        name, path = item["name"], item["path"]
        meta = dict(item["meta"])
        meta.update(sidecars.merged(name, item["folders"]))
        meta.update(
            dataset=rel,
            datatype=item["datatype"],
            entities={k: v for k, v in name.entities.items() if k != "sub"},
        )
        found = labels.get(key, {})
        image_options: dict[str, Any] = {}
        label_options = {
            n: {"threshold": "auto"} for n, p in found.items() if _extension(p.name) in _RASTER
        }
        extension = _extension(path.name)
        if extension in _RASTER:
            size = _pixel_size_mm(meta, relative(path, root), problems)
            if size:
                image_options["pixel_size_xyz"] = tuple(size)
                for n in found:
                    label_options.setdefault(n, {})["pixel_size_xyz"] = tuple(size)
        stem = path.name[: len(path.name) - len(extension)]
        cases.append(
            Case(
                stem,
                name.entities["sub"],
                path,
                labels=dict(sorted(found.items())),
                session=name.entities.get("ses"),
                contrast=name.suffix,
                metadata=meta,
                image_options=image_options,
                label_options=label_options,
                raters={k: dict(sorted(v.items())) for k, v in sorted(raters.get(key, {}).items())},
            )
        )
    return cases


def build_bids(root: Path) -> Found:
    """List the cases of a BIDS dataset and of the datasets nested in it.

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder.

    Returns
    -------
    Found
        Cases (root dataset first, then nested ones), problems, the main label
        ``seg-manual`` and the relative paths of the datasets read.
    """
    problems: list[str] = []
    datasets = find_bids_datasets(root)
    per = [_cases_of(ds, root, problems) for ds in datasets]
    counts: dict[str, int] = {}
    for case in (c for cases in per for c in cases):
        counts[case.id] = counts.get(case.id, 0) + 1
    cases = []
    for ds, found in zip(datasets, per, strict=True):
        for case in found:
            if counts[case.id] > 1 and ds != root:  # same file name in two datasets
                case = dataclasses.replace(case, id=f"{relative(ds, root)}/{case.id}")
            cases.append(case)
    parts = tuple("." if ds == root else relative(ds, root) for ds in datasets)
    return Found(cases, list(dict.fromkeys(problems)), "seg-manual", parts)
