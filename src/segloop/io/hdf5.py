"""HDF5 volumes holding ``image`` and ``label`` datasets (as in the cardiac sets).

HDF5 files store no geometry: the axis order of the stored array is given by
``axes`` (``"zyx"`` by default; the left-atrium set stores ``"xyz"``) and the
spacing by ``spacing`` (array order after reordering to ``(z, y, x)``) or an
``spacing`` attribute on the dataset when present (written by segloop).

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io.image import Image
>>> p = pathlib.Path(tempfile.mkdtemp()) / "v.h5"
>>> write_hdf5(Image(np.zeros((2, 3, 4), np.uint8), kind="label", spacing=(2, 1, 1)), p)
>>> read_hdf5(p, dataset="label").spacing
(2.0, 1.0, 1.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segloop.errors import CorruptFileError, InvalidArgumentError, SegloopError
from segloop.io.files import check_pixel_budget
from segloop.io.image import Image

__all__ = ["hdf5_datasets", "read_hdf5", "write_hdf5"]


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(f"not a readable HDF5 file ({exc})", path=path) from exc


def hdf5_datasets(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names, shapes and dtypes of the array datasets at the top of an HDF5 file."""
    import h5py

    with _open(path) as f:
        return {k: (tuple(v.shape), str(v.dtype)) for k, v in f.items()
                if isinstance(v, h5py.Dataset)}


def read_hdf5(path: Path, *, kind: str | None = None, dataset: str | None = None,
              axes: str = "zyx", spacing=None) -> Image:
    """Read one dataset of an HDF5 file as an :class:`Image`.

    Parameters
    ----------
    path : pathlib.Path
        ``.h5`` / ``.hdf5`` file.
    kind : {"image", "label", "soft"}, optional
        Defaults to ``"label"`` for a dataset named ``label``, else ``"image"``.
    dataset : str, optional
        Dataset name; default ``"image"``, or ``"label"`` when ``kind="label"``,
        or the only dataset of a file holding one.
    axes : str
        Order of the stored axes, a permutation of ``"zyx"`` (or ``"yx"``).
    spacing : sequence of float, optional
        Voxel size in mm in ``(z, y, x)`` order; overrides a stored attribute.
        Files written by segloop also store ``origin`` and ``direction``.

    Returns
    -------
    Image
        The volume reordered to ``(z, y, x)``.
    """
    with _open(path) as f:
        name = dataset or ("label" if kind == "label" else "image")
        arrays = [k for k in f if hasattr(f[k], "shape")]
        if dataset is None and name not in f and len(arrays) == 1:
            name = arrays[0]  # a file holding a single dataset: read that one
        kind = kind or ("label" if name == "label" else "image")
        if name not in f:
            raise CorruptFileError(f"no dataset {name!r} (has: {', '.join(f.keys()) or 'none'})",
                                   path=path)
        ds = f[name]
        if not hasattr(ds, "shape"):
            raise CorruptFileError(f"{name!r} is a group, not an array dataset", path=path)
        if len(axes) != ds.ndim or sorted(axes) != sorted("zyx"[3 - ds.ndim:]):
            raise InvalidArgumentError(
                f"axes={axes!r} does not describe the {ds.ndim}D dataset {name!r}", path=path)
        check_pixel_budget(ds.shape, ds.dtype, path)
        try:
            data = ds[()]
        except OSError as exc:
            raise CorruptFileError(f"dataset {name!r} cannot be read ({exc})", path=path) from exc
        stored = ds.attrs.get("spacing")
        origin = ds.attrs.get("origin")
        direction = ds.attrs.get("direction")
    target = "zyx"[3 - data.ndim:]
    array = np.transpose(data, [axes.index(a) for a in target])
    if spacing is None and stored is not None:
        spacing = tuple(float(s) for s in np.asarray(stored).reshape(-1))
    meta = {"format": "hdf5", "dataset": name, "spacing_known": spacing is not None}
    try:
        return Image(np.ascontiguousarray(array), spacing=spacing, kind=kind, metadata=meta,
                     origin=None if origin is None else np.asarray(origin, dtype=float),
                     direction=None if direction is None else np.asarray(direction, float))
    except SegloopError as exc:
        raise type(exc)(exc.message, path=path) from exc


def write_hdf5(image: Image, path: Path, *, dataset: str | None = None) -> None:
    """Write the image as one dataset (``image`` or ``label``) with a spacing attribute."""
    import h5py

    name = dataset or ("label" if image.kind == "label" else "image")
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(name, data=image.array, compression="gzip")
        ds.attrs["spacing"] = np.asarray(image.spacing)
        ds.attrs["origin"] = np.asarray(image.origin)
        ds.attrs["direction"] = np.asarray(image.direction)
        ds.attrs["axes"] = "zyx"[3 - image.spatial_ndim:]
