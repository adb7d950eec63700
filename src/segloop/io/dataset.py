"""Datasets: the cases of a folder (image, labels, metadata) and how to split them.

:func:`open_dataset` finds the layout of a folder (a BIDS dataset, plain
``images/`` + ``labels/`` pairs, or the source layout of one of the shared
data sets; see :mod:`segloop.io.layouts`) and returns a :class:`Dataset`:
its :class:`Case` objects plus the problems found on the way (labels without
an image, duplicate files, unreadable sidecars, empty files...).  Nothing is read from the
images until asked: ``case.read_image()`` / ``case.read_label()`` read one
case with the options its layout gives (HDF5 axes and spacing, 0/255 masks
thresholded to {0, 1}, instance masks merged...), and
``Dataset.check_geometry()`` reads every pair to compare grids.

:func:`split_cases` splits cases into train/val/test by subject or by any
metadata column, so that no group straddles two splits.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, write_image
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> eye = Image(np.eye(4, dtype=np.uint8), kind="label")
>>> for i in range(5):
...     write_image(Image(np.full((4, 4), i, np.uint8)), root / "images" / f"case{i}.png")
...     write_image(eye, root / "labels" / f"case{i}.png")
>>> ds = open_dataset(root)
>>> ds.layout, len(ds), int(ds.cases[0].read_label().array.sum())
('pairs', 5, 4)
>>> {k: len(v) for k, v in split_cases(ds.cases, fractions=(0.6, 0.2, 0.2)).items()}
{'train': 3, 'val': 1, 'test': 1}
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segloop.errors import DatasetError, FileMissingError, SegloopError
from segloop.io.dataset_sources import read_source
from segloop.io.geometry import same_grid
from segloop.io.image import Image
from segloop.io.raters import rater_labels, read_raters
from segloop.io.splits import split_cases, split_sizes  # re-exported

__all__ = ["Case", "Dataset", "open_dataset", "split_cases", "split_sizes"]


@dataclass(frozen=True)
class Case:
    """One image of a dataset with its labels, metadata and reading options.

    Parameters
    ----------
    id : str
        Unique and stable within the dataset, e.g. ``sub-unf01_T2w``.
    subject : str
        Who (or what) was imaged; cases of one subject are never split apart.
    image : pathlib.Path
        The image file.
    labels : dict of str to pathlib.Path
        Every label found, by name (BIDS: the label suffix, e.g. ``seg-manual``).
    session : str, optional
        BIDS session label, or the visit/scan date of other layouts.
    contrast : str, optional
        The BIDS suffix or the modality (``T1w``, ``SEM``, ``ct``, ``flair``...).
    metadata : dict
        Merged metadata (sidecar JSON, participants/samples/sessions rows...).
    label : str, optional
        Name of the main label (the dataset's configured label suffix).
    extra_images : dict of str to pathlib.Path
        Other co-registered images of the case (e.g. BRATS T1c beside FLAIR).
    image_options, label_options : dict
        How to read the image and each label
        (see :mod:`segloop.io.dataset_sources`).
    raters : dict of str to dict of str to str
        Labels drawn by several raters: label kind (``manual``,
        ``seg-manual``...) -> {rater id -> name of that rater's label in
        ``labels``} (see :mod:`segloop.io.raters`); empty when no rater is known.

    Notes
    -----
    The mappings are plain dicts so that cases pickle (data-loader workers);
    treat them as read-only.
    """

    id: str
    subject: str
    image: Path
    labels: dict[str, Path] = field(default_factory=dict)
    session: str | None = None
    contrast: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    extra_images: dict[str, Path] = field(default_factory=dict)
    image_options: dict[str, Any] = field(default_factory=dict)
    label_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    raters: dict[str, dict[str, str]] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def suffix(self) -> str | None:
        """The BIDS suffix: the same as :attr:`contrast`."""
        return self.contrast

    def has_label(self, name: str | None = None) -> bool:
        """Whether the case has the label ``name`` (default: the main label)."""
        name = self.label if name is None else name
        return name is not None and name in self.labels

    def _tag(self, image: Image) -> Image:
        image.metadata.update(case=self.id, subject=self.subject)
        return image

    def read_image(self, name: str | None = None) -> Image:
        """Read the image (or the extra image ``name``).

        Examples
        --------
        >>> import numpy as np, pathlib, tempfile
        >>> from segloop.io import Image, write_image
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
        >>> write_image(Image(np.zeros((2, 3, 4), np.int16)), p)
        >>> Case("a", "a", p).read_image().shape
        (2, 3, 4)
        """
        if name is None:
            path = self.image
        elif name in self.extra_images:
            path = self.extra_images[name]
        else:
            raise DatasetError(
                f"case {self.id} has no image {name!r} "
                f"(has: {', '.join(self.extra_images) or 'only the main image'})"
            )
        return self._tag(read_source(path, self.image_options, kind="image"))

    def read_label(self, name: str | None = None) -> Image:
        """Read the label ``name`` (default: the main label) as a label map.

        Raises
        ------
        DatasetError
            The case has no such label.

        Examples
        --------
        >>> import numpy as np, pathlib, tempfile
        >>> from segloop.io import Image, write_image
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> write_image(Image(np.array([[0, 255]], np.uint8), kind="label"), d / "m.png")
        >>> case = Case("a", "a", d / "a.png", labels={"mask": d / "m.png"}, label="mask",
        ...             label_options={"mask": {"threshold": 127}})
        >>> case.read_label().array.tolist()
        [[0, 1]]
        """
        name = self.label if name is None else name
        if name is None or name not in self.labels:
            raise DatasetError(
                f"case {self.id} has no label {name!r} "
                f"(has: {', '.join(sorted(self.labels)) or 'none'})"
            )
        options = self.label_options.get(name, {})
        return self._tag(read_source(self.labels[name], options, kind="label"))

    def rater_labels(self, kind: str | None = None) -> dict[str, str]:
        """Rater id -> label name of the raters of ``kind``, sorted by rater id.

        Parameters
        ----------
        kind : str, optional
            A key of :attr:`raters`; default: the only kind, or else the kind
            of the main label (:attr:`label` is that kind or one of its
            raters' labels).

        Returns
        -------
        dict of str to str
            Empty when the case has no rater at all.

        Raises
        ------
        DatasetError
            The case has raters but none of ``kind`` (test ``kind in
            case.raters`` first when kinds vary between cases), or ``kind`` is
            ``None`` and several kinds fit; the message lists the kinds.

        Examples
        --------
        >>> from pathlib import Path
        >>> case = Case("a", "a", Path("a.png"), labels={"r2": Path("2.png"), "r1": Path("1.png")},
        ...             raters={"manual": {"r2": "r2", "r1": "r1"}})
        >>> case.rater_labels()
        {'r1': 'r1', 'r2': 'r2'}
        """
        return rater_labels(self, kind)

    def read_raters(self, kind: str | None = None) -> dict[str, Image]:
        """Read the label of every rater of ``kind`` (see :meth:`rater_labels`).

        Returns
        -------
        dict of str to Image
            Rater id -> label map (``metadata["rater"]`` and
            ``["rater_kind"]`` set), sorted by rater id; empty without raters.

        Raises
        ------
        DatasetError
            Bad ``kind``, or a rater's label cannot be found.
        GeometryMismatchError
            The raters' labels are not all on one grid; the message names the
            case and the raters.

        Examples
        --------
        >>> import numpy as np, pathlib, tempfile
        >>> from segloop.io import write_image
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for r in (1, 2):
        ...     write_image(Image(np.full((2, 3), r, np.uint8), kind="label"), d / f"r{r}.png")
        >>> case = Case("a", "a", d / "a.png", labels={"r1": d / "r1.png", "r2": d / "r2.png"},
        ...             raters={"manual": {"r1": "r1", "r2": "r2"}})
        >>> {r: int(image.array.max()) for r, image in case.read_raters().items()}
        {'r1': 1, 'r2': 2}
        """
        return read_raters(self, kind)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (paths as strings; reading options left out)."""
        return {
            "id": self.id,
            "subject": self.subject,
            "session": self.session,
            "contrast": self.contrast,
            "image": str(self.image),
            "labels": {k: str(v) for k, v in sorted(self.labels.items())},
            "extra_images": {k: str(v) for k, v in self.extra_images.items()},
            "label": self.label,
            "raters": {k: dict(sorted(v.items())) for k, v in sorted(self.raters.items())},
            "metadata": self.metadata,
        }


@dataclass
class Dataset:
    """The cases of a dataset folder and the problems found while listing them.

    Parameters
    ----------
    root : pathlib.Path
        The folder.
    layout : str
        Name of its layout (a key of :data:`segloop.io.layouts.LAYOUTS`).
    cases : list of Case
        In a stable order (sorted by the layout, numbers in natural order).
    problems : list of str
        Human-readable problems, each naming a file or case.
    label : str, optional
        Name of the main label.
    parts : list of str
        The BIDS datasets found (``"."`` for the root, then nested datasets).
    """

    root: Path
    layout: str
    cases: list[Case]
    problems: list[str] = field(default_factory=list)
    label: str | None = None
    parts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __getitem__(self, key: int | str) -> Case:
        if isinstance(key, str):
            for case in self.cases:
                if case.id == key:
                    return case
            raise KeyError(key)
        return self.cases[key]

    def labelled(self, name: str | None = None) -> list[Case]:
        """Cases having the label ``name`` (default: the main label)."""
        return [c for c in self.cases if c.has_label(name)]

    def summary(self) -> dict[str, Any]:
        """Counts for a report: subjects, sessions, contrasts, labels, metadata, problems.

        Returns
        -------
        dict
            ``root``, ``layout``, ``label``, ``cases``, ``subjects`` (sorted),
            ``sessions``, ``contrasts`` (name -> count), ``labels`` (name ->
            ``{"labelled", "unlabelled"}``, the main label first), ``labelled``
            and ``unlabelled`` (main label), ``metadata_columns`` (key -> number
            of cases having it), ``raters`` (kind -> rater id -> number of
            cases it labelled; empty without raters), ``datasets`` and
            ``problems``.
        """
        n = len(self.cases)
        names = Counter(name for c in self.cases for name in c.labels)
        order = ([self.label] if self.label else []) + sorted(set(names) - {self.label})
        columns = Counter(key for c in self.cases for key in c.metadata)
        main = sum(c.has_label() for c in self.cases)
        return {
            "root": str(self.root),
            "layout": self.layout,
            "label": self.label,
            "cases": n,
            "subjects": sorted({c.subject for c in self.cases}),
            "sessions": sorted({c.session for c in self.cases if c.session is not None}),
            "contrasts": dict(
                sorted(Counter(c.contrast for c in self.cases if c.contrast).items())
            ),
            "labels": {k: {"labelled": names[k], "unlabelled": n - names[k]} for k in order},
            "labelled": main,
            "unlabelled": n - main,
            "metadata_columns": dict(sorted(columns.items())),
            "raters": {
                kind: dict(
                    sorted(Counter(r for c in self.cases for r in c.raters.get(kind, {})).items())
                )
                for kind in sorted({k for c in self.cases for k in c.raters})
            },
            "datasets": list(self.parts),
            "problems": list(self.problems),
        }

    def check_geometry(self) -> list[str]:
        """Read every labelled case and compare each label's grid with its image's.

        Slow: it reads every file.  Mismatches and unreadable files are added
        to :attr:`problems` and returned.
        """
        found = []
        for case in self.cases:
            if not case.labels and not case.extra_images:
                continue
            try:
                image = case.read_image()
            except SegloopError as exc:
                found.append(f"{case.id}: cannot read the image: {exc}")
                continue
            others = [("label", n, case.read_label) for n in sorted(case.labels)]
            others += [("image", n, case.read_image) for n in sorted(case.extra_images)]
            for what, name, read in others:
                try:
                    ok, why = same_grid(image, read(name))
                except SegloopError as exc:
                    found.append(f"{case.id}: cannot read {what} {name!r}: {exc}")
                    continue
                if not ok:
                    found.append(f"{case.id}: {what} {name!r} does not match the image grid: {why}")
        self.problems.extend(found)
        return found


def _case_files(case: Case) -> Iterator[tuple[str, Path]]:
    """``(what, path)`` of every file a case reads (mask parts included)."""
    yield "image", case.image
    for path in case.extra_images.values():
        yield "image", path
    for name, path in case.labels.items():
        parts = case.label_options.get(name, {}).get("parts")
        yield from (("label", Path(p)) for p, _ in parts) if parts else [("label", path)]


def _empty_files(cases: list[Case], root: Path) -> list[str]:
    """A problem per 0-byte image or label file (one ``stat`` per file, no reading)."""
    found, seen = [], set()
    for case in cases:
        for what, path in _case_files(case):
            if path in seen:
                continue
            seen.add(path)
            try:
                empty = path.is_file() and path.stat().st_size == 0
            except OSError:
                continue
            if empty:
                rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path
                found.append(f"{rel}: empty {what} file (0 bytes) of case {case.id}")
    return found


def open_dataset(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    label_suffix: str | None = None,
    check_geometry: bool = False,
) -> Dataset:
    """List the cases of a dataset folder.

    Parameters
    ----------
    path : str or os.PathLike
        The dataset folder.
    format : str, optional
        Name of the layout (see :func:`segloop.io.layouts.layout_names`);
        detected from the folder's content when not given.
    label_suffix : str, optional
        Name of the main label: a BIDS label suffix such as ``seg-manual``
        (the default for BIDS and ``spinalcord_sct``), or one of the label
        names of the layout (e.g. ``rater3``); default: the layout's own.
    check_geometry : bool
        Also read every image/label pair and report grids that differ (slow).

    Returns
    -------
    Dataset
        Its ``problems`` hold what the layout reported (labels without an
        image, duplicates, unreadable sidecars...) and the cheap checks made
        on every dataset (a ``stat`` per file, no pixel read): image and
        label files of 0 bytes.

    Raises
    ------
    FileMissingError
        ``path`` does not exist.
    DatasetError
        ``path`` is not a folder, is empty, fits no known layout, or the
        layout finds no case in it.
    InvalidArgumentError
        ``format`` names no known layout.
    """
    from segloop.io.layouts import detect_layouts, get_layout, layout_names

    root = Path(path)
    if not root.exists():
        raise FileMissingError("no such dataset folder", path=root)
    if not root.is_dir():
        raise DatasetError("is a file; a dataset is a folder", path=root)
    if not any(not p.name.startswith(".") for p in root.iterdir()):
        raise DatasetError("the dataset folder is empty", path=root)
    if format is None:
        found = detect_layouts(root)
        if not found:
            raise DatasetError(
                f"no known dataset layout fits this folder (known: "
                f"{', '.join(layout_names())}; name one with --format)",
                path=root,
            )
        format = found[0]
    layout = get_layout(format)
    result = layout.build(root)
    if not result.cases:
        raise DatasetError(
            f"the {layout.name} layout finds no image in this folder ({layout.summary})", path=root
        )
    ids = Counter(c.id for c in result.cases)
    clash = sorted(i for i, n in ids.items() if n > 1)
    if clash:
        raise DatasetError(f"case ids are not unique: {', '.join(clash[:10])}", path=root)
    label = label_suffix if label_suffix is not None else result.label
    cases = [dataclasses.replace(c, label=label) for c in result.cases]
    problems = list(result.problems) + _empty_files(cases, root)
    if label_suffix is not None and not any(c.has_label() for c in cases):
        known = sorted({n for c in cases for n in c.labels})
        problems.append(
            f"no case has a {label_suffix!r} label (labels found: {', '.join(known) or 'none'})"
        )
    dataset = Dataset(root, layout.name, cases, problems, label, list(result.parts))
    if check_geometry:
        dataset.check_geometry()
    return dataset
