"""What a dataset layout is, and the small file helpers the layouts share.

A :class:`Layout` pairs a cheap ``detect(folder) -> bool`` (it looks at names
only, never at pixel data) with a ``build(folder) -> Found`` that lists the
cases.  The registry and the detection order live in
:mod:`segloop.io.layouts`.

Examples
--------
>>> sorted(["10.png", "2.png", "1.png"], key=natural_key)
['1.png', '2.png', '10.png']
>>> stem_of("sub-01_T1w.nii.gz")
'sub-01_T1w'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from segloop.io.dataset import Case
from segloop.io.files import compound_suffix
from segloop.io.registry import FORMATS

__all__ = [
    "IMAGE_SUFFIXES",
    "JPEG_SUFFIXES",
    "RASTER_SUFFIXES",
    "Found",
    "Layout",
    "case_dirs",
    "dirs_in",
    "files_in",
    "natural_key",
    "read_lists",
    "relative",
    "stem_of",
]

#: Every single-file image suffix segloop reads (DICOM folders excluded).
IMAGE_SUFFIXES = tuple(s for f in FORMATS.values() if f.name != "dicom" for s in f.suffixes)
RASTER_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".gif", ".bmp")
JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class Found:
    """What a layout's ``build`` found: cases, problems, main label, BIDS parts."""

    cases: list[Case]
    problems: list[str] = field(default_factory=list)
    label: str | None = None
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """A named dataset layout.

    Parameters
    ----------
    name : str
        The name given to ``--format``.
    summary : str
        One line: what a folder in this layout looks like.
    detect : callable
        ``detect(folder) -> bool``, from file names only.
    build : callable
        ``build(folder) -> Found``.
    """

    name: str
    summary: str
    detect: Callable[[Path], bool]
    build: Callable[[Path], Found]


def natural_key(text: str) -> tuple:
    """Sort key putting ``2`` before ``10`` (numbers compared as numbers)."""
    return tuple(
        (0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)) if t
    )


def stem_of(path: str | Path) -> str:
    """File name without its (compound) extension."""
    name = Path(path).name
    suffix = compound_suffix(name)
    return name[: len(name) - len(suffix)] if suffix else name


def _entries(folder: Path) -> list[os.DirEntry]:
    """Visible entries of ``folder`` (``scandir``: no extra ``stat`` per file)."""
    try:
        with os.scandir(folder) as it:
            return [e for e in it if not e.name.startswith((".", "~"))]
    except (FileNotFoundError, NotADirectoryError):
        return []


def dirs_in(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder`` in natural order (none if it is not a folder)."""
    names = [e.name for e in _entries(folder) if e.is_dir()]
    return [folder / n for n in sorted(names, key=natural_key)]


def files_in(folder: Path, suffixes: Iterable[str] | None = None) -> list[Path]:
    """Visible files of ``folder`` (optionally with one of ``suffixes``), natural order."""
    wanted = None if suffixes is None else tuple(suffixes)
    names = [
        e.name
        for e in _entries(folder)
        if e.is_file() and (wanted is None or compound_suffix(e.name) in wanted)
    ]
    return [folder / n for n in sorted(names, key=natural_key)]


def case_dirs(root: Path, is_case: Callable[[Path], bool]) -> list[tuple[Path, str | None]]:
    """Case folders directly in ``root``, or one level down in split folders.

    Returns ``(folder, split)`` pairs; ``split`` is the name of the folder in
    between (``train``, ``validation``...) or ``None``.  Split folders count
    only when every sub-folder of ``root`` is one and holds nothing but case
    folders, so that a folder of several datasets is not taken for one.
    """
    children = dirs_in(root)
    direct = [(child, None) for child in children if is_case(child)]
    if direct:
        return direct
    nested = []
    for child in children:
        subs = dirs_in(child)
        if not subs or not all(is_case(sub) for sub in subs):
            return []
        nested.extend((sub, child.name) for sub in subs)
    return nested


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it, for messages."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def read_lists(folder: Path) -> dict[str, str]:
    """Split membership from ``*.list`` files (one case id per line): id -> list name."""
    out: dict[str, str] = {}
    for lst in files_in(folder, (".list",)):
        for line in lst.read_text(errors="replace").splitlines():
            if line.strip():
                out[line.strip()] = lst.stem
    return out
