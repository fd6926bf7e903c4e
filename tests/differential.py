"""Differential testing: one lifecycle class, two instances, two engines, compared step by step.

A :class:`Twin` holds an instance on the compiled path and one built inside
``_fast.engine_forced()`` (python-statemachine's engine). Each step runs on both; afterwards
the callback trace (every callback with every argument it received), the return value or
the exception (type, message, explanation), the state, history, context, revision,
configuration, allowed events and the snapshot must be equal, and so must a restore of the
snapshot on each engine.

Callbacks of the machines under test report themselves with :func:`record`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from statemachine import Event, State
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import Lifecycle, PayloadError, TransitionRejected
from lifecyclekit._fast import engine_forced
from tests.sample_machines import FixedClock

TRACE: list[tuple[str, Any]] = []
"""Callbacks append ``(name, described arguments)`` here (one step's trace at a time)."""


def record(name: str, machine: Lifecycle, /, **arguments: Any) -> None:
    """Note that callback ``name`` ran with ``arguments`` (described, not kept)."""
    TRACE.append((name, {key: describe(value, machine) for key, value in arguments.items()}))


def describe(value: Any, machine: Any = None) -> Any:  # noqa: C901, PLR0911
    """A comparable description of what a callback received or returned."""
    if machine is not None and value is machine:
        return "<the machine>"
    if isinstance(value, Lifecycle):
        return ("<another machine>", type(value).__name__)
    if isinstance(value, State):
        # InstanceState vs State matters: psm passes each in given phases.
        return (type(value).__name__, value.id, str(value.name), value.value)
    if isinstance(value, Event):
        return (type(value).__name__, repr(value), str(value.name))
    if type(value).__name__ == "Transition":
        return ("Transition", repr(value), repr(value.events))
    if type(value).__name__ == "EventData":
        trigger = value.trigger_data
        return (
            "EventData",
            describe(trigger.event, machine),
            describe(trigger.args, machine),
            describe(trigger.kwargs, machine),
            describe(trigger.machine, machine),
            describe(value.transition, machine),
            describe(value.state, machine),
            describe(value.source, machine),
            describe(value.target, machine),
        )
    if type(value).__name__ == "OrderedSet":
        return ("OrderedSet", [describe(v, machine) for v in value])
    if type(value).__name__ == "_StateHolder":
        return ("model", value.state)
    if isinstance(value, BaseModel):
        return (type(value).__name__, value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {key: describe(v, machine) for key, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [describe(v, machine) for v in value]
    return repr(value)


def describe_error(error: BaseException, machine: Any) -> tuple[Any, ...]:
    """Type, message and the data a refusal or payload error carries."""
    extra: Any = None
    if isinstance(error, TransitionRejected):
        extra = (
            error.explanation.model_dump(),
            describe(error.event, machine),
            sorted(s.id for s in error.configuration),
        )
    elif isinstance(error, TransitionNotAllowed):
        extra = (describe(error.event, machine), sorted(s.id for s in error.configuration))
    elif isinstance(error, PayloadError):
        extra = repr(error.__dict__)
    return (type(error).__name__, str(error), extra)


def observe(machine: Lifecycle) -> dict[str, Any]:
    """Everything observable about an instance between steps."""
    context = machine.context
    return {
        "state": machine.current_state_value,
        "history": [r.model_dump() for r in machine.history],
        "revision": machine.revision,
        "context": context.model_dump(mode="json") if context is not None else None,
        "terminated": machine.is_terminated,
        "finished": machine.is_finished,
        "configuration": [(type(s).__name__, s.id) for s in machine.configuration],
        "values": list(machine.configuration_values),
        "allowed": [repr(e) for e in machine.allowed_events],
        "active": {s.id: getattr(machine, s.id).is_active for s in type(machine).states},
        "snapshot": machine.snapshot().model_dump(mode="json"),
        "start values": list(machine.start_configuration_values),
        "repr": repr(machine),
    }


Outcome = tuple[Any, list[tuple[str, Any]], dict[str, Any]]


def run_step(machine: Lifecycle, step: Callable[[Lifecycle], Any]) -> Outcome:
    """Run one step and return its result (or error), its trace and the observation."""
    TRACE.clear()
    try:
        result: Any = ("returned", describe(step(machine), machine))
    except Exception as error:  # every error is part of the behaviour compared
        result = ("raised", *describe_error(error, machine))
    trace = list(TRACE)
    TRACE.clear()
    return result, trace, observe(machine)


@dataclass
class Twin:
    """The same lifecycle on the compiled path (``fast``) and on psm's engine (``engine``)."""

    cls: type[Lifecycle]
    kwargs: dict[str, Any] = field(default_factory=dict)
    fast: Any = None
    engine: Any = None
    log: list[str] = field(default_factory=list)

    def create(self) -> None:
        """Build both instances (initial activation compared like any step)."""
        outcomes = []
        for forced in (False, True):
            TRACE.clear()
            try:
                if forced:
                    with engine_forced():
                        machine = self.cls(clock=FixedClock(), **self.kwargs)
                else:
                    machine = self.cls(clock=FixedClock(), **self.kwargs)
            except Exception as error:
                outcomes.append((("raised", *describe_error(error, None)), list(TRACE), None))
                machine = None
            else:
                outcomes.append((("created",), list(TRACE), observe(machine)))
            if forced:
                self.engine = machine
            else:
                self.fast = machine
        self.log.append(f"create {self.cls.__name__}({self.kwargs})")
        self._compare(outcomes[0], outcomes[1], "create")
        if self.fast is not None:
            assert not self.fast.on_fast_path or self.cls.fast_path_reason is None
            assert not self.engine.on_fast_path

    def step(self, label: str, step: Callable[[Lifecycle], Any]) -> None:
        """Run ``step`` on both instances and compare everything."""
        self.log.append(label)
        if self.fast is None:
            return
        fast = run_step(self.fast, step)
        engine = run_step(self.engine, step)
        self._compare(fast, engine, label)

    def restore(self) -> None:
        """Replace both instances by a restore of their snapshot (each on its engine); a
        snapshot the engine could not restore must fail alike on both."""
        self.log.append("restore")
        if self.fast is None:
            return
        outcomes = []
        restored = []
        for forced in (False, True):
            snapshot = (self.engine if forced else self.fast).snapshot()
            TRACE.clear()
            try:
                if forced:
                    with engine_forced():
                        machine = self.cls.restore(snapshot, clock=FixedClock())
                else:
                    machine = self.cls.restore(snapshot, clock=FixedClock())
            except Exception as error:
                outcomes.append((("raised", *describe_error(error, None)), list(TRACE), None))
                continue
            assert machine.snapshot() == snapshot
            outcomes.append((("restored",), list(TRACE), observe(machine)))
            restored.append(machine)
        self._compare(outcomes[0], outcomes[1], "restore")
        if restored:
            self.fast, self.engine = restored
            assert not self.fast.on_fast_path or self.cls.fast_path_reason is None

    def _compare(self, fast: Outcome, engine: Outcome, label: str) -> None:
        where = " -> ".join(self.log)
        assert fast[0] == engine[0], f"result differs at {label}\n{where}"
        assert fast[1] == engine[1], f"callback trace differs at {label}\n{where}"
        assert fast[2] == engine[2], f"state differs at {label}\n{where}"


def send(event: str, *args: Any, **data: Any) -> Callable[[Lifecycle], Any]:
    """A step: ``machine.send(event, *args, **data)``."""
    return lambda machine: machine.send(event, *args, **data)


def call(event: str, *args: Any, **data: Any) -> Callable[[Lifecycle], Any]:
    """A step: ``getattr(machine, event)(*args, **data)`` (the event method)."""
    return lambda machine: getattr(machine, event)(*args, **data)


def explain(event: str, **data: Any) -> Callable[[Lifecycle], Any]:
    """A step: ``machine.explain(event, **data)`` (compared as data)."""
    return lambda machine: machine.explain(event, **data).model_dump()


def enabled(**data: Any) -> Callable[[Lifecycle], Any]:
    """A step: ``machine.enabled_events(**data)``."""
    return lambda machine: [repr(e) for e in machine.enabled_events(**data)]
