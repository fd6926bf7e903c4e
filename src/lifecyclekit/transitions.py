"""A lifecycle class as data: its transitions, their guards and where each comes from.

:func:`transition_table` reads python-statemachine's class definition once per call and returns
one :class:`TransitionInfo` per declared transition, in declaration order; ``show``, the
diagrams, the export, the static checks and the docs read lifecycles only through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from statemachine.state import State
    from statemachine.transition import Transition

    from lifecyclekit.lifecycle import Lifecycle

__all__ = ["GuardRef", "Provenance", "TransitionInfo", "all_states", "edges", "transition_table"]


class Provenance(BaseModel):
    """Where a transition comes from: a row of a specification and the sentence it rests on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: str
    """The specification's row id, e.g. ``"T12"``."""
    text: str
    """The sentence or rule the transition rests on, quoted or paraphrased."""
    driver: str = ""
    """Who causes it (e.g. ``"service"``, ``"user"``), where the specification says."""
    rule_set: str = ""
    """The rule set that adds it, where a lifecycle has several (e.g. ``"observed"``)."""


class GuardRef(BaseModel):
    """One guard of a transition, by name: ``cond="name"`` or ``unless="name"``.

    .. versionadded:: 0.2
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The guard's name (a method, attribute or expression of the lifecycle)."""
    negated: bool = False
    """``True`` for an ``unless=`` guard: the transition needs it to be false."""

    @property
    def label(self) -> str:
        """How diagrams and ``show`` print it: ``name`` or ``not name``."""
        return f"not {self.name}" if self.negated else self.name

    def __str__(self) -> str:
        return self.label


class TransitionInfo(BaseModel):
    """One declared transition of a lifecycle class, as data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str
    source: str
    target: str
    guards: tuple[GuardRef, ...]
    """The guards, in declaration order (``cond`` and ``unless`` alike)."""
    payload: str | None
    """The name of the event's payload model, if any."""
    provenance: Provenance | None


def all_states(cls: type[Lifecycle]) -> Iterator[State]:
    """Every state in declaration order, the states inside compound and parallel states
    right after their parent (history pseudo-states excluded)."""
    # cls.states, not states_map: states sharing a value collapse in states_map.
    pending = list(reversed(cls.states))
    while pending:
        state = pending.pop()
        yield state
        pending.extend(reversed(state.states))


def edges(cls: type[Lifecycle]) -> Iterator[tuple[str, State, Transition]]:
    """``(event id, source state, transition)`` for every declared transition, in order
    (a statechart's nested states' transitions after their parent's)."""
    for state in all_states(cls):
        for transition in state.transitions:
            if transition.initial:
                continue
            for event in transition.events:
                yield str(event), state, transition


def transition_table(cls: type[Lifecycle]) -> list[TransitionInfo]:
    """Every transition of ``cls`` as data, in declaration order (see
    :meth:`Lifecycle.transition_table`)."""
    rows = []
    for event, source, transition in edges(cls):
        target = (transition.target or source).id
        guards = tuple(
            GuardRef(name=str(spec.attr_name), negated=spec.expected_value is False)
            for spec in transition.cond
        )
        payload = cls._payload_models.get(event)
        rows.append(
            TransitionInfo(
                event=event,
                source=source.id,
                target=target,
                guards=guards,
                payload=payload.__name__ if payload is not None else None,
                provenance=cls._provenance.get((event, source.id, target)),
            )
        )
    return rows
