"""Figures of the demo report: orthogonal slices with label outlines.

Everything is drawn with Matplotlib's non-interactive Agg backend, so it
runs without a screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segloop.io.files import atomic_output
from segloop.io.geometry import reorient
from segloop.io.image import Image

__all__ = ["LABEL_COLOURS", "orthogonal_overlay", "slice_overlay"]

#: Colours of label values 1, 2, 3... in overlays.
LABEL_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4")


def _views(image: Image, labels: list[Image], point) -> list[tuple[str, np.ndarray, list, float]]:
    """Axial, coronal and sagittal slices through ``point`` (RAS, index order)."""
    z, y, x = point
    arr = image.array
    sz, sy, sx = image.spacing
    views = [
        ("axial", arr[z], [lab.array[z] for lab in labels], sy / sx),
        ("coronal", arr[:, y, :], [lab.array[:, y, :] for lab in labels], sz / sx),
        ("sagittal", arr[:, :, x], [lab.array[:, :, x] for lab in labels], sz / sy),
    ]
    return views


def orthogonal_overlay(image: Image, labels: dict[str, Image], path: str | Path, *,
                       title: str = "", point=None, names: dict[int, str] | None = None) -> Path:
    """Save a PNG: three orthogonal slices with each label map's outlines.

    Parameters
    ----------
    image : Image
        A 3D intensity image.
    labels : dict of str to Image
        Label maps on the image's grid, one row of panels each (name → map).
    path : str or pathlib.Path
        The PNG to write (kept as a version if it exists).
    title : str
        Figure title.
    point : tuple of int, optional
        Index ``(z, y, x)`` (after reorientation to RAS) the slices pass
        through; default: the centre of the first label's foreground.
    names : dict of int to str, optional
        Names of label values for the legend.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    img = reorient(image, "RAS")
    labs = [reorient(lab, "RAS") for lab in labels.values()]
    if point is None:
        fg = np.argwhere(labs[0].array > 0) if labs else np.empty((0, 3))
        point = tuple(int(v) for v in (fg.mean(axis=0) if len(fg) else np.asarray(img.shape) // 2))
    lo, hi = np.percentile(img.array, [1, 99.5])
    rows = max(1, len(labs))
    fig, axes = plt.subplots(rows, 3, figsize=(11, 3.8 * rows), squeeze=False)
    for r, (row_name, lab) in enumerate(zip(labels, labs, strict=True) if labs else [("", None)]):
        for c, (view, sl, lab_slices, aspect) in enumerate(_views(img, [lab] if lab else [],
                                                                  point)):
            ax = axes[r][c]
            ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi, origin="lower", aspect=aspect,
                      interpolation="nearest")
            for lab_slice in lab_slices:
                for value in (int(v) for v in np.unique(lab_slice) if v > 0):
                    ax.contour(lab_slice == value, levels=[0.5], linewidths=0.8,
                               colors=LABEL_COLOURS[(value - 1) % len(LABEL_COLOURS)])
            ax.set_title(f"{row_name} — {view}" if row_name else view, fontsize=9)
            ax.set_axis_off()
    if names:
        handles = [Line2D([0], [0], color=LABEL_COLOURS[(v - 1) % len(LABEL_COLOURS)], lw=2,
                          label=n) for v, n in names.items()]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.05 if names else 0, 1, 0.96))
    out = Path(path)
    with atomic_output(out, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out


def slice_overlay(image: np.ndarray, masks: dict[str, np.ndarray], path: str | Path, *,
                  spacing=(1.0, 1.0), title: str = "") -> Path:
    """Save a PNG of one 2D slice with the outline of each named mask.

    Parameters
    ----------
    image : numpy.ndarray
        2D intensities ``(y, x)``.
    masks : dict of str to numpy.ndarray
        Boolean masks on the slice; each gets a colour and a legend entry.
    path : str or pathlib.Path
        The PNG to write.
    spacing : tuple of float
        Pixel size ``(y, x)``, for the aspect ratio.
    title : str
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    lo, hi = np.percentile(image, [1, 99.5])
    fig, ax = plt.subplots(figsize=(6, 6.4))
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, origin="lower",
              aspect=spacing[0] / spacing[1], interpolation="nearest")
    handles = []
    for i, (name, mask) in enumerate(masks.items()):
        colour = LABEL_COLOURS[i % len(LABEL_COLOURS)]
        style = "--" if name.startswith(("truth", "brain")) else "-"
        ax.contour(np.asarray(mask, float), levels=[0.5], colors=colour, linewidths=1.0,
                   linestyles=style)
        handles.append(Line2D([0], [0], color=colour, lw=2, ls=style, label=name))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=2,
              fontsize=8, frameon=False)
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    with atomic_output(out, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out
