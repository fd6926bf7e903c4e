"""Lifecycles that exercise python-statemachine's semantics for the differential tests.

Every callback reports itself (and every argument it declares) through
``tests.differential.record``, then does what the instance's context says: raise, send a
nested event, or return a value. Guards read the context too, so a step can flip them.
See ``/work/shared/design/psm-semantics.md`` for the list each machine covers.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lifecyclekit import Because, Lifecycle, State
from tests.differential import record


class Knobs(BaseModel):
    """What the callbacks of a differential machine do."""

    ok: bool = True
    maybe: bool = False
    boom: list[str] = Field(default_factory=list)
    """Names of callbacks (and guards) that raise ``RuntimeError``."""
    nested: dict[str, list[str]] = Field(default_factory=dict)
    """Callback name -> events it sends (``!name`` with ``raise_``, ``~name`` delayed 1 ms,
    which moves a compiled instance to psm's engine in the middle of its step)."""
    returns: dict[str, Any] = Field(default_factory=dict)
    """Callback name -> the value it returns."""
    count: int = 0


class Amount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(ge=0, le=1000)
    note: str = ""


def act(machine: Any, name: str) -> Any:
    """Do what the context asks of callback ``name``."""
    knobs: Knobs = machine.context
    knobs.count += 1
    if name in knobs.boom:
        msg = f"boom in {name}"
        raise RuntimeError(msg)
    for event in knobs.nested.get(name, []) if knobs.count < 200 else ():
        # The budget keeps a callback that re-sends its own event from looping forever.
        if event.startswith("!"):
            machine.raise_(event[1:])
        elif event.startswith("~"):
            machine.send(event[1:], delay=1)
        else:
            machine.send(event)
    return knobs.returns.get(name)


class Kitchen(Lifecycle):
    """Conventions, decorators, inline callbacks, guard expressions, several candidates,
    self, internal and targetless transitions, final states, validators and payloads."""

    Context = Knobs
    payloads = {"pay": Amount}

    idle = State(initial=True, enter="enter_inline", exit="exit_inline")
    busy = State()
    paid = State()
    done = State(final=True)
    failed = State(final=True)

    start = idle.to(
        busy,
        cond="is_ok",
        before="before_inline",
        on="on_inline",
        after="after_inline",
        validators="check",
    )
    pay = (
        busy.to(paid, cond="is_ok and not is_maybe")
        | busy.to(busy, unless="is_ok")
        | busy.to(failed, cond=["is_maybe", "is_ok"])
    )
    poke = busy.to.itself()
    nudge = busy.to.itself(internal=True)
    touch = busy.to(None)
    back = busy.to(idle, cond="backable") | paid.to(busy)
    again = back
    finish = paid.to(done, cond="level > 1") | paid.to(done, cond="!is_maybe and always")
    cancel = (
        idle.to(failed)
        | busy.to(failed)
        | paid.to(failed, cond=["is_maybe", "is_ok"])
        | paid.to(failed, unless="is_maybe")
    )
    lam = idle.to(busy, on=lambda event, machine: record("lambda", machine, event=event))

    level = 0
    backable = True
    noop_when_finished = frozenset({"touch"})

    @staticmethod
    def always(event: Any) -> bool:
        record("always", None, event=event)  # type: ignore[arg-type]
        return True

    # -- guards and validators -------------------------------------------------------------

    def is_ok(self) -> Because:
        record("is_ok", self)
        act(self, "is_ok")
        return Because(self.context.ok, f"ok is {self.context.ok}")

    def is_maybe(self, event: Any = None) -> bool:
        record("is_maybe", self, event=event)
        act(self, "is_maybe")
        return self.context.maybe

    def check(self, *args: Any, **kwargs: Any) -> None:
        record("check", self, args=args, kwargs=kwargs)
        act(self, "check")

    # -- inline names ----------------------------------------------------------------------

    def enter_inline(self, state: Any, source: Any, target: Any) -> Any:
        record("enter_inline", self, state=state, source=source, target=target)
        return act(self, "enter_inline")

    def exit_inline(self, state: Any, source: Any, target: Any, transition: Any) -> Any:
        record("exit_inline", self, state=state, source=source, target=target, t=transition)
        return act(self, "exit_inline")

    def before_inline(self, event_data: Any) -> Any:
        record("before_inline", self, event_data=event_data)
        return act(self, "before_inline")

    def on_inline(self, previous_configuration: Any, new_configuration: Any) -> Any:
        record("on_inline", self, prev=previous_configuration, new=new_configuration)
        return act(self, "on_inline")

    def after_inline(self, model: Any, machine: Any) -> Any:
        record("after_inline", self, model=model, machine=machine)
        return act(self, "after_inline")

    # -- decorators ------------------------------------------------------------------------

    @start.on
    def started(self, event: Any, source: Any, target: Any) -> Any:
        record("started", self, event=event, source=source, target=target)
        return act(self, "started")

    @busy.enter
    def busy_entered(self, state: Any, source: Any, event_data: Any) -> Any:
        record("busy_entered", self, state=state, source=source, event_data=event_data)
        return act(self, "busy_entered")

    @busy.exit
    def busy_left(self, state: Any, target: Any, event_data: Any) -> Any:
        record("busy_left", self, state=state, target=target, event_data=event_data)
        return act(self, "busy_left")

    @pay.before
    def paying(self, payload: Any, amount: int) -> Any:
        record("paying", self, payload=payload, amount=amount)
        return act(self, "paying")

    # -- naming conventions ----------------------------------------------------------------

    def before_transition(self, *args: Any, **kwargs: Any) -> Any:
        record("before_transition", self, args=args, kwargs=kwargs)
        return act(self, "before_transition")

    def on_transition(self, event_data: Any, previous_configuration: Any) -> Any:
        record("on_transition", self, event_data=event_data, prev=previous_configuration)
        return act(self, "on_transition")

    def after_transition(self, event: Any, source: Any, target: Any, state: Any) -> Any:
        record("after_transition", self, event=event, source=source, target=target, state=state)
        return act(self, "after_transition")

    def on_enter_state(self, **kwargs: Any) -> Any:
        record("on_enter_state", self, kwargs=kwargs)
        return act(self, "on_enter_state")

    def on_exit_state(self, event: Any, state: Any, source: Any, target: Any) -> Any:
        record("on_exit_state", self, event=event, state=state, source=source, target=target)
        return act(self, "on_exit_state")

    def before_start(self, transition: Any, model: Any) -> Any:
        record("before_start", self, transition=transition, model=model)
        return act(self, "before_start")

    def on_start(self) -> Any:
        record("on_start", self)
        return act(self, "on_start")

    def after_start(self, new_configuration: Any = "absent") -> Any:
        record("after_start", self, new=new_configuration)
        return act(self, "after_start")

    def on_pay(self, payload: Amount, note: str, **kwargs: Any) -> Any:
        record("on_pay", self, payload=payload, note=note, kwargs=kwargs)
        return act(self, "on_pay")

    def after_pay(self, amount: int, target: Any) -> Any:
        record("after_pay", self, amount=amount, target=target)
        return act(self, "after_pay")

    def on_poke(self, missing: Any) -> Any:
        # Declares a parameter nothing provides: psm calls it without, a TypeError.
        record("on_poke", self, missing=missing)
        return act(self, "on_poke")

    def on_nudge(self, missing: Any = "default", state: Any = None) -> Any:
        record("on_nudge", self, missing=missing, state=state)
        return act(self, "on_nudge")

    def after_nudge(self, **kwargs: Any) -> Any:
        record("after_nudge", self, kwargs=kwargs)
        return act(self, "after_nudge")

    def on_touch(self, target: Any, new_configuration: Any) -> Any:
        record("on_touch", self, target=target, new=new_configuration)
        return act(self, "on_touch")

    def after_touch(self, **kwargs: Any) -> Any:
        record("after_touch", self, kwargs=kwargs)
        return act(self, "after_touch")

    def on_back(self, event: Any) -> Any:
        record("on_back", self, event=event)
        return act(self, "on_back")

    def on_again(self, event: Any = None, /) -> Any:
        # Positional-only and injected by name: psm's binder raises a TypeError.
        record("on_again", self, event=event)
        return act(self, "on_again")

    def on_enter_busy(self, event: Any, previous_configuration: Any = "absent") -> Any:
        record("on_enter_busy", self, event=event, prev=previous_configuration)
        return act(self, "on_enter_busy")

    def on_exit_busy(self, source: Any) -> Any:
        record("on_exit_busy", self, source=source)
        return act(self, "on_exit_busy")

    def on_enter_done(self, source: Any, target: Any) -> Any:
        record("on_enter_done", self, source=source, target=target)
        return act(self, "on_enter_done")

    def on_enter_idle(self, event: Any, transition: Any, source: Any) -> Any:
        record("on_enter_idle", self, event=event, transition=transition, source=source)
        return act(self, "on_enter_idle")

    def on_cancel(self, source: Any) -> Any:
        record("on_cancel", self, source=source)
        return act(self, "on_cancel")


class Prepared(Kitchen):
    """``prepare_event`` adds arguments to every phase (psm builds whole dicts then)."""

    def prepare_event(self, event: Any, state: Any, source: Any) -> dict[str, Any]:
        record("prepare_event", self, event=event, state=state, source=source)
        act(self, "prepare_event")
        return {"prepared": f"{event}@{state.id}", "note": "prepared"}

    def on_start(self, prepared: Any = None) -> Any:
        record("on_start", self, prepared=prepared)
        return act(self, "on_start")

    def on_enter_busy(self, prepared: Any = None, **kwargs: Any) -> Any:
        record("on_enter_busy", self, prepared=prepared, kwargs=kwargs)
        return act(self, "on_enter_busy")


class Overridden(Kitchen):
    """A subclass hierarchy: an overridden guard, a new convention, an extra event."""

    def is_ok(self) -> Because:
        record("is_ok (overridden)", self)
        act(self, "is_ok")
        return Because(self.context.ok and not self.context.maybe, "ok and not maybe")

    def on_enter_paid(self, payload: Any = None) -> Any:
        record("on_enter_paid", self, payload=payload)
        return act(self, "on_enter_paid")


class Sub(Overridden):
    """Two levels down: a convention from a plain mixin, redefined after the fact."""

    def on_exit_paid(self, state: Any) -> Any:
        record("on_exit_paid", self, state=state)
        return act(self, "on_exit_paid")


class Recorded(Kitchen):
    """Overrides the history hook the history listener calls."""

    def _record_transition(self, event: Any, source: Any, target: Any, payload: Any) -> None:
        record("_record_transition", self, event=event, source=source, target=target, p=payload)
        super()._record_transition(event, source, target, payload)


MACHINES: list[type[Lifecycle]] = [Kitchen, Prepared, Overridden, Sub, Recorded]
EVENTS = ["start", "pay", "poke", "nudge", "touch", "back", "again", "finish", "cancel", "lam"]
CALLBACK_NAMES = sorted(
    {
        name
        for klass in MACHINES
        for name, value in vars(klass).items()
        if isinstance(value, FunctionType) and not name.startswith("_")
    }
)
