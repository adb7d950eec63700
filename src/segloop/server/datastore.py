"""The images the server serves: a dataset folder opened once, read on demand.

:class:`Datastore` opens the dataset with :func:`segloop.io.open_dataset`
(BIDS, images/labels pairs, any layout segloop reads) and answers by image
id only: an id is looked up among the dataset's cases, never turned into a
path, so no request can reach a file outside the dataset.  Images are read
on first use and kept in a small LRU cache (a few volumes).

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Image, write_image
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> write_image(Image(np.zeros((4, 5), np.uint8)), root / "images" / "a.png")
>>> write_image(Image(np.zeros((4, 5), np.uint8), kind="label"), root / "labels" / "a.png")
>>> store = Datastore(root)
>>> store.ids(), store.image("a").shape
(['a'], (4, 5))
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from segloop.io import Image, open_dataset
from segloop.io.dataset import Case
from segloop.server.errors import ApiError

__all__ = ["RASTER_SUFFIXES", "Datastore", "api_id"]

#: Image files whose labels are written as PNG (2D rasters); everything else gets NIfTI.
RASTER_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".gif", ".bmp")


def api_id(case_id: str) -> str:
    """The id of a case in URLs: its dataset id with ``/`` (nested BIDS datasets) as ``~``."""
    return case_id.replace("/", "~")


class Datastore:
    """The dataset's cases by API id (:func:`api_id`), and their images (cached).

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder.
    cache_size : int
        Images kept in memory.
    """

    def __init__(self, root: Path, *, cache_size: int = 6):
        self.root = Path(root)
        self.dataset = open_dataset(self.root)
        self._cases = {api_id(c.id): c for c in self.dataset.cases}
        self._cache: OrderedDict[str, Image] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_size = cache_size

    def ids(self) -> list[str]:
        """Every image id, in the dataset's order."""
        return list(self._cases)

    def case(self, image_id: str) -> Case:
        """The case of ``image_id``; 404 for an unknown id."""
        case = self._cases.get(image_id)
        if case is None:
            raise ApiError(404, f"no image {image_id!r} in this dataset")
        return case

    def image(self, image_id: str) -> Image:
        """The image of ``image_id`` (read once, then cached)."""
        case = self.case(image_id)
        with self._lock:
            if image_id in self._cache:
                self._cache.move_to_end(image_id)
                return self._cache[image_id]
        image = case.read_image()
        image.array.flags.writeable = False  # shared by every request: read-only
        with self._lock:
            self._cache[image_id] = image
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image

    def gray(self, image_id: str) -> np.ndarray:
        """The image as one float32 channel (colour channels averaged), for tools and display."""
        image = self.image(image_id)
        array = np.asarray(image.array, dtype=np.float32)
        return array.mean(axis=-1) if image.channels else array

    def label_path(self, image_id: str, rater: str, suffix: str) -> Path:
        """Where rater ``rater``'s current label of ``image_id`` goes, relative to the workspace.

        BIDS: ``[<nested dataset>/]derivatives/labels-<rater>/sub-*/.../<image>_<suffix>``
        (the layout :mod:`segloop.io.bids` reads raters from); other layouts:
        ``labels/<rater>/<image>`` (the ``raters`` layout).  PNG for 2D raster
        images, NIfTI otherwise.
        """
        case = self.case(image_id)
        rel = case.image.resolve().relative_to(self.root.resolve())
        raster = rel.suffix.lower() in RASTER_SUFFIXES and self.image(image_id).spatial_ndim == 2
        ext = ".png" if raster else ".nii.gz"
        stem = case.id.rsplit("/", 1)[-1]
        if self.dataset.layout == "bids":
            nested = Path(case.metadata.get("dataset", "."))
            inner = rel.relative_to(nested)
            folder = nested / "derivatives" / f"labels-{rater}" / inner.parent
            return folder / f"{stem}_{suffix}{ext}"
        return Path("labels") / rater / f"{stem.replace('/', '_')}{ext}"
