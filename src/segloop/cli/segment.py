"""``segloop segment TOOL IMAGE --out LABEL``: run one annotation tool on a file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from segloop.cli._common import add_read_options, read_options
from segloop.errors import InvalidArgumentError

__all__ = ["parse_set", "register", "run"]


def register(sub) -> None:
    """Add the ``segment`` sub-command."""
    from segloop.tools.spec import TOOL_NAMES

    p = sub.add_parser(
        "segment", help="run an annotation tool (livewire, graphcut, boxclicks...) on a file",
        description="Run one tool of segloop.tools on IMAGE and write the resulting label map "
        "(with IMAGE's geometry) to --out. Points and boxes are array indices in (z, y, x) or "
        "(y, x) order. Tool parameters come as JSON (--args) and/or KEY=VALUE pairs (--set, "
        "VALUE parsed as JSON when it can be). `segloop tools TOOL` lists a tool's parameters.")
    p.add_argument("tool", choices=TOOL_NAMES, metavar="TOOL",
                   help="one of: " + ", ".join(TOOL_NAMES))
    p.add_argument("image", metavar="IMAGE", help="image file or DICOM folder")
    p.add_argument("--out", metavar="LABEL", required=True, help="label file to write")
    p.add_argument("--label", metavar="FILE", default=None,
                   help="existing label map to edit (needed by islands, smooth, brush erase, "
                   "interpolate)")
    p.add_argument("--args", default=None, metavar="JSON",
                   help="tool parameters as a JSON object, or @FILE to read them from a file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one tool parameter (repeatable); VALUE is JSON if it parses")
    p.add_argument("--slice", default=None, metavar="AXIS=INDEX",
                   help="run the tool on one slice of a volume, e.g. z=40 (axes z, y, x); "
                   "points are then (y, x) in that slice")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it exists (the old file is kept as a version)")
    add_read_options(p)
    p.set_defaults(func=run)


def parse_set(items: list[str]) -> dict:
    """``["lam=2", "positive=[[3,4]]"]`` → ``{"lam": 2, "positive": [[3, 4]]}``.

    Examples
    --------
    >>> parse_set(["lam=2.5", "model=gmm"])
    {'lam': 2.5, 'model': 'gmm'}
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _tool_params(args) -> dict:
    params = {}
    if args.args:
        text = args.args
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as exc:
                raise InvalidArgumentError(f"--args {args.args}: cannot read ({exc.strerror})") \
                    from exc
        try:
            params = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"--args is not valid JSON ({exc.msg} at char "
                                       f"{exc.pos})") from exc
        if not isinstance(params, dict):
            raise InvalidArgumentError("--args must be a JSON object {\"name\": value, ...}")
    params.update(parse_set(args.set))
    return params


def _parse_slice(text: str, ndim: int) -> tuple[int, int]:
    axis_name, sep, index = text.partition("=")
    axes = "zyx"
    if not sep or axis_name not in axes or not index.lstrip("-").isdigit() or ndim != 3:
        raise InvalidArgumentError(f"--slice expects AXIS=INDEX with AXIS in z, y, x on a "
                                   f"volume, got {text!r}")
    return axes.index(axis_name), int(index)


def run(args) -> int:
    """Run one tool and write its label map."""
    from segloop.io import read_image, write_image
    from segloop.io.geometry import check_same_grid
    from segloop.tools import get_tool
    from segloop.tools.apply import apply_tool

    spec = get_tool(args.tool)
    params = spec.check_params(_tool_params(args))
    image = read_image(args.image, kind="image", **read_options(args))
    label = None
    if args.label:
        label = read_image(args.label, kind="label")
        check_same_grid(image, label)
    elif spec.needs_label:
        raise InvalidArgumentError(f"tool {spec.name!r} edits a label map: pass --label FILE")
    where = None
    if args.slice is not None or image.spatial_ndim not in spec.ndims:
        if args.slice is None:
            raise InvalidArgumentError(
                f"tool {spec.name!r} works on {'/'.join(f'{d}D' for d in spec.ndims)} images "
                f"and {args.image} is {image.spatial_ndim}D; pick a slice with --slice z=INDEX")
        where = _parse_slice(args.slice, image.spatial_ndim)
        if 2 in spec.ndims and not 0 <= where[1] < image.shape[where[0]]:
            raise InvalidArgumentError(
                f"--slice {args.slice}: index outside 0..{image.shape[where[0]] - 1}")
    t0 = time.perf_counter()
    result = apply_tool(spec, image, None if label is None else label.array, params,
                        slice=where)
    seconds = time.perf_counter() - t0
    out = image.with_array(result, kind="label", channels=False)
    write_image(out, args.out, overwrite=args.overwrite)
    n = int(np.count_nonzero(out.array))
    print(f"{spec.name}: {n} labelled voxels in {seconds * 1000:.0f} ms; wrote {args.out}")
    return 0
