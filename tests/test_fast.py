"""The compiled event path: which classes and instances take it, and what makes them leave it.

Behavioural equality with python-statemachine's engine is ``tests/test_differential.py``'s
job; here: the plan is psm's own resolution, every reason to fall back is introspectable,
and an instance moved to the engine on demand carries its state over.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import lifecyclekit._fast as _fast
from lifecyclekit import Lifecycle, registry
from lifecyclekit.lifecycle import _RECORDER, _StateHolder
from tests.sample_machines import Door, Ticket

pytestmark = pytest.mark.compiled_path

SHIPPED = [
    "dataflow-job",
    "dataflow-job-observed",
    "one-time-work",
    "periodic-work",
    "chained-work",
]


def _plan(cls: type[Lifecycle]) -> _fast.Plan | None:
    return _fast.plan_for(cls, _StateHolder(), _RECORDER)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_lifecycles_are_compiled(name: str) -> None:
    """Every built-in lifecycle is flat: the compiled path reproduces it."""
    assert _fast.reason_for(registry.get(name), _StateHolder(), _RECORDER) is None


def _instance(cls: type[Lifecycle]) -> Lifecycle:
    with _fast.engine_forced():
        return cls(**({"ticket_id": "t"} if cls is Ticket else {}))


@pytest.mark.parametrize(
    "cls", [Ticket, Door, *(registry.get(n) for n in SHIPPED)], ids=lambda c: c.__name__
)
def test_the_plan_is_psms_resolution(cls: type[Lifecycle]) -> None:
    """Per callback list, the plan holds what a psm instance resolves, in psm's order."""
    machine = _instance(cls)
    plan = _plan(cls)
    assert plan is not None
    definition = plan.definition
    for state in cls.states:
        for group in ("enter", "exit"):
            key = getattr(state, group).key
            resolved = [str(w.meta.attr_name) for w in machine._callbacks[key]]
            assert [cb.name for cb in definition.callbacks[(group, id(state))]] == resolved
        for transition in state.transitions:
            for group in ("validators", "cond", "before", "on", "after"):
                key = getattr(transition, group).key
                resolved = [str(w.meta.attr_name) for w in machine._callbacks[key]]
                planned = [cb.name for cb in definition.callbacks[(group, id(transition))]]
                assert planned == resolved, (state.id, group)


@pytest.mark.parametrize("cls", [Ticket, Door], ids=lambda c: c.__name__)
def test_candidates_are_psms_selection_order(cls: type[Lifecycle]) -> None:
    """For each state and event, the candidates are the state's matching transitions, in
    declaration order (psm's ``_first_transition_that_matches``)."""
    plan = _plan(cls)
    assert plan is not None
    for state in cls.states:
        for event in cls._event_ids:
            expected = [t for t in state.transitions if not t.initial and t.match(event)]
            found = [c.transition for c in plan.candidates(state.value, event)]
            assert found == expected, (state.id, event)
    assert plan.candidates("QUEUED" if cls is Ticket else "closed", "no-such-event") == ()


def test_a_class_attribute_change_makes_the_plan_stale() -> None:
    """Setting a lifecycle class attribute invalidates compiled plans; replacing a method
    of a plain mixin is seen by the plan's freshness check."""

    class Mixin:
        def has_capacity(self) -> bool:
            return True

    class Mixed(Mixin, Ticket):
        pass

    plan = _plan(Mixed)
    assert plan is not None
    assert plan.fresh()
    Mixin.has_capacity = lambda self: False  # type: ignore[method-assign]
    assert not plan.fresh()
    assert _plan(Mixed) is not plan
    again = _plan(Mixed)
    Mixed.fast_path = False
    assert _plan(Mixed) is None
    assert again is not None


def test_instances_take_the_compiled_path() -> None:
    """A flat lifecycle's instances run on the plan, psm's per-instance machinery unbuilt."""
    ticket = Ticket(ticket_id="t")
    assert ticket.on_fast_path
    assert Ticket.fast_path_reason is None
    assert "_engine" not in vars(ticket)
    ticket.start()
    ticket.finish(outcome="success")
    assert (ticket.state, ticket.is_terminated, ticket.revision) == ("done", True, 2)
    assert [r.event for r in ticket.history] == ["start", "finish"]
    assert "_engine" not in vars(ticket)


def test_state_attributes_are_per_instance_views() -> None:
    """``m.<state>`` is psm's InstanceState on either path; the class keeps the State."""
    ticket = Ticket(ticket_id="t")
    assert ticket.queued.is_active
    assert not ticket.running.is_active
    assert ticket.queued is ticket.queued
    assert Ticket.queued is Ticket.states_map["QUEUED"]
    ticket.start()
    assert ticket.running.is_active
    assert [s.id for s in ticket.configuration] == ["running"]
    assert list(ticket.configuration_values) == ["RUNNING"]


def test_pickling_an_instance_keeps_it_whole() -> None:
    """An instance pickles (through psm's own state) and comes back in its state."""
    ticket = Ticket(ticket_id="t")
    ticket.start()
    copy = pickle.loads(pickle.dumps(ticket))
    assert (copy.state, copy.revision, copy.history) == ("running", 1, ticket.history)
    copy.finish(outcome="success")
    assert copy.state == "done"


def test_an_instance_attribute_shadowing_a_callback_runs_on_the_engine() -> None:
    """psm resolves callbacks per instance: one set before construction takes part."""
    seen: list[str] = []

    class Early(Ticket):
        def __init__(self, **kwargs: Any) -> None:
            self.on_enter_running = lambda: seen.append("instance")
            super().__init__(**kwargs)

    early = Early(ticket_id="t")
    assert not early.on_fast_path
    early.start()
    assert seen == ["instance"]
    assert early.context.attempts == 0  # the class's on_enter_running was shadowed
    assert Early.fast_path_reason is None


def test_a_class_attribute_change_recompiles_for_later_instances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Setting an attribute on a lifecycle class makes the next instance check its plan."""
    first = Door()
    monkeypatch.setattr(Door, "fast_path", False)
    assert Door.fast_path_reason == "it sets fast_path = False"
    assert first.on_fast_path
    assert not Door().on_fast_path
