"""The loop every driver runs: ask the simulated user, apply to the tool, score, repeat.

A driver (:mod:`segloop.simulate.drivers`) says three things: how a session
starts (:meth:`SimulatedDriver.start`: the tool's session object and what
the simulated user prepares, e.g. the first anchors), what the user does
next given the current mask (:meth:`SimulatedDriver.propose`) and how the
tool answers (:meth:`SimulatedDriver.apply`: the new mask, or None for "no
result yet", which scores Dice 0). :meth:`SimulatedDriver.__call__` runs the
loop and records a :class:`~segloop.simulate.protocol.Trace`:

* it stops after ``max_interactions``, when Dice reaches ``stop_at``, or when
  the simulated user has nothing left to correct (the trace is then
  shorter: :func:`~segloop.simulate.protocol.noc` counts a failure as the cap
  and :func:`~segloop.simulate.protocol.dice_at` keeps the last Dice);
* a tool that raises on one interaction does not end the session: the error
  goes into ``trace.note`` (``"interaction 3: InvalidArgumentError: ..."``),
  the previous mask is kept (Dice 0 if it was the first), and the loop goes
  on; a tool that cannot even start (e.g. a constant image) gives one
  interaction at Dice 0 and its note;
* ``trace.seconds`` is the time spent in the tool (starting it and answering
  every interaction), not in the simulated user.

The image may carry colour as its last axis (its shape is then the truth's
plus one axis).

Examples
--------
>>> class Oracle(SimulatedDriver):
...     name = "oracle"
...     def propose(self, state, mask, k):
...         return Interaction("click+", None)
...     def apply(self, state, interaction, k):
...         return state.truth
>>> truth = np.zeros((8, 8), bool); truth[2:6, 2:6] = True
>>> Oracle()(np.zeros((8, 8)), truth).dice
[1.0]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from segloop.errors import InvalidArgumentError
from segloop.metrics import dice
from segloop.simulate._checks import as_count, as_mask, as_rng, as_spacing, as_unit
from segloop.simulate.protocol import Interaction, Trace

__all__ = ["SessionState", "SimulatedDriver"]


@dataclass
class SessionState:
    """What one simulated session knows: inputs, the tool's session, the user's notes."""

    image: np.ndarray
    truth: np.ndarray
    spacing: np.ndarray
    channel_axis: int | None
    rng: np.random.Generator
    max_interactions: int
    tool: Any = None
    memo: dict[str, Any] = field(default_factory=dict)


class SimulatedDriver:
    """Base of the drivers: the loop of the module docstring; subclasses fill three hooks."""

    name: ClassVar[str] = ""
    #: Spatial dimensions the tool takes.
    ndims: ClassVar[tuple[int, ...]] = (2, 3)

    def start(self, state: SessionState) -> None:
        """Create the tool's session in ``state.tool`` (may raise: a tool error)."""

    def propose(self, state: SessionState, mask: np.ndarray, k: int) -> Interaction | None:
        """The simulated user's interaction number ``k`` (0-based); None: nothing to do."""
        raise NotImplementedError  # pragma: no cover

    def apply(self, state: SessionState, interaction: Interaction, k: int) -> np.ndarray | None:
        """Give ``interaction`` to the tool; return its mask (None: no result yet)."""
        raise NotImplementedError  # pragma: no cover

    def __call__(self, image, truth, *, spacing=None, max_interactions: int = 20,
                 stop_at: float = 1.0, rng=None) -> Trace:
        """Run one simulated session; see the module docstring.

        Raises
        ------
        segloop.errors.InvalidArgumentError
            An empty truth, one of a dimension the tool does not take, an
            image whose shape does not match it, or a bad option. (Errors of
            the tool itself are recorded in the trace instead.)
        """
        state = self._state(image, truth, spacing, max_interactions, rng)
        stop_at = as_unit(stop_at, "stop_at")
        trace = Trace(tool=self.name)
        notes: list[str] = []
        t0 = time.perf_counter()
        try:
            self.start(state)
        except Exception as err:  # a tool error is data, not a crash
            trace.seconds = time.perf_counter() - t0
            trace.dice.append(0.0)
            trace.interactions.append(Interaction("start", None))
            trace.note = f"start: {type(err).__name__}: {err}"
            return trace
        trace.seconds = time.perf_counter() - t0
        mask = np.zeros(state.truth.shape, dtype=bool)
        for k in range(state.max_interactions):
            interaction = self.propose(state, mask, k)
            if interaction is None:
                notes.append(f"interaction {k + 1}: the simulated user has nothing to correct")
                break
            t0 = time.perf_counter()
            try:
                new = self.apply(state, interaction, k)
                mask = np.zeros_like(mask) if new is None else np.asarray(new) > 0
            except Exception as err:  # recorded; the previous mask is kept
                notes.append(f"interaction {k + 1}: {type(err).__name__}: {err}")
            trace.seconds += time.perf_counter() - t0
            trace.interactions.append(interaction)
            trace.dice.append(dice(mask, state.truth))
            if trace.dice[-1] >= stop_at:
                break
        trace.note = "; ".join(notes) or None
        return trace

    def _state(self, image, truth, spacing, max_interactions, rng) -> SessionState:
        t = as_mask(truth, "truth", ndims=self.ndims, nonempty=True)
        img = np.asarray(image)
        if img.shape == t.shape:
            channel_axis = None
        elif img.ndim == t.ndim + 1 and img.shape[:-1] == t.shape:
            channel_axis = -1
        else:
            raise InvalidArgumentError(
                f"image has shape {img.shape} but truth has shape {t.shape} (the image may add "
                "one colour axis at the end)")
        return SessionState(image=img, truth=t, spacing=as_spacing(spacing, t.ndim),
                            channel_axis=channel_axis, rng=as_rng(rng),
                            max_interactions=as_count(max_interactions, "max_interactions",
                                                      least=1))
