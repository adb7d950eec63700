"""What a simulated annotation session records, and how it is scored.

A *driver* plays one tool against a known truth mask: it asks the simulated
annotator (``segloop.simulate``) for the next interaction — a box, a click,
an anchor, a scribble — gives it to the tool, and records the Dice after
every interaction in a :class:`Trace`. Benchmarks compare tools by these
traces: NoC@85 / NoC@90 (interactions to reach Dice 0.85 / 0.90; a failure
counts as the cap) and Dice after 1, 3, 5 and 10 interactions.

Examples
--------
>>> t = Trace(tool="boxclicks", dice=[0.7, 0.86, 0.93])
>>> noc(t.dice, 0.85, 20), noc(t.dice, 0.95, 20)
(2, 20)
>>> dice_at(t.dice, 5)
0.93
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from segloop.errors import InvalidArgumentError

__all__ = ["Driver", "Interaction", "Trace", "dice_at", "noc"]


@dataclass(frozen=True)
class Interaction:
    """One user action: its kind and its geometry, in array index order.

    ``kind`` is one of ``"box"``, ``"click+"``, ``"click-"``, ``"anchor"``,
    ``"scribble+"``, ``"scribble-"``, ``"vertex"`` (polygon baseline),
    ``"slice"`` (a slice drawn for interpolation).
    """

    kind: str
    data: Any


@dataclass
class Trace:
    """Dice after each interaction of one simulated session (index 0 = after the first)."""

    tool: str
    dice: list[float] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)
    seconds: float = 0.0
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: tool, dice (rounded), interaction kinds, seconds, note."""
        return {"tool": self.tool, "dice": [round(float(d), 4) for d in self.dice],
                "interactions": [i.kind for i in self.interactions],
                "seconds": round(self.seconds, 3), "note": self.note}


def noc(dice: Sequence[float], target: float, max_interactions: int) -> int:
    """Number of interactions to reach ``dice >= target``; ``max_interactions`` if never.

    Raises
    ------
    InvalidArgumentError
        ``target`` outside (0, 1] or a cap below 1.
    """
    if not 0.0 < float(target) <= 1.0:
        raise InvalidArgumentError(f"target must be in (0, 1], got {target!r}")
    if int(max_interactions) < 1:
        raise InvalidArgumentError(f"max_interactions must be >= 1, got {max_interactions!r}")
    for i, value in enumerate(dice[:max_interactions]):
        if value >= target:
            return i + 1
    return int(max_interactions)


def dice_at(dice: Sequence[float], k: int) -> float:
    """Dice after ``k`` interactions; a session that stopped earlier keeps its last value."""
    if not dice:
        return 0.0
    return float(dice[min(k, len(dice)) - 1])


class Driver(Protocol):
    """Plays one tool with the simulated annotator; returns the session's :class:`Trace`."""

    name: str

    def __call__(self, image: np.ndarray, truth: np.ndarray, *, spacing=None,
                 max_interactions: int = 20, stop_at: float = 1.0,
                 rng: np.random.Generator | None = None) -> Trace:
        """Run one session on ``image`` until ``max_interactions`` or Dice >= ``stop_at``.

        ``image`` is 2D or 3D (plus a channel axis for colour), ``truth`` the
        object's boolean mask, ``rng`` the seeded generator for jitter.
        """


DriverFactory = Callable[..., Driver]
