"""The registry of dataset layouts and how a folder's layout is detected.

Each layout has a name (given to ``--format``), a one-line summary, a
detector that looks at file and folder names only (no pixel data is read),
and a builder that lists the cases.  :func:`detect_layouts` tries them in
the order of :data:`LAYOUTS`, most specific first:

1. ``bids`` (:mod:`segloop.io.bids`)
2. per-case folders (:mod:`segloop.io.layouts_cases`): ``brats2013``,
   ``lgg_flair``, ``left_atrium_h5``, ``nuclei_dsb2018``
3. flat folders (:mod:`segloop.io.layouts_files`): ``acdc_h5``,
   ``qubiq_brain_growth_7raters``, ``totalseg_ct_silver``, ``spinalcord_sct``
4. several labels per image (:mod:`segloop.io.layouts_multi`):
   ``ct_slices_sammed2d``, ``retina_drive_2raters``
5. image/mask folders (:mod:`segloop.io.layouts_pairs`): ``cxr_lungs``,
   ``em_isbi2012``, ``nuclei_dsb2018_96``, ``polyps_kvasir``, and
   ``raters`` (``images/`` + ``labels/<rater>/``: it needs a ``labels/``
   holding rater folders and no image file, where ``pairs`` needs image
   files directly in ``labels/`` or ``masks/``)
6. ``pairs``: the generic ``images/`` + ``labels/`` (or ``masks/``) layout.
   It also fits the three specialised pair layouts before it (which differ
   in how their masks are read); it is tried last and wins only when none of
   them fits.

Every other detector is specific: on each folder of ``shared/data`` exactly
one of them fires (checked by the tests).  The first match is used;
``open_dataset(..., format=NAME)`` (``--format NAME``) skips detection.

Examples
--------
>>> layout_names()[:3]
['bids', 'brats2013', 'lgg_flair']
>>> get_layout("pairs").summary
'images/ + labels/ (or masks/) with the same file names'
"""

from __future__ import annotations

from pathlib import Path

from segloop.errors import InvalidArgumentError
from segloop.io.bids import build_bids, is_bids
from segloop.io.layouts_base import Found, Layout
from segloop.io.layouts_cases import CASE_LAYOUTS
from segloop.io.layouts_files import FILE_LAYOUTS
from segloop.io.layouts_multi import MULTI_LAYOUTS
from segloop.io.layouts_pairs import PAIR_LAYOUTS

__all__ = [
    "LAYOUTS",
    "Found",
    "Layout",
    "detect_layouts",
    "get_layout",
    "layout_help",
    "layout_names",
]

_BIDS = Layout(
    "bids",
    "sub-*/[ses-*/]<datatype>/ images, derivatives/labels/ "
    "(dataset_description.json; nested datasets too)",
    is_bids,
    build_bids,
)

#: Every layout by name, in detection order.
LAYOUTS: dict[str, Layout] = {
    "bids": _BIDS,
    **CASE_LAYOUTS,
    **FILE_LAYOUTS,
    **MULTI_LAYOUTS,
    **PAIR_LAYOUTS,
}


def layout_names() -> list[str]:
    """Names of the known layouts, in detection order."""
    return list(LAYOUTS)


def layout_help() -> str:
    """One line per layout: name and what its folders look like."""
    width = max(map(len, LAYOUTS))
    return "\n".join(f"  {name:<{width}}  {layout.summary}" for name, layout in LAYOUTS.items())


def get_layout(name: str) -> Layout:
    """The layout called ``name``.

    Raises
    ------
    InvalidArgumentError
        No layout has that name; the message lists them.
    """
    if name not in LAYOUTS:
        raise InvalidArgumentError(f"unknown dataset format {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def detect_layouts(root: str | Path) -> list[str]:
    """Names of every layout whose detector fits ``root``, in detection order.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "sub-01" / "anat").mkdir(parents=True)
    >>> detect_layouts(root)
    ['bids']
    """
    root = Path(root)
    return [name for name, layout in LAYOUTS.items() if layout.detect(root)]
