"""The compiled event path: which classes and instances take it, and what makes them leave it.

Behavioural equality with python-statemachine's engine is ``tests/test_differential.py``'s
job; here: the plan is psm's own resolution, every reason to fall back is introspectable,
and an instance moved to the engine on demand carries its state over.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from statemachine import Event
from statemachine.exceptions import InvalidDefinition

import lifecyclekit._fast as _fast
from lifecyclekit import Lifecycle, State, registry
from lifecyclekit.lifecycle import _RECORDER, _StateHolder
from tests.differential_machines import MACHINES
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
    "cls", [Ticket, Door, *MACHINES, *(registry.get(n) for n in SHIPPED)], ids=lambda c: c.__name__
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


def _flat(**attrs: Any) -> type[Lifecycle]:
    """A two-state lifecycle with ``attrs`` added to its body."""
    a = State(initial=True)
    b = State(final=True)
    body: dict[str, Any] = {"a": a, "b": b, "go": a.to(b), **attrs}
    return type("Probe", (Lifecycle,), body)


class _Listener:
    def on_go(self) -> None:
        pass


def _compound() -> type[Lifecycle]:
    class Nested(Lifecycle):
        class outer(State.Compound):  # noqa: N801 - psm's DSL names states like attributes
            inner = State(initial=True)
            last = State(final=True)
            step = inner.to(last)

        done = State(final=True)
        leave = outer.to(done)

    return Nested


def _eventless() -> type[Lifecycle]:
    class Eventless(Lifecycle):
        a = State(initial=True)
        b = State(final=True)
        a.to(b, cond="ready")
        go = a.to(b)
        ready = False

    return Eventless


def _event_named() -> type[Lifecycle]:
    class Chained(Lifecycle):
        a = State(initial=True)
        b = State()
        c = State(final=True)
        go = a.to(b, on="hop")
        hop = b.to(c)

    return Chained


def _property_guard() -> type[Lifecycle]:
    class Guarded(Lifecycle):
        a = State(initial=True)
        b = State(final=True)
        go = a.to(b, cond="ready")

        @property
        def ready(self) -> bool:
            return True

    return Guarded


def _async_callback() -> type[Lifecycle]:
    class Async(Lifecycle):
        a = State(initial=True)
        b = State(final=True)
        go = a.to(b)

        async def on_go(self) -> None:
            pass

    return Async


def _hook_override() -> type[Lifecycle]:
    class Spy(Door):
        def _put_nonblocking(self, trigger_data: Any, internal: bool = False) -> None:
            super()._put_nonblocking(trigger_data, internal=internal)

    return Spy


def _with_event(**options: Any) -> type[Lifecycle]:
    a = State(initial=True)
    b = State(final=True)
    return type("Probe", (Lifecycle,), {"a": a, "b": b, "go": Event(a.to(b), **options)})


def _with_guard(guard: str) -> type[Lifecycle]:
    a = State(initial=True)
    b = State(final=True)
    return type("Probe", (Lifecycle,), {"a": a, "b": b, "go": a.to(b, cond=guard)})


def _invoking() -> type[Lifecycle]:
    a = State(initial=True)
    b = State(invoke=lambda: None)
    c = State(final=True)
    return type("Probe", (Lifecycle,), {"a": a, "b": b, "c": c, "go": a.to(b), "end": b.to(c)})


def _parallel() -> type[Lifecycle]:
    class Both(Lifecycle):
        class outer(State.Parallel):  # noqa: N801
            class left(State.Compound):  # noqa: N801
                x = State(initial=True)
                y = State(final=True)
                gx = x.to(y)

            class right(State.Compound):  # noqa: N801
                z = State(initial=True)
                w = State(final=True)
                gz = z.to(w)

        done = State(final=True)
        leave = outer.to(done)

    return Both


# (builder, the reason's gist): each class python-statemachine's engine must run, and why.
CLASS_FALLBACKS = [
    pytest.param(_compound, "compound", id="compound-state"),
    pytest.param(_parallel, "parallel", id="parallel-state"),
    pytest.param(_eventless, "eventless", id="eventless-transition"),
    pytest.param(lambda: _with_event(delay=5), "delayed or internal", id="delayed-event"),
    pytest.param(lambda: _with_event(internal=True), "delayed or internal", id="internal-event"),
    pytest.param(lambda: _with_guard("In('a')"), "In(...)", id="in-guard"),
    pytest.param(_invoking, "invokes", id="invoke"),
    pytest.param(_event_named, "names an event", id="callback-names-an-event"),
    pytest.param(_property_guard, "property", id="property-guard"),
    pytest.param(_async_callback, "async", id="async-callback"),
    pytest.param(_hook_override, "_put_nonblocking", id="engine-hook-override"),
    pytest.param(lambda: _flat(listeners=[_Listener]), "class-level listeners", id="listeners"),
    pytest.param(lambda: _flat(fast_path=False), "fast_path = False", id="switched-off"),
    pytest.param(
        lambda: _flat(enable_self_transition_entries=True),
        "enable_self_transition_entries",
        id="engine-flag",
    ),
]


@pytest.mark.parametrize(("build", "reason"), CLASS_FALLBACKS)
def test_classes_outside_the_flat_subset_run_on_the_engine(build: Any, reason: str) -> None:
    """The class falls back, says why, and its instances run on psm's engine."""
    cls = build()
    assert cls.fast_path_reason is not None
    assert reason in cls.fast_path_reason
    machine = cls()
    assert not machine.on_fast_path
    assert machine._engine.running


def test_unresolvable_callbacks_fall_back_and_fail_as_psm_does() -> None:
    """A guard naming nothing: psm refuses each instance; so does the class here."""
    cls = _with_guard("nope")
    assert "do not resolve" in (cls.fast_path_reason or "")
    with pytest.raises(InvalidDefinition, match="nope"):
        cls()


def test_the_environment_switch_runs_every_class_on_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LIFECYCLEKIT_ENGINE=psm (the second run of `make test`) turns the compiled path off."""
    monkeypatch.setenv(_fast.ENGINE_ENV, "psm")
    _fast.invalidate()
    assert Door.fast_path_reason == "LIFECYCLEKIT_ENGINE=psm"
    assert not Door().on_fast_path
    monkeypatch.delenv(_fast.ENGINE_ENV)
    _fast.invalidate()
    assert Door.fast_path_reason is None
    assert Door().on_fast_path


class _Audit:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def after_transition(self, event: str, source: Any, target: Any) -> None:
        self.seen.append(f"{event}:{source.id}->{target.id}")


class _Model:
    state: Any = None


def test_instances_with_listeners_or_a_model_run_on_the_engine() -> None:
    """Listeners and a model of one's own are psm's per-instance machinery: the engine."""
    audit = _Audit()
    door = Door(listeners=[audit])
    assert not door.on_fast_path
    door.push()
    assert audit.seen == ["push:closed->locked"]
    assert door.history[-1].event == "push"
    model = _Model()
    other = Door(model=model)
    assert not other.on_fast_path
    other.push()
    assert model.state == "locked"
    assert Door().on_fast_path


def test_asking_for_psm_machinery_moves_the_instance_to_the_engine() -> None:
    """add_listener, delayed sends, send_id and psm's private parts switch for good,
    keeping state, history, revision and the stopped flag."""
    audit = _Audit()
    ticket = Ticket(ticket_id="t")
    ticket.start()
    ticket.add_listener(audit)
    assert not ticket.on_fast_path
    ticket.retry()
    assert audit.seen == ["retry:running->queued"]
    assert [r.event for r in ticket.history] == ["start", "retry"]
    assert ticket.revision == 2

    stopped = Ticket(ticket_id="t")
    stopped.cancel()
    assert stopped.is_terminated
    assert stopped._engine.running is False
    assert not stopped.on_fast_path

    delayed = Door()
    delayed.send("push", delay=0.001)
    assert not delayed.on_fast_path
    assert delayed.state == "locked"

    with_id = Door()
    with_id.send("push", send_id="x")
    assert (with_id.on_fast_path, with_id.state) == (False, "locked")


def test_a_listener_added_inside_a_callback_hears_from_the_next_event() -> None:
    """The documented difference: psm would call it from the next phase of the same step."""
    audit = _Audit()

    class Recruiting(Ticket):
        def on_start(self) -> None:
            self.add_listener(audit)

    ticket = Recruiting(ticket_id="t")
    ticket.start()
    assert not ticket.on_fast_path
    assert audit.seen == []
    ticket.retry()
    assert audit.seen == ["retry:running->queued"]
    assert [r.event for r in ticket.history] == ["start", "retry"]


def test_a_method_added_to_a_plain_mixin_later_reaches_new_instances() -> None:
    """As with psm (which resolves per instance), a convention added to a mixin after the
    first instance runs for later instances, not for the earlier one."""
    seen: list[str] = []

    class Mixin:
        pass

    class Mixed(Mixin, Ticket):
        pass

    first = Mixed(ticket_id="t")
    Mixin.on_enter_cancelled = lambda self: seen.append("later")  # type: ignore[attr-defined]
    second = Mixed(ticket_id="t")
    first.cancel()
    second.cancel()
    assert seen == ["later"]
    assert first.on_fast_path
    assert second.on_fast_path
