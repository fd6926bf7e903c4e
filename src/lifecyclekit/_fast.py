"""The compiled event path: python-statemachine's behaviour for a flat class, computed once.

For a flat ``StateMachine`` (no compound, parallel or history states, no eventless, delayed
or internal events, no async callbacks, no class listeners...) what python-statemachine
does on an event is a function of the class: which transitions are candidates, which
callbacks run in which order with which arguments. :func:`plan_for` computes it once per
class from psm's own resolution (:func:`lifecyclekit._psm.resolve_flat`, so order,
priority, naming conventions and listener precedence are psm's by construction), and
:func:`send` runs an event from that plan: selection with validators and short-circuit
guards, the ``before -> exit -> on -> (state set) -> enter -> after`` microstep with psm's
rollback rules, psm's run-to-completion queues, and the history record.

A callback receives only the arguments it declares; where psm would build a full argument
dict (``**kwargs`` callbacks, guard expressions, ``prepare_event``, an event matched by a
wildcard, positional data) the plan builds the same dict and binds with psm's binder.

What the plan cannot reproduce falls back, per class (:func:`reason_for` says why) or per
instance (listeners, a custom model), to python-statemachine's engine, exactly as before.

One known difference, documented where users meet it: a listener added from inside a
callback takes effect from the next event (psm: from the next phase of the current step).
"""

from __future__ import annotations

import inspect
import os
from collections import deque
from collections.abc import Callable, Iterable
from inspect import Parameter
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import lifecyclekit._psm as _psm

if TYPE_CHECKING:
    from statemachine import State
    from statemachine.transition import Transition

__all__ = [
    "ENGINE_ENV",
    "Plan",
    "Trigger",
    "engine_forced",
    "invalidate",
    "plan_for",
    "reason_for",
    "send",
]

ENGINE_ENV = "LIFECYCLEKIT_ENGINE"
"""Set to ``psm`` to run every lifecycle on python-statemachine's engine (the test suite runs
once each way)."""

Caller = Callable[[Any, "Trigger", Any], Any]
"""A compiled callback: ``(machine, trigger, kwargs dict or None) -> return value``."""

_GENERATION = [0]
_FORCED_ENGINE = [False]
_SENTINEL = object()
_EXTERNAL, _INTERNAL, _TARGETLESS = 0, 1, 2
_IST = object()
"""Stands for "the InstanceState of the current state" in a phase's constants."""
_INJECTED = frozenset(
    {"event_data", "machine", "event", "model", "transition", "state", "source", "target"}
)
_CONFIGURATIONS = frozenset({"previous_configuration", "new_configuration"})


class engine_forced:  # noqa: N801 - used as a context manager, named like one
    """Inside the block, new instances of every class run on python-statemachine's engine
    (how the differential tests build an engine twin of a compiled instance)."""

    def __enter__(self) -> None:
        self.saved = _FORCED_ENGINE[0]
        _FORCED_ENGINE[0] = True

    def __exit__(self, *exc: object) -> None:
        _FORCED_ENGINE[0] = self.saved


def invalidate() -> None:
    """Forget every compiled plan's freshness (a lifecycle class attribute changed); each
    class checks its plan again when it next creates an instance."""
    _GENERATION[0] += 1


class Trigger:
    """One event sent on the compiled path, with psm's objects built only when asked for."""

    __slots__ = ("args", "eid", "ev", "internal", "kw", "name", "td")

    def __init__(
        self,
        ev: Any,
        eid: str,
        name: str | None,
        args: tuple[Any, ...],
        kw: dict[str, Any],
        internal: bool = False,
    ) -> None:
        self.ev = ev
        self.eid = eid
        self.name = name
        self.args = args
        self.kw = kw
        self.internal = internal
        self.td: Any = None

    def event(self, machine: Any) -> Any:
        """The ``BoundEvent`` callbacks receive as ``event``."""
        ev = self.ev
        if ev is None:
            ev = self.ev = _psm.bound_event(machine, self.eid, self.name, 0, self.internal)
        return ev

    def trigger_data(self, machine: Any) -> Any:
        """psm's ``TriggerData`` for this event (one per event, as psm builds it)."""
        if self.td is None:
            self.td = _psm.trigger_data(machine, self.event(machine), self.args, self.kw)
        return self.td

    def event_data(
        self, machine: Any, transition: Any, state: Any, source: Any, target: Any
    ) -> Any:
        """The ``event_data`` argument of one phase."""
        return _psm.event_data(self.trigger_data(machine), transition, state, source, target)


_NO_DATA = Trigger(None, "", None, (), {})
"""Explanations call guards without positional data."""


class _Ctx:
    """What a phase's callbacks may receive: constants of the transition, the data's names."""

    __slots__ = ("configs", "event", "kw", "source", "state", "target", "transition")

    def __init__(
        self,
        transition: Any,
        state: Any,
        source: Any,
        target: Any,
        kw: frozenset[str] | None,
        event: str | None,
        configs: str | None = None,
    ) -> None:
        self.transition = transition
        self.state = state
        self.source = source
        self.target = target
        self.kw = kw
        self.event = event
        self.configs = configs


class Candidate:
    """One transition an event may take from one state, compiled for that event."""

    __slots__ = (
        "after",
        "before",
        "enter",
        "exit",
        "final",
        "guards",
        "kind",
        "need",
        "on",
        "target_value",
        "transition",
        "validators",
    )

    transition: Transition
    kind: int
    target_value: Any
    final: bool
    validators: tuple[Caller, ...]
    guards: tuple[tuple[Caller, bool], ...]
    before: tuple[Caller, ...]
    exit: tuple[Caller, ...]
    on: tuple[Caller, ...]
    enter: tuple[Caller, ...]
    after: tuple[Caller, ...]
    need: tuple[bool, bool, bool]
    """Whether the cond/before/on dict, the exit dict and the enter/after dict are built."""


class Plan:
    """Everything python-statemachine would do for the instances of one flat class."""

    def __init__(self, cls: type, definition: _psm.FlatDefinition, recorder: object) -> None:
        self.cls = cls
        self.definition = definition
        self.recorder = recorder
        self.proto: Any = object.__new__(cls)
        self.records_directly = bool(getattr(recorder, "records_directly", bool)(cls))
        self.lookup_names = definition.lookup_names
        names = tuple(name for name, _ in definition.class_values)
        self._class_check = attrgetter(*names) if names else None
        values = tuple(value for _, value in definition.class_values)
        self._class_expected: Any = values[0] if len(values) == 1 else values
        # Plain mixins (no lifecycle metaclass to report changes): a name added to one later
        # changes what psm resolves for new instances; their namespaces' sizes show it.
        self._mixins = tuple(
            klass.__dict__
            for klass in cls.__mro__
            if type(klass) is type
            and klass is not object
            and not klass.__module__.startswith(("statemachine", "typing", "builtins"))
        )
        self._mixin_sizes = tuple(len(namespace) for namespace in self._mixins)
        self.states_map: dict[Any, State] = cls.states_map  # type: ignore[attr-defined]
        self.event_ids: frozenset[str] = frozenset(str(e) for e in cls._events)  # type: ignore[attr-defined]
        self.event_names = {str(e): e.name for e in cls._events}  # type: ignore[attr-defined]
        self.prepare = tuple(
            self._generic(cb) for cb in definition.callbacks.get(("prepare", id(cls)), ())
        )
        self.generic = bool(self.prepare)
        payload_models = cls._payload_models  # type: ignore[attr-defined]
        self.data_names = {
            eid: frozenset({"payload", *payload_models[eid].model_fields})
            if eid in payload_models
            else frozenset()
            for eid in self.event_ids
        }
        self.table: dict[tuple[Any, str], tuple[Candidate, ...]] = {}
        self.dynamic: dict[tuple[Any, str], tuple[Candidate, ...]] = {}
        for state in cls.states:  # type: ignore[attr-defined]
            for eid in self.event_ids:
                found = [t for t in _psm.iter_transitions(state) if t.match(eid)]
                if found:
                    kw = None if self.generic else self.data_names[eid]
                    self.table[(state.value, eid)] = tuple(
                        self._candidate(t, eid, kw) for t in found
                    )
        self._entries: dict[Any, tuple[Any, Any, tuple[Caller, ...], bool]] = {}
        self._guards: dict[int, list[tuple[str, bool, Caller]]] = {}

    # -- freshness -------------------------------------------------------------------------

    def fresh(self) -> bool:
        """The class still resolves each callback name to what the plan was built from, and
        no plain mixin gained or lost a name."""
        check = self._class_check
        if check is not None and check(self.cls) != self._class_expected:
            return False
        mixins = self._mixins
        return not mixins or tuple(map(len, mixins)) == self._mixin_sizes

    def accepts(self, attributes: Iterable[str]) -> bool:
        """No instance attribute set before construction shadows a name psm looks up."""
        return self.lookup_names.isdisjoint(attributes)

    # -- compiling -------------------------------------------------------------------------

    def callbacks(self, group: str, owner: object) -> tuple[_psm.Callback, ...]:
        return self.definition.callbacks.get((group, id(owner)), ())

    def _candidate(self, t: Transition, eid: str, kw: frozenset[str] | None) -> Candidate:
        c = Candidate()
        c.transition = t
        target = t.target
        if target is None:
            c.kind, configs = _TARGETLESS, "ist"
        elif t.internal:
            c.kind, configs = _INTERNAL, "ist"
        else:
            c.kind, configs = _EXTERNAL, "external"
        c.target_value = target.value if target is not None else None
        c.final = c.kind == _EXTERNAL and bool(target.final) and target.parent is None  # type: ignore[union-attr]
        source = t.source
        d0 = _Ctx(t, source, source, target, kw, eid)
        d0_on = _Ctx(t, source, source, target, kw, eid, configs)
        c.validators = self._phase("validators", t, d0)
        c.guards = tuple(
            (self._caller(cb, d0), cb.expected is not False)
            for cb in self.callbacks("cond", t)
            if cb.event is None or cb.event == eid
        )
        c.before = self._phase("before", t, d0)
        c.on = self._phase("on", t, d0_on)
        c.exit = c.enter = ()
        if c.kind == _EXTERNAL:
            c.exit = self._phase("exit", source, _Ctx(t, _IST, _IST, target, kw, eid))
            de = _Ctx(t, target, source, target, kw, eid)
            c.enter = self._phase("enter", target, de)
            c.after = self._phase("after", t, de)
        elif c.kind == _INTERNAL:
            c.after = self._phase("after", t, _Ctx(t, target, source, target, kw, eid))
        else:
            c.after = self._phase("after", t, d0_on)
        if self.generic or kw is None:
            c.need = (True, True, True)
        else:
            after_d0 = c.kind == _TARGETLESS and _needs(c.after)
            c.need = (
                _needs(c.validators)
                or any(_needs_dict(g) for g, _ in c.guards)
                or _needs(c.before)
                or _needs(c.on)
                or after_d0,
                _needs(c.exit),
                _needs(c.enter) or (c.kind != _TARGETLESS and _needs(c.after)),
            )
        return c

    def _phase(self, group: str, owner: object, ctx: _Ctx) -> tuple[Caller, ...]:
        return tuple(
            self._caller(cb, ctx)
            for cb in self.callbacks(group, owner)
            if cb.event is None or ctx.event is None or cb.event == ctx.event
        )

    def _caller(self, cb: _psm.Callback, ctx: _Ctx) -> Caller:
        if cb.kind == "expression" and len(cb.leaves) == 1 and cb.target.isidentifier():
            cb = cb.leaves[0][1]
        if cb.kind == "listener" and cb.target == (0, "after_transition"):
            return _record_caller(ctx, self.records_directly)
        if ctx.kw is not None and cb.kind in ("method", "callable"):
            static = _static_caller(cb, ctx, self.proto)
            if static is not None:
                return static
        if cb.kind == "attribute":
            return _attribute_caller(cb.target)
        return self._generic(cb)

    def _generic(self, cb: _psm.Callback) -> Caller:
        """psm's own call: the whole argument dict, bound by psm's binder."""
        if cb.kind == "attribute":
            return _attribute_caller(cb.target)
        if cb.kind == "listener":
            index, attr = cb.target
            if (index, attr) == (0, "after_transition"):
                return _mark(_record_from_dict)
            return _bound_caller(getattr([self.recorder][index], attr))
        if cb.kind == "expression":
            expression = _psm.compile_expression(cb.target, _leaf_factory(dict(cb.leaves)))

            def call_expression(m: Any, T: Trigger, d: Any) -> Any:
                return expression(*T.args, **d)

            return _mark(call_expression)
        if cb.kind == "callable":
            return _bound_caller(cb.target)
        func = cb.target

        def call_method(m: Any, T: Trigger, d: Any) -> Any:
            return _psm.bind_call(func.__get__(m, type(m)), T.args, d)

        return _mark(call_method)

    # -- candidates, entries and guards ----------------------------------------------------

    def candidates(self, value: Any, eid: str) -> tuple[Candidate, ...]:
        """The candidate transitions for ``eid`` in the state whose value is ``value``."""
        key = (value, eid)
        found = self.table.get(key)
        if found is not None:
            return found
        if eid in self.event_ids or value not in self.states_map:
            return ()
        found = self.dynamic.get(key)
        if found is None:
            state = self.states_map[value]
            found = tuple(
                self._candidate(t, eid, None) for t in _psm.iter_transitions(state) if t.match(eid)
            )
            if len(self.dynamic) < 256:
                self.dynamic[key] = found
        return found

    def entry(self, value: Any) -> tuple[Any, Any, tuple[Caller, ...], bool]:
        """What activating the state ``value`` runs: psm's synthetic initial transition,
        its empty source, the state's enter callbacks and whether they need a dict."""
        entry = self._entries.get(value)
        if entry is None:
            state = self.states_map[value]
            transition, empty = _psm.initial_transition(state)
            kw: frozenset[str] | None = None if self.generic else frozenset()
            ctx = _Ctx(transition, state, empty, state, kw, None)
            callers = self._phase("enter", state, ctx)
            entry = (transition, empty, callers, self.generic or _needs(callers))
            self._entries[value] = entry
        return entry

    def guard_callers(self, transition: Any) -> list[tuple[str, bool, Caller]]:
        """The guards of ``transition`` called as psm calls them, with the whole dict."""
        guards = self._guards.get(id(transition))
        if guards is None:
            guards = [
                (cb.name, cb.expected is not False, self._generic(cb))
                for cb in self.callbacks("cond", transition)
            ]
            self._guards[id(transition)] = guards
        return guards

    def guard_calls(self, machine: Any, transition: Any) -> list[tuple[str, bool, Any]]:
        """The guards of ``transition``: ``(name, expected, callable(**kwargs))``."""
        return [
            (name, expected, _explain_call(caller, machine))
            for name, expected, caller in self.guard_callers(transition)
        ]


def _explain_call(caller: Caller, machine: Any) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        trigger = _NO_DATA if not args else Trigger(None, "", None, args, {})
        return caller(machine, trigger, kwargs)

    return call


def _mark(caller: Caller) -> Caller:
    caller.needs_dict = True  # type: ignore[attr-defined]
    return caller


def _needs_dict(caller: Caller) -> bool:
    return getattr(caller, "needs_dict", False)


def _needs(callers: tuple[Caller, ...]) -> bool:
    return any(_needs_dict(c) for c in callers)


def _bound_caller(func: Callable[..., Any]) -> Caller:
    def call(m: Any, T: Trigger, d: Any) -> Any:
        return _psm.bind_call(func, T.args, d)

    return _mark(call)


def _record_from_dict(m: Any, T: Trigger, d: Any) -> Any:
    return m._record_transition(d["event"], d["source"], d["target"], d.get("payload"))


def _attribute_caller(name: str) -> Caller:
    def read(m: Any, T: Trigger, d: Any) -> Any:
        return getattr(m, name)

    return read


def _record_caller(ctx: _Ctx, directly: bool) -> Caller:
    """The history listener's ``after_transition``: the machine's ``_record_transition`` with
    the after phase's event, source, target and payload (its tuple appended directly when the
    class keeps lifecyclekit's own)."""
    if ctx.kw is None:
        return _mark(_record_from_dict)
    source, target = ctx.source, ctx.target
    if not directly:

        def record(m: Any, T: Trigger, d: Any) -> Any:
            return m._record_transition(T.event(m), source, target, T.kw.get("payload"))

        return record
    source_id = source.id
    target_id = (target or source).id

    def append(m: Any, T: Trigger, d: Any) -> Any:
        return m._append_record(T.eid, source_id, target_id, T.kw.get("payload"))

    return append


def _leaf_factory(leaves: dict[str, _psm.Callback]) -> Callable[[str], Callable[..., Any]]:
    """psm's leaf callables for a guard expression, bound to the machine at call time."""

    def leaf(name: str) -> Callable[..., Any]:
        cb = leaves[name]
        func = cb.target
        if cb.kind == "method":

            def call_method(*args: Any, **kwargs: Any) -> Any:
                machine = kwargs["machine"]
                return _psm.bind_call(func.__get__(machine, type(machine)), args, kwargs)

            call_method.__name__ = name
            return call_method
        if cb.kind == "callable":

            def call_callable(*args: Any, **kwargs: Any) -> Any:
                return _psm.bind_call(func, args, kwargs)

            call_callable.__name__ = name
            return call_callable

        def read(*args: Any, **kwargs: Any) -> Any:
            return getattr(kwargs["machine"], func)

        read.__name__ = name
        return read

    return leaf


def _static_caller(cb: _psm.Callback, ctx: _Ctx, proto: object) -> Caller | None:
    """A caller passing exactly the arguments the callback declares, or ``None`` where only
    psm's binder gives psm's answer (positional-only parameters that would be bound)."""
    func = cb.target
    method = cb.kind == "method"
    bound = func.__get__(proto, type(proto)) if method else func
    try:
        parameters = list(_psm.signature(bound).parameters.values())
    except (TypeError, ValueError):
        return None
    args: list[str] = []
    whole = False
    for p in parameters:
        if p.kind is Parameter.VAR_POSITIONAL:
            continue
        if p.kind is Parameter.VAR_KEYWORD:
            whole = True
            continue
        expr = _value(p.name, ctx)
        if expr is None:
            continue
        if p.kind is Parameter.POSITIONAL_ONLY:
            return None
        args.append(f"{p.name}={expr}")
    first = "m, " if method else ""
    if whole:
        # Declared names are bound from the same dict psm would pass whole.
        source = f"def _c(m, T, d):\n    return _f({first}**d)\n"
    else:
        source = f"def _c(m, T, d):\n    return _f({first}{', '.join(args)})\n"
    namespace = {
        "_f": func,
        "_t": ctx.transition,
        "_state": ctx.state,
        "_source": ctx.source,
        "_target": ctx.target,
        "_OS": _psm.OrderedSet,
    }
    exec(source, namespace)  # noqa: S102 - fixed template, names are identifiers
    caller: Caller = namespace["_c"]
    if whole:
        _mark(caller)
    return caller


def _value(name: str, ctx: _Ctx) -> str | None:  # noqa: C901
    """The expression giving argument ``name`` in a phase, or ``None`` where psm passes none."""
    assert ctx.kw is not None
    if name in ctx.kw:
        return f"T.kw[{name!r}]"
    if name not in _INJECTED and name not in _CONFIGURATIONS:
        return None
    state = "m._ist()" if ctx.state is _IST else "_state"
    source = "m._ist()" if ctx.source is _IST else "_source"
    if name == "machine":
        return "m"
    if name == "model":
        return "m.model"
    if name == "event":
        return "T.event(m)"
    if name == "transition":
        return "_t"
    if name == "state":
        return state
    if name == "source":
        return source
    if name == "target":
        return "_target"
    if name == "event_data":
        return f"T.event_data(m, _t, {state}, {source}, _target)"
    if ctx.configs is None:
        return None
    if name == "previous_configuration":
        return "_OS((m._ist(),))"
    return "_OS((_target,))" if ctx.configs == "external" else "_OS((m._ist(),))"


# -- the plan of a class -----------------------------------------------------------------


class _Compiled:
    __slots__ = ("generation", "plan", "reason")

    def __init__(self, generation: int, plan: Plan | None, reason: str | None) -> None:
        self.generation = generation
        self.plan = plan
        self.reason = reason


def plan_for(cls: type, model: object, recorder: object) -> Plan | None:
    """The compiled plan of ``cls``, or ``None`` when it runs on python-statemachine's
    engine (:func:`reason_for` says why). ``model`` and ``recorder`` stand for what every
    instance is given: its default model and the history listener."""
    if _FORCED_ENGINE[0]:
        return None
    compiled = cls.__dict__.get("_lk_compiled")
    if compiled is not None and compiled.generation == _GENERATION[0]:
        plan = compiled.plan
        if plan is None or plan.fresh():
            return plan  # type: ignore[no-any-return]
    return _compile(cls, model, recorder).plan


def reason_for(cls: type, model: object, recorder: object) -> str | None:
    """Why ``cls`` runs on python-statemachine's engine, or ``None`` if it is compiled."""
    plan_for(cls, model, recorder)
    return cls.__dict__["_lk_compiled"].reason  # type: ignore[no-any-return]


def _compile(cls: type, model: object, recorder: object) -> _Compiled:
    reason: str | None
    plan: Plan | None = None
    if not getattr(cls, "fast_path", True):
        reason = "it sets fast_path = False"
    elif os.environ.get(ENGINE_ENV, "").lower() == "psm":
        reason = f"{ENGINE_ENV}=psm"
    else:
        definition = _psm.resolve_flat(cls, model, [recorder])
        if isinstance(definition, str):
            reason = definition
        else:
            reason = None
            plan = Plan(cls, definition, recorder)
            _install_attributes(cls)
    compiled = _Compiled(_GENERATION[0], plan, reason)
    type.__setattr__(cls, "_lk_compiled", compiled)
    return compiled


def _install_attributes(cls: Any) -> None:
    """Events and states as class attributes psm's per-instance objects come from (also
    where a subclass inherits them from a class that was never compiled)."""
    for event in cls._events:
        current = inspect.getattr_static(cls, event.id, None)
        if isinstance(current, _psm.EventAttribute) or not isinstance(current, _psm.Event):
            continue
        type.__setattr__(cls, event.id, _psm.event_attribute(current, _send_bound))
    for state in cls.states:
        if state.id not in cls._events and inspect.getattr_static(cls, state.id, None) is state:
            type.__setattr__(cls, state.id, _psm.StateAttribute(state, _state_view))


def _send_bound(event: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return event._sm._send_compiled(event, args, kwargs)


def _state_view(machine: Any, state: Any) -> Any:
    return machine._instance_state(state.value)


# -- running events ------------------------------------------------------------------------


def send(machine: Any, trigger: Trigger) -> Any:
    """Put ``trigger`` and run the queue, as psm's ``put`` + processing loop do."""
    admitted = machine._admit_event(trigger.eid, trigger.args, trigger.kw)
    if admitted is None:
        return run(machine, None)
    trigger.args, trigger.kw = admitted
    if not machine._fast_running:
        raise machine._refusal(trigger.event(machine), trigger.kw)
    if machine._fast_busy:
        internal = trigger.internal and _psm.step_runner() is machine
        queue = "_fast_internal" if internal else "_fast_queue"
        pending = machine.__dict__.get(queue)
        if pending is None:
            pending = machine.__dict__[queue] = deque()
        pending.append(trigger)
        return None
    if machine.__dict__.get("_fast_queue") or machine.__dict__.get("_fast_internal"):
        pending = machine.__dict__["_fast_queue"] = machine.__dict__.get("_fast_queue") or deque()
        pending.append(trigger)
        return run(machine, trigger)
    return run(machine, trigger, trigger)


def run(machine: Any, own: Trigger | None, first: Trigger | None = None) -> Any:  # noqa: C901
    """psm's processing loop: internal events, then one external event, until both queues
    are empty or the machine has stopped; the result of the first external event.

    ``first`` is an event taken before anything queued (the queues are empty)."""
    if machine._fast_busy:
        return None
    plan = machine._compiled
    if plan is None:  # moved to the engine while its initial state was entered
        return machine._processing_loop()
    values = machine.__dict__
    values["_fast_busy"] = True
    result: Any = _SENTINEL
    running = _psm.begin_step(machine)
    try:
        try:
            while machine._fast_running and machine._compiled is plan:
                internal = values.get("_fast_internal")
                while internal and machine._compiled is plan:
                    trigger = internal.popleft()
                    try:
                        _take(machine, trigger, False)
                    except Exception:
                        _clear(values)
                        raise
                if not machine._fast_running or machine._compiled is not plan:
                    break
                if first is not None:
                    trigger, first = first, None
                else:
                    queue = values.get("_fast_queue")
                    if not queue:
                        break
                    trigger = queue.popleft()
                value = _take(machine, trigger, True)
                if result is _SENTINEL:
                    result = value
            if machine._compiled is not plan:
                values.pop("_fast_busy", None)
            elif not machine._fast_running:
                queue = values.get("_fast_queue")
                if queue:
                    queue.clear()
        finally:
            _psm.end_step(running)
            if machine._compiled is plan:
                values["_fast_busy"] = False
            else:
                _psm.release_step(machine)
    except _psm.TransitionNotAllowed as err:
        # As psm's loop releases its lock before lifecyclekit's hook explains the refusal,
        # guards evaluated for the explanation run outside the step.
        if own is None or machine._is_refusal(err) or err.event is not own.event(machine):
            raise
        raise machine._refusal(own.event(machine), own.kw) from None
    if machine._compiled is not plan:
        # Moved to the engine during this loop: psm's loop runs what was sent meanwhile.
        later = machine._processing_loop()
        return later if result is _SENTINEL else result
    return None if result is _SENTINEL else result


def _clear(values: dict[str, Any]) -> None:
    for name in ("_fast_queue", "_fast_internal"):
        queue = values.get(name)
        if queue:
            queue.clear()


def _take(machine: Any, trigger: Trigger, external: bool) -> Any:  # noqa: C901
    """Select and run the transition ``trigger`` enables (psm's ``_take_external_event`` and
    the internal branch of ``_run_macrostep``)."""
    plan: Plan = machine._compiled
    holder = machine.model
    candidates = plan.candidates(holder.state, trigger.eid)
    generic = plan.generic
    chosen = None
    d0 = None
    for c in candidates:
        t = c.transition
        d0 = None
        if c.need[0]:
            d0 = _kwargs(machine, trigger, t, t.source, t.source, t.target, plan)
        for validator in c.validators:
            validator(machine, trigger, d0)
        for guard, expected in c.guards:
            if (not guard(machine, trigger, d0)) is expected:
                break
        else:
            chosen = c
            break
    if chosen is None:
        if external:
            raise _psm.TransitionNotAllowed(trigger.event(machine), machine.configuration)
        return None
    try:
        return _microstep(machine, trigger, chosen, d0, holder, generic)
    except Exception:
        if external:
            _clear(machine.__dict__)
        raise


def _microstep(  # noqa: C901
    machine: Any, trigger: Trigger, c: Candidate, d0: Any, holder: Any, generic: bool
) -> Any:
    plan: Plan = machine._compiled
    t = c.transition
    previous = holder.state
    results = []
    try:
        for step in c.before:
            results.append(step(machine, trigger, d0))
        kind = c.kind
        if kind == _EXTERNAL:
            dx = None
            if c.need[1]:
                ist = machine._ist()
                dx = _kwargs(machine, trigger, t, ist, ist, t.target, plan)
            for step in c.exit:
                step(machine, trigger, dx)
        if d0 is not None and (c.on or generic or kind == _TARGETLESS):
            _add_configurations(machine, d0, c)
        for step in c.on:
            results.append(step(machine, trigger, d0))
        if kind == _EXTERNAL:
            holder.state = c.target_value
            de = None
            if c.need[2]:
                target = t.target
                de = _kwargs(machine, trigger, t, target, t.source, target, plan)
            for step in c.enter:
                step(machine, trigger, de)
            if c.final:
                machine._set_running(False)
    except Exception:
        holder.state = previous
        raise
    if kind == _EXTERNAL:
        da = de
    elif kind == _INTERNAL:
        da = None
        if c.need[2]:
            target = t.target
            da = _kwargs(machine, trigger, t, target, t.source, target, plan)
    else:
        da = d0
    for step in c.after:
        step(machine, trigger, da)
    if not results:
        return None
    return results[0] if len(results) == 1 else results


def _add_configurations(machine: Any, d0: dict[str, Any], c: Candidate) -> None:
    ist = machine._ist()
    d0["previous_configuration"] = _psm.OrderedSet((ist,))
    d0["new_configuration"] = _psm.OrderedSet(
        (c.transition.target,) if c.kind == _EXTERNAL else (ist,)
    )


def _kwargs(
    machine: Any, trigger: Trigger, t: Any, state: Any, source: Any, target: Any, plan: Plan
) -> dict[str, Any]:
    """The argument dict psm builds for one phase (``_get_args_kwargs``)."""
    d = dict(trigger.kw)
    d["event_data"] = trigger.event_data(machine, t, state, source, target)
    d["machine"] = machine
    d["event"] = trigger.event(machine)
    d["model"] = machine.model
    d["transition"] = t
    d["state"] = state
    d["source"] = source
    d["target"] = target
    if plan.prepare:
        for extra in [prepare(machine, trigger, d) for prepare in plan.prepare]:
            d.update(extra)
    return d


def activate(machine: Any, plan: Plan, start_value: Any) -> None:
    """Enter the initial state (or ``start_value``'s), as psm's ``activate_initial_state``
    does: the state is set, its entry callbacks run, then the queue."""
    values = (
        [start_value]
        if start_value is not None
        else list(machine.start_configuration_values) or [plan.cls.initial_state.value]  # type: ignore[attr-defined]
    )
    try:
        states = [plan.states_map[value] for value in values]
    except KeyError as err:
        raise _psm.invalid_state_value(values) from err
    state = states[0]
    transition, empty, callers, needs = plan.entry(state.value)
    trigger = Trigger(None, "__initial__", None, (), {})
    attributes = machine.__dict__
    attributes["_fast_busy"] = True
    running = _psm.begin_step(machine)
    try:
        if plan.generic:
            _kwargs(machine, trigger, transition, empty, empty, state, plan)
        machine.model.state = state.value
        d = _kwargs(machine, trigger, transition, state, empty, state, plan) if needs else None
        for step in callers:
            step(machine, trigger, d)
        if state.final:
            machine._set_running(False)
    finally:
        _psm.end_step(running)
        if machine._compiled is plan:
            attributes["_fast_busy"] = False
        else:
            _psm.release_step(machine)
    run(machine, None)


def enabled_events(machine: Any, plan: Plan, args: tuple[Any, ...], kwargs: Any) -> list[Any]:
    """psm's ``enabled_events``: events with a transition whose guards pass (or raise)."""
    enabled: dict[Any, Any] = {}
    trigger = Trigger(None, "", None, args, {})
    for state in machine.configuration:
        for transition in state.transitions:
            for event in transition.events:
                if event in enabled:
                    continue
                extended = dict(kwargs)
                extended.update(
                    machine=machine,
                    model=machine.model,
                    event=getattr(machine, event),
                    source=transition.source,
                    target=transition.target,
                    state=state,
                    transition=transition,
                )
                try:
                    passed = all(
                        bool(caller(machine, trigger, extended)) == expected
                        for _, expected, caller in plan.guard_callers(transition)
                    )
                except Exception:
                    passed = True
                if passed:
                    enabled[event] = getattr(machine, event)
    return list(enabled.values())
