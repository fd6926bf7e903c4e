"""Statecharts: what a configuration of compound, parallel and history states means.

A flat lifecycle is in one state. A statechart is in a *configuration*: the active states,
ancestors included (``{fulfilment, packing}``; ``{running, health, healthy, scaling,
steady}``). Lifecyclekit names one state for it, :func:`summary`: the innermost active state
that contains every active state. For a compound state that is its active leaf
(``packing``); for parallel regions it is the parallel state (``running``), whose regions'
states are read from ``configuration``. A flat lifecycle's state is its summary too, so
``state``, records, stores and queries keep one meaning.

This module holds the rules on class ``State`` objects only; it imports nothing of the
engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lifecyclekit.errors import SnapshotError

if TYPE_CHECKING:
    from statemachine.state import State

__all__ = ["check_configuration", "derive_configuration", "summary"]


def _path(state: State) -> list[State]:
    """``state`` and its ancestors, outermost first."""
    path = [state]
    parent = state.parent
    while parent is not None:
        path.append(parent)
        parent = parent.parent
    path.reverse()
    return path


def summary(active: Sequence[State]) -> State:
    """The innermost state of ``active`` that contains every state of ``active``.

    ``active`` is a legal configuration (one top-level state, ancestors included).
    """
    if len(active) == 1:
        return active[0]
    common: list[State] | None = None
    for state in active:
        if any(child in active for child in state.states):
            continue
        path = _path(state)
        if common is None:
            common = path
            continue
        size = 0
        for mine, theirs in zip(common, path, strict=False):
            if mine is not theirs:
                break
            size += 1
        common = common[:size]
    assert common
    return common[-1]


def derive_configuration(state: State) -> list[State] | None:
    """The configuration ``state`` alone determines (``state`` is atomic and no ancestor
    is parallel: the path to it), else ``None``."""
    path = _path(state)
    if state.states or any(s.parallel for s in path):
        return None
    return path


def check_configuration(
    what: str, ids: Iterable[str], states: Mapping[str, State], name: str
) -> list[State]:
    """The class states of the configuration ``ids``, in document order, if it is legal.

    Legal: known ids, exactly one top-level state, every active state's parent active, one
    active child in each active compound state, every region of an active parallel state
    active.

    Raises:
        SnapshotError: naming what is wrong and the states of the class.
    """
    given = list(ids)
    unknown = [i for i in given if i not in states]
    if unknown:
        msg = (
            f"{what} has unknown state(s) {', '.join(map(repr, unknown))} in its "
            f"configuration. States of {name}: {', '.join(states)}."
        )
        raise SnapshotError(msg)
    active = {states[i] for i in given}
    problems: list[str] = []
    roots = sorted(s.id for s in active if s.parent is None)
    if len(roots) != 1:
        problems.append(f"{len(roots)} top-level states are active ({roots}), not one")
    for state in sorted(active, key=lambda s: s.id):
        if state.parent is not None and state.parent not in active:
            problems.append(f"{state.id!r} is active but its parent {state.parent.id!r} is not")
        if not state.states:
            continue
        children = [c.id for c in state.states if c in active]
        if state.parallel and len(children) != len(state.states):
            missing = [c.id for c in state.states if c not in active]
            problems.append(f"parallel {state.id!r} lacks active region(s) {missing}")
        elif not state.parallel and len(children) != 1:
            problems.append(f"compound {state.id!r} has {len(children)} active children")
    if problems:
        msg = (
            f"{what} has an impossible configuration {sorted(given)}: "
            f"{'; '.join(problems)}. Take snapshots with Lifecycle.snapshot()."
        )
        raise SnapshotError(msg)
    order = list(states)
    return sorted(active, key=lambda s: order.index(s.id))


def check_memory(
    what: str, memory: Mapping[str, Sequence[str]], states: Mapping[str, State], name: str
) -> dict[str, list[State]]:
    """What history states remember, as class states, if it names known states.

    Raises:
        SnapshotError: an unknown history state or remembered state.
    """
    histories = {h.id: parent for parent in states.values() for h in parent.history}
    result: dict[str, list[State]] = {}
    for history_id, remembered in memory.items():
        parent = histories.get(history_id)
        if parent is None:
            msg = (
                f"{what} remembers history state {history_id!r}, which {name} does not have "
                f"(history states: {', '.join(sorted(histories)) or 'none'})."
            )
            raise SnapshotError(msg)
        bad = [i for i in remembered if i not in states or parent not in _path(states[i])[:-1]]
        if bad:
            msg = (
                f"{what}: history state {history_id!r} remembers {bad}, which are not states "
                f"inside {parent.id!r}."
            )
            raise SnapshotError(msg)
        result[history_id] = [states[i] for i in remembered]
    return result


def dump_memory(values: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """python-statemachine's ``history_values`` as ids."""
    return {key: tuple(state.id for state in found) for key, found in sorted(values.items())}
