"""Why an event would (or would not) fire: guard verdicts as data.

:meth:`Lifecycle.explain` returns an :class:`Explanation` without firing anything, and a
refused event raises :class:`~lifecyclekit.TransitionRejected` carrying the same structure.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

import lifecyclekit._chart as _chart
from lifecyclekit.errors import AsyncRequired

if TYPE_CHECKING:
    from statemachine.state import State
    from statemachine.transition import Transition

    from lifecyclekit.lifecycle import Lifecycle

__all__ = [
    "Because",
    "Candidate",
    "Explanation",
    "GuardVerdict",
    "abuild_explanation",
    "build_explanation",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

Verdict = Literal["allowed", "guards_failed", "no_transition", "finished", "unknown_event"]


class Because:
    """A guard's answer with its reason: falsy (or truthy) like ``value``, and explained.

    Return ``Because(False, "network_type UNMETERED needs unmetered=True")`` from a guard and
    refusals read ``Can't start ...: constraints_met is False (network_type UNMETERED ...)``.
    """

    __slots__ = ("reason", "value")

    def __init__(self, value: bool, reason: str) -> None:
        self.value = bool(value)
        self.reason = reason

    def __bool__(self) -> bool:
        return self.value

    def __repr__(self) -> str:
        return f"Because({self.value!r}, {self.reason!r})"


class GuardVerdict(BaseModel):
    """One guard of one candidate transition, and what it returned."""

    model_config = _FROZEN

    name: str
    """The guard's name as declared (an expression like ``a and not b`` stays whole)."""
    kind: Literal["cond", "unless"]
    """``cond`` guards must be truthy, ``unless`` guards falsy."""
    value: bool
    """The truth value the guard returned."""
    passed: bool
    """Whether this verdict lets the transition through."""
    detail: str | None = None
    """The reason the guard gave (see :class:`Because`), if any."""

    def describe(self) -> str:
        """``"constraints_met is False"``, or ``"unless is_paused: is_paused is True"``."""
        text = f"{self.name} is {self.value}"
        if self.detail:
            text = f"{text} ({self.detail})"
        return text if self.kind == "cond" else f"unless {self.name}: {text}"


class Candidate(BaseModel):
    """A transition the event could take from the current state."""

    model_config = _FROZEN

    source: str
    target: str | None
    guards: tuple[GuardVerdict, ...]
    passed: bool
    """All guards passed: this is the transition the event takes (the first such one)."""


class Explanation(BaseModel):
    """What an event would do in the current state, with every guard's verdict."""

    model_config = _FROZEN

    machine: str
    """The lifecycle class name."""
    event: str
    state: str
    """The current state id."""
    state_value: str
    """The current state's vendor value, as shown in messages."""
    verdict: Verdict
    candidates: tuple[Candidate, ...]
    allowed_events: tuple[str, ...]
    """Events that have a transition from the current state (guards not evaluated)."""

    @property
    def allowed(self) -> bool:
        """Whether the event would fire."""
        return self.verdict == "allowed"

    def message(self) -> str:
        """One sentence: ``Can't start OneTimeWork in ENQUEUED: constraints_met is False``."""
        head = f"Can't {self.event} {self.machine} in {self.state_value}"
        if self.verdict == "allowed":
            target = next(c.target for c in self.candidates if c.passed)
            return f"{self.event} is allowed in {self.state_value} (to {target})"
        if self.verdict == "finished":
            return (
                f"{head}: the {self.machine} has terminated in state {self.state_value}; "
                "a final state accepts no event."
            )
        allowed = ", ".join(self.allowed_events) or "none"
        if self.verdict == "unknown_event":
            return (
                f"Can't send {self.event!r} to {self.machine} in {self.state_value}: "
                f"{self.machine} has no such event. Events allowed in {self.state_value}: "
                f"{allowed}."
            )
        if self.verdict == "no_transition":
            return (
                f"{head}: no {self.event!r} transition leaves {self.state!r}. "
                f"Events allowed in {self.state_value}: {allowed}."
            )
        parts = []
        for candidate in self.candidates:
            failed = ", ".join(g.describe() for g in candidate.guards if not g.passed)
            parts.append(
                failed if len(self.candidates) == 1 else f"to {candidate.target}: {failed}"
            )
        return f"{head}: {'; '.join(parts)}"


def build_explanation(machine: Lifecycle, event_id: str, kwargs: dict[str, Any]) -> Explanation:
    """What ``event_id`` would do on ``machine`` now, evaluating every guard.

    Raises:
        AsyncRequired: a guard is async (use :func:`abuild_explanation`); nothing changed.
    """
    current, finished, matching = _matching(machine, event_id, kwargs)
    candidates = []
    for transition, guards in matching:
        verdicts = []
        for name, expected, raw in guards:
            if inspect.isawaitable(raw):
                if inspect.iscoroutine(raw):
                    raw.close()
                cls = type(machine).__name__
                msg = (
                    f"{cls}.explain({event_id!r}) cannot answer: guard {name!r} is async, so "
                    "its verdict must be awaited. Use `await lifecycle.aexplain(event, "
                    "**data)` instead."
                )
                raise AsyncRequired(msg)
            verdicts.append(_verdict(name, expected, raw))
        candidates.append(_candidate(transition, verdicts))
    return _explanation(machine, event_id, current, finished, candidates)


async def abuild_explanation(
    machine: Lifecycle, event_id: str, kwargs: dict[str, Any]
) -> Explanation:
    """:func:`build_explanation`, awaiting async guards (in declaration order)."""
    current, finished, matching = _matching(machine, event_id, kwargs)
    candidates = []
    for transition, guards in matching:
        verdicts = []
        for name, expected, raw in guards:
            value = await raw if inspect.isawaitable(raw) else raw
            verdicts.append(_verdict(name, expected, value))
        candidates.append(_candidate(transition, verdicts))
    return _explanation(machine, event_id, current, finished, candidates)


_Guards = Iterator[tuple[str, bool, Any]]


def _matching(
    machine: Lifecycle, event_id: str, kwargs: dict[str, Any]
) -> tuple[State, bool, list[tuple[Transition, _Guards]]]:
    """The current state, whether the machine is finished, and each candidate transition with
    its guards' raw answers (each guard is called when its answer is taken from the
    iterator). In a statechart, every active leaf's transitions, then its ancestors', once
    each, as python-statemachine selects them."""
    if machine._is_chart:
        active = machine._active()
        leaves = [s for s in active if not any(c in active for c in s.states)]
        current = _chart.summary(active)
        finished = machine.is_finished
    else:
        current = machine._current_state()
        leaves, finished = [current], bool(current.final)
    matching: list[tuple[Transition, _Guards]] = []
    if event_id in machine._event_ids and not finished:
        bound = getattr(machine, event_id)
        seen: set[int] = set()
        for leaf in leaves:
            for state in (leaf, *leaf.ancestors()):
                for transition in state.transitions:
                    if id(transition) in seen or transition.initial:
                        continue
                    seen.add(id(transition))
                    if transition.match(event_id):
                        guards = _guards(machine, transition, bound, leaf, kwargs)
                        matching.append((transition, guards))
    return current, finished, matching


def _explanation(
    machine: Lifecycle,
    event_id: str,
    current: State,
    finished: bool,
    candidates: list[Candidate],
) -> Explanation:
    if event_id not in machine._event_ids:
        verdict: Verdict = "unknown_event"
    elif finished:
        verdict = "finished"
    elif not candidates:
        verdict = "no_transition"
    elif any(c.passed for c in candidates):
        verdict = "allowed"
    else:
        verdict = "guards_failed"
    return Explanation(
        machine=type(machine).__name__,
        event=event_id,
        state=current.id,
        state_value=str(current.value),
        verdict=verdict,
        candidates=tuple(candidates),
        allowed_events=tuple(dict.fromkeys(str(e) for e in machine.allowed_events)),
    )


def _guards(
    machine: Lifecycle,
    transition: Transition,
    event: Any,
    current: State,
    kwargs: dict[str, Any],
) -> _Guards:
    injected = {
        **kwargs,
        "machine": machine,
        "model": machine.model,
        "event": event,
        "source": transition.source,
        "target": transition.target,
        "state": current,
        "transition": transition,
    }
    for name, expected, guard in machine._guard_calls(transition):
        yield name, expected, guard(**injected)


def _verdict(name: str, expected: bool, raw: Any) -> GuardVerdict:
    return GuardVerdict(
        name=name,
        kind="cond" if expected else "unless",
        value=bool(raw),
        passed=bool(raw) == expected,
        detail=raw.reason if isinstance(raw, Because) else None,
    )


def _candidate(transition: Transition, verdicts: list[GuardVerdict]) -> Candidate:
    target = transition.target
    return Candidate(
        source=transition.source.id,
        target=target.id if target is not None else None,
        guards=tuple(verdicts),
        passed=all(v.passed for v in verdicts),
    )
