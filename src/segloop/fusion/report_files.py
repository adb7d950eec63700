"""Write a rater report to a folder: JSON, CSV tables and PNG figures.

:func:`write_rater_report` runs :func:`segloop.fusion.report.score_raters`
and writes, in ``OUT/``:

``report.json``
    The whole report (``raters``, ``pairwise``, ``groups``, ``cases``...).
``raters.csv``
    One row per rater: the means, their spread over cases, STAPLE's estimates.
``cases.csv``
    One row per case and rater: Dice vs consensus, sensitivity, specificity,
    volume bias, boundary bias (mm).
``agreement.png``
    The pairwise inter-rater Dice matrix as a heatmap.
``bias.png``
    Volume bias and boundary bias per rater: one dot per case, the mean and
    the spread (standard deviation) over cases.
``overlay.png``
    Every rater's outline over the image of an example case (the case of
    median agreement; the slice with the largest consensus in 3D).

Existing files are an error unless ``overwrite`` (the old ones are then kept
as numbered versions, ``report.json.~1~``...).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from segloop.errors import OutputExistsError
from segloop.fusion.rater_cases import RaterCase, example_case
from segloop.fusion.report import score_raters
from segloop.io.files import atomic_output, write_json

__all__ = ["REPORT_FILES", "write_rater_report"]

#: The files a report folder holds.
REPORT_FILES = ("report.json", "raters.csv", "cases.csv", "agreement.png", "bias.png",
                "overlay.png")

_CASE_COLUMNS = ("case", "rater", "dice", "sensitivity", "specificity", "volume_bias",
                 "boundary_bias_mm")


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not np.isfinite(v) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def _write_text(text: str, path: Path, overwrite: bool) -> None:
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)


def _save(fig, path: Path, overwrite: bool) -> None:
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def agreement_figure(report: dict[str, Any]):
    """The pairwise Dice heatmap of a report (a Matplotlib Figure)."""
    raters = report["pairwise"]["raters"]
    matrix = np.asarray(report["pairwise"]["dice"], float)
    np.fill_diagonal(matrix, np.nan)  # 1 by definition: left blank so the pairs set the scale
    size = 2.5 + 0.45 * len(raters)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    finite = matrix[np.isfinite(matrix)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    shown = ax.imshow(np.ma.masked_invalid(matrix), vmin=low, vmax=max(high, low + 1e-3),
                      cmap="viridis")
    ax.set_xticks(range(len(raters)), raters, rotation=45, ha="right")
    ax.set_yticks(range(len(raters)), raters)
    if len(raters) <= 12:
        for i in range(len(raters)):
            for j in range(len(raters)):
                if np.isfinite(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] < (low + high) / 2 else "black")
    fig.colorbar(shown, ax=ax, label="mean Dice over shared cases")
    ax.set_title(f"Inter-rater Dice ({report['n_cases']} cases)")
    return fig


def bias_figure(report: dict[str, Any]):
    """Volume and boundary bias per rater, cases as dots, mean +- std (a Figure)."""
    raters = list(report["raters"])
    fig = _figure(3.0 + 0.6 * len(raters), 3.6)
    axes = fig.subplots(1, 2)
    for ax, key, title in ((axes[0], "volume_bias", "volume bias (relative)"),
                           (axes[1], "boundary_bias_mm", "boundary bias (mm)")):
        for x, rater in enumerate(raters):
            values = [r[key] for r in report["cases"] if r["rater"] == rater
                      and np.isfinite(r[key])]
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), values, s=8, alpha=0.45, color="tab:blue")
            mean, std = report["raters"][rater][key], report["raters"][rater][f"{key}_std"]
            if np.isfinite(mean):
                ax.errorbar(x, mean, yerr=std if np.isfinite(std) else None, fmt="D",
                            color="black", capsize=4, markersize=5)
        ax.axhline(0.0, color="gray", lw=0.8)
        ax.set_xticks(range(len(raters)), raters, rotation=45, ha="right")
        ax.set_title(title)
    axes[1].set_ylabel("> 0: drawn outside the consensus")
    return fig


def _example_slice(case: RaterCase, image: np.ndarray):
    masks = dict(case.masks)
    if image.ndim == 3:
        union = np.sum([m for m in masks.values()], axis=0)
        z = int(np.argmax(union.reshape(union.shape[0], -1).sum(axis=1)))
        return image[z], {r: m[z] for r, m in masks.items()}, f" (slice {z})"
    return image, masks, ""


def overlay_figure(case: RaterCase):
    """Every rater's outline over the image of ``case`` (a Figure)."""
    from skimage.segmentation import find_boundaries

    image, masks, where = _example_slice(case, case.read_image())
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    low, high = np.percentile(image, (1, 99))
    ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1)
    colours = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:cyan",
               "tab:pink", "tab:olive", "tab:brown", "yellow"]
    handles = []
    from matplotlib.lines import Line2D

    for i, (rater, mask) in enumerate(sorted(masks.items())):
        colour = colours[i % len(colours)]
        edge = np.ma.masked_where(~find_boundaries(mask, mode="inner"), np.ones(mask.shape))
        ax.imshow(edge, cmap=_single(colour), alpha=0.9, interpolation="nearest")
        handles.append(Line2D([], [], color=colour, label=rater))
    ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.6)
    ax.set_axis_off()
    ax.set_title(f"{case.id}{where}: {len(masks)} raters")
    return fig


def _single(colour: str):
    from matplotlib.colors import ListedColormap

    return ListedColormap([colour])


def write_rater_report(data: str | os.PathLike, out: str | os.PathLike, *,
                       overwrite: bool = False, **options) -> dict[str, Any]:
    """Score the raters of ``data`` and write the report folder ``out``.

    Parameters
    ----------
    data : path or Dataset
        The dataset folder (see :func:`segloop.fusion.report.score_raters`).
    out : path
        The report folder (created).
    overwrite : bool
        Replace existing report files (old ones are kept as versions).
    **options
        Passed to :func:`~segloop.fusion.report.score_raters` (``kind``,
        ``consensus``, ``class_value``, ``region``, ``groups``...).

    Returns
    -------
    dict
        The report, with ``files``: name -> path written.

    Raises
    ------
    OutputExistsError
        A report file exists and ``overwrite`` is false (nothing is written).
    """
    folder = Path(out)
    existing = [name for name in REPORT_FILES if (folder / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"holds a report already ({', '.join(existing)}); pass "
                                "--overwrite to replace it (old files are kept as versions)",
                                path=folder)
    report, cases = score_raters(data, **options)
    files = {name: folder / name for name in REPORT_FILES}
    summary = [{"rater": r, **v} for r, v in report["raters"].items()]
    columns = ["rater", *next(iter(report["raters"].values())).keys()]
    _write_text(_csv(summary, columns), files["raters.csv"], True)
    _write_text(_csv(report["cases"], list(_CASE_COLUMNS)), files["cases.csv"], True)
    _save(agreement_figure(report), files["agreement.png"], True)
    _save(bias_figure(report), files["bias.png"], True)
    _save(overlay_figure(example_case(cases, report)), files["overlay.png"], True)
    report["files"] = {name: str(path) for name, path in files.items()}
    write_json(report, files["report.json"], overwrite=True)
    return report
