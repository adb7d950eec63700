"""Training runs of the learning benchmarks: variant configs and summary helpers.

The ``film``, ``cascade`` and ``transfer`` suites train a config more than
once with one thing changed (no FiLM, no cascade, another seed or source).
:func:`run_config` makes each variant: the same config, trained afresh
(``training.resume`` off) into its own output folder, with the keys given
replaced; :func:`mean_of` and :func:`fmt` summarise and print their scores,
which may be missing (a run without a labelled test case).

Examples
--------
>>> from segloop.learn.config import load_config
>>> cfg = load_config({"data": {"path": "d"}, "output": {"dir": "runs/x"},
...                    "cascade": {"locate": "l.pt"}})
>>> one = run_config(cfg, "runs/x/single", data={"cache_dir": None}, cascade=None)
>>> one.output.dir, one.training.resume, one.cascade
('runs/x/single', False, None)
>>> mean_of([0.5, None, 0.7]), mean_of([None]), fmt(None), fmt(0.25, "+.2f")
(0.6, None, 'n/a', '+0.25')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from segloop.learn.config import Config, load_config, to_dict

__all__ = ["fmt", "mean_of", "run_config"]


def run_config(cfg: Config, out, **sections: Mapping | None) -> Config:
    """``cfg`` trained afresh into ``out``, each ``section={key: value}`` replacing those keys.

    ``section=None`` removes an optional section (``cascade=None``). The result
    is validated like any config (a bad key raises
    :class:`~segloop.learn.config.ConfigError` naming it).
    """
    d = to_dict(cfg)
    d["training"]["resume"] = False
    d["output"]["dir"] = str(Path(out))
    for section, values in sections.items():
        if values is None:
            d.pop(section, None)
        else:
            d[section] = {**(d.get(section) or {}), **values}
    return load_config(d)


def mean_of(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None (None when there is none)."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def fmt(value: float | None, spec: str = ".4f") -> str:
    """``value`` formatted by ``spec``, ``n/a`` for None (log lines)."""
    return "n/a" if value is None else format(value, spec)
