"""The MNI152 template shipped inside nilearn's wheel: real data, offline.

nilearn's package data hold the ICBM 2009a nonlinear symmetric MNI152 T1
template (an average of 152 real adult brain MRIs, skull-stripped, 1 mm,
197 × 233 × 189) and its grey- and white-matter probability maps.
segloop uses them as the built-in dataset of ``segloop demo``: they install
with the package and load without a network.

The files are found through the installed distribution, without importing
nilearn (which would take seconds). The brain mask follows nilearn's
definition (template intensity above 0.2 of its maximum); the tissue label
map assigns each brain voxel to the most probable of CSF (1), grey matter
(2) and white matter (3), CSF probability being ``1 - p_gm - p_wm``.

Examples
--------
>>> mni = load_mni152()
>>> mni.t1.shape, mni.t1.spacing, mni.t1.orientation
((189, 233, 197), (1.0, 1.0, 1.0), 'RAS')
>>> mni.tissue.label_values()
[0, 1, 2, 3]
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segloop.errors import DatasetError
from segloop.io.image import Image
from segloop.io.registry import read_image

__all__ = ["MNI152", "TISSUE_NAMES", "load_mni152", "mni152_files"]

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

#: Names of the tissue label values.
TISSUE_NAMES = {1: "CSF", 2: "grey matter", 3: "white matter"}


def mni152_files() -> dict[str, Path]:
    """Paths of the template files inside the installed nilearn package.

    Raises
    ------
    DatasetError
        nilearn is not installed or its wheel lacks the template.
    """
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "nilearn is not installed; it carries the MNI152 template (pip install nilearn)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    paths = {key: folder / name for key, name in _FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DatasetError(f"nilearn's wheel lacks the MNI152 files: {', '.join(missing)}")
    return paths


@dataclass(frozen=True)
class MNI152:
    """The template and its masks, all on the same 1 mm grid.

    Attributes
    ----------
    t1 : Image
        T1-weighted template, float32 scaled to [0, 1].
    gm, wm : Image
        Grey/white-matter probability maps (kind ``"soft"``).
    brain : Image
        Brain mask (label 0/1): ``t1 > 0.2``.
    tissue : Image
        Label map: 0 outside the brain, 1 CSF, 2 grey matter, 3 white matter.
    """

    t1: Image
    gm: Image
    wm: Image
    brain: Image
    tissue: Image


@functools.lru_cache(maxsize=1)
def _load() -> MNI152:
    paths = mni152_files()
    raw = {key: read_image(p) for key, p in paths.items()}
    t1 = raw["t1"].with_array(raw["t1"].array.astype(np.float32) / 255.0)
    gm = raw["gm"].with_array(raw["gm"].array.astype(np.float32) / 255.0, kind="soft")
    wm = raw["wm"].with_array(raw["wm"].array.astype(np.float32) / 255.0, kind="soft")
    brain_mask = t1.array > 0.2
    csf = np.clip(1.0 - gm.array - wm.array, 0.0, 1.0)
    tissue = (np.argmax(np.stack([csf, gm.array, wm.array]), axis=0) + 1).astype(np.uint8)
    tissue[~brain_mask] = 0
    brain = t1.with_array(brain_mask.astype(np.uint8), kind="label")
    return MNI152(t1=t1, gm=gm, wm=wm, brain=brain, tissue=t1.with_array(tissue, kind="label"))


def load_mni152() -> MNI152:
    """Load the MNI152 template, its tissue maps and derived masks.

    Returns
    -------
    MNI152
        Images ``(z, y, x) = (189, 233, 197)``, 1 mm, RAS. The result is
        cached; its arrays must not be modified in place (copy them).

    Examples
    --------
    >>> int(load_mni152().brain.array.sum()) > 1_000_000
    True
    """
    return _load()
