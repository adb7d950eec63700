"""What a training run records per epoch: a CSV, TensorBoard scalars, learning curves.

A run's history is a list of rows, one per finished epoch (the dicts of
:data:`COLUMNS`); the checkpoint keeps it, so a resumed run rewrites the
same files from the whole history and every epoch appears once.

* :func:`write_csv` -- ``metrics.csv`` (one row per epoch);
* :class:`TensorBoard` -- scalars under ``OUTPUT_DIR/tb`` (optional);
* :func:`plot_curves` -- ``learning_curves.png``: training loss and validation Dice
  against the epoch (a matplotlib ``Figure``, no pyplot state);
* :func:`replace_file` -- write a run's own file atomically (no numbered versions:
  these files belong to the run, like its checkpoints).

Examples
--------
>>> import pathlib, tempfile
>>> rows = [{"epoch": 1, "loss": 0.9, "val_dice": 0.4}, {"epoch": 2, "loss": 0.5, "val_dice": None}]
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> print(write_csv(rows, out / "metrics.csv").read_text().splitlines()[0])
epoch,loss,val_dice,lr,seconds,samples,samples_per_second,loader_seconds,elapsed
>>> plot_curves(rows, out / "curves.png").stat().st_size > 1000
True
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
from pathlib import Path

from segloop.errors import InvalidArgumentError
from segloop.io.files import apply_default_mode, write_errors

__all__ = ["COLUMNS", "TensorBoard", "plot_curves", "replace_file", "write_csv"]

#: Columns of ``metrics.csv`` (a row may carry more; they are appended in order):
#: the epoch, its mean training loss, the validation Dice (empty when not validated),
#: the learning rate the epoch started with (the schedule steps per iteration), its
#: seconds, samples, samples/s and seconds waiting for the loader, and the training
#: seconds elapsed at its end (over resumes). :func:`segloop.learn.epoch.run_epoch`.
COLUMNS = ("epoch", "loss", "val_dice", "lr", "seconds", "samples", "samples_per_second",
           "loader_seconds", "elapsed")


def replace_file(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically, replacing it (the run's own file)."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            apply_default_mode(tmp)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return path


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_csv(rows: list[dict], path) -> Path:
    """Write the history as CSV, the :data:`COLUMNS` first, empty cells for missing values."""
    extra = [k for row in rows for k in row if k not in COLUMNS]
    columns = list(COLUMNS) + list(dict.fromkeys(extra))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return replace_file(path, buf.getvalue())


def plot_curves(rows: list[dict], path) -> Path:
    """Training loss and validation Dice against the epoch, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_dice = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in rows if r.get("loss") is not None]
    ax_loss.plot(epochs, [r["loss"] for r in rows if r.get("loss") is not None], "o-", ms=3)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    val = [(r["epoch"], r["val_dice"]) for r in rows if r.get("val_dice") is not None]
    if val:
        ax_dice.plot(*zip(*val, strict=True), "o-", ms=3, color="tab:green")
    ax_dice.set(xlabel="epoch", ylabel="validation Dice", title="validation Dice", ylim=(0, 1))
    for ax in (ax_loss, ax_dice):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return replace_file(path, buf.getvalue())


class TensorBoard:
    """Scalars of each epoch under ``folder`` (a no-op when ``enabled`` is false).

    Parameters
    ----------
    folder : str or Path
        The event-file folder (``OUTPUT_DIR/tb``).
    enabled : bool
        ``cfg.output.tensorboard``.
    """

    def __init__(self, folder, *, enabled: bool = True):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise InvalidArgumentError("output.tensorboard: the tensorboard package is not "
                                           "installed (pip install tensorboard, or set "
                                           "output.tensorboard=false)") from None
            with write_errors(folder):
                self.writer = SummaryWriter(log_dir=str(folder))

    def log(self, row: dict) -> None:
        """Add the numeric values of one history row at step ``row["epoch"]``."""
        if self.writer is None:
            return
        step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
