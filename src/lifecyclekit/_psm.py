"""Every private part of python-statemachine that lifecyclekit uses, in one place.

Read from python-statemachine 3.2.2 (``pyproject.toml`` pins ``>=3.2.2,<3.3``);
``tests/test_engine_hooks.py`` checks each name below against the installed release, so a
release that moves one fails there first. Nothing else in lifecyclekit imports
``statemachine.{engines,factory,callbacks,event_data,dispatcher,...}`` or reads a private
attribute of a machine; this module imports nothing of lifecyclekit.

What lives here:

- :class:`HookedStateMachine`: psm's two engine entry points (``_put_nonblocking``, where an
  event is queued, and ``_processing_loop``, where the queue runs) turned into plain hooks a
  subclass implements (``_admit_event``, ``_refusal``, ``_is_refusal``), and psm's
  per-instance machinery (callback registry, configuration, engine, listeners) built on first
  use through ``_start_engine``, so an instance that never needs it never pays for it.
- The engine's ``running`` flag (:func:`engine_running`, :func:`set_engine_running`) and the
  guard wrappers' resolved callables (:func:`guard_calls`), for explanations.
- :func:`resolve_flat`: python-statemachine's own callback resolution run once for a class
  (order, priority, naming conventions, listener precedence, guard expressions), returned as
  plain data for the compiled event path (``lifecyclekit._fast``), or the reason the class
  needs the engine.
- The small psm objects callbacks receive (:func:`bound_event`, :func:`event_data`,
  :func:`instance_state`, :class:`OrderedSet`) and psm's argument binding (:func:`bind_call`).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import statemachine
from statemachine import Event, State, StateChart, StateMachine
from statemachine.callbacks import CallbackGroup, CallbacksRegistry, SpecReference, allways_true
from statemachine.dispatcher import Listener, Listeners
from statemachine.engines.async_ import AsyncEngine
from statemachine.engines.base import _running_engine
from statemachine.event import BoundEvent
from statemachine.event_data import EventData, TriggerData
from statemachine.exceptions import InvalidStateValue, TransitionNotAllowed
from statemachine.factory import StateMachineMetaclass
from statemachine.graph import iterate_states_and_transitions
from statemachine.orderedset import OrderedSet
from statemachine.signature import SignatureAdapter
from statemachine.spec_parser import (
    names_in_boolean_expr,
    operator_mapping,
    parse_boolean_expr,
    replace_operators,
)
from statemachine.state import InstanceState
from statemachine.transition import Transition
from statemachine.utils import _cached_loop, run_async_from_sync

if TYPE_CHECKING:
    from statemachine.callbacks import CallbackSpecList

__all__ = [
    "PSM_VERSION",
    "BoundEvent",
    "Callback",
    "Event",
    "FlatDefinition",
    "HookedStateMachine",
    "InvalidStateValue",
    "TransitionNotAllowed",
    "OrderedSet",
    "StateMachineMetaclass",
    "bind_call",
    "bound_event",
    "compile_expression",
    "engine_running",
    "event_data",
    "guard_calls",
    "instance_state",
    "is_async",
    "loop_running",
    "resolve_flat",
    "run_sync",
    "set_engine_running",
    "signature",
]

PSM_VERSION = "3.2.2"
"""The python-statemachine release whose internals this module was written against."""

INSTALLED_VERSION: str = statemachine.__version__
"""The installed release (``tests/test_engine_hooks.py`` checks it is ``3.2.x``)."""

ENGINE_ATTRIBUTES = ("_callbacks", "_config", "_engine", "_listeners", "history_values")
"""psm's per-instance machinery: set by ``StateChart.__init__``, built lazily here."""

ENGINE_HOOKS = (
    "_put_nonblocking",
    "_processing_loop",
    "_get_engine",
    "_register_callbacks",
    "_add_listener",
    "_build_configuration",
    "_get_initial_configuration",
    "_resolve_class_listeners",
    "activate_initial_state",
)
"""Methods a subclass may override to change how psm's engine runs; one that does needs it."""

_EVENT_DATA_KWARGS = frozenset(
    {"event_data", "machine", "event", "model", "transition", "state", "source", "target"}
)
"""Keyword arguments psm's ``Event.build_trigger`` drops from the data sent with an event."""


class _EngineSlot:
    """A data descriptor for one part of psm's per-instance machinery.

    ``StateChart.__init__`` assigns it (stored in the instance ``__dict__`` as usual); an
    instance created without it builds all of it on first access, through the instance's
    ``_start_engine()``.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        values = instance.__dict__
        if self.name not in values:
            instance._start_engine(self.name)
        try:
            return values[self.name]
        except KeyError:
            msg = f"{type(instance).__name__!r} object has no attribute {self.name!r}"
            raise AttributeError(msg) from None

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.name] = value

    def __delete__(self, instance: Any) -> None:
        del instance.__dict__[self.name]


class HookedStateMachine(StateMachine):
    """A ``StateMachine`` whose engine entry points call lifecyclekit's hooks.

    Every way of sending an event (``m.<event>(...)``, ``send``, ``raise_``) reaches
    ``_put_nonblocking`` before the event is queued, then ``_processing_loop``. Here the
    first asks :meth:`_admit_event` (which may validate the data or drop the event), and a
    refusal of the caller's own event is turned into :meth:`_refusal`'s exception; a refusal
    of an event queued from a callback stays psm's plain ``TransitionNotAllowed``.
    """

    _pending: TriggerData | None = None
    _compiled: Any = None
    """The compiled plan this instance's events run on, or ``None``: psm's engine."""
    state_field = "state"

    _callbacks = _EngineSlot("_callbacks")
    _config = _EngineSlot("_config")
    _engine = _EngineSlot("_engine")
    _listeners = _EngineSlot("_listeners")
    history_values = _EngineSlot("history_values")

    def _start_engine(self, name: str) -> None:
        """Build psm's per-instance machinery (asked for ``name``); a subclass that creates
        instances without it implements this."""

    def _admit_event(
        self, event_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The arguments the event is queued with, or ``None`` to drop it unqueued."""
        return args, kwargs

    def _refusal(self, event: Event | None, kwargs: dict[str, Any]) -> Exception:
        """The exception raised for a refused event (psm's own, by default)."""
        return TransitionNotAllowed(event, self.configuration)

    def _is_refusal(self, error: Exception) -> bool:
        """Whether ``error`` already is one of :meth:`_refusal`'s exceptions."""
        return False

    def _put_nonblocking(self, trigger_data: TriggerData, internal: bool = False) -> None:
        event = trigger_data.event
        if event is not None:
            admitted = self._admit_event(event.id, trigger_data.args, trigger_data.kwargs)
            if admitted is None:
                return  # nothing queued: the caller's processing loop finds nothing to do.
            trigger_data.args, trigger_data.kwargs = admitted
        if self._pending is None and event != "__initial__":
            # (psm's async engine queues its initial activation unprocessed: not a send.)
            self._pending = trigger_data
        try:
            super()._put_nonblocking(trigger_data, internal=internal)
        except TransitionNotAllowed:
            # The engine stopped in a final state and refuses before selecting transitions.
            self._pending = None
            raise self._refusal(event, trigger_data.kwargs) from None

    async def _arefusal(self, event: Event | None, kwargs: dict[str, Any]) -> Exception:
        """The exception raised for a refused event of an awaited send (guards awaited)."""
        return self._refusal(event, kwargs)

    def _processing_loop(self, caller_future: Any = None) -> Any:
        pending = self._pending
        if isinstance(self._engine, AsyncEngine) and not loop_running():
            thread_loop()
        try:
            result = super()._processing_loop(caller_future)
        except TransitionNotAllowed as err:
            if self._is_refusal(err) or pending is None:
                raise
            if err.event is not pending.event:
                raise
            raise self._refusal(pending.event, pending.kwargs) from None
        finally:
            if pending is self._pending:
                self._pending = None
        if pending is not None and inspect.isawaitable(result):
            # psm's async engine inside a running loop: the refusal comes when it is awaited.
            return self._awaited(result, pending)
        return result

    async def _awaited(self, result: Any, pending: TriggerData) -> Any:
        try:
            return await result
        except TransitionNotAllowed as err:
            if self._is_refusal(err) or err.event is not pending.event:
                raise
            raise await self._arefusal(pending.event, pending.kwargs) from None


def invalid_state_value(values: Any) -> Exception:
    """psm's error for a state value the class does not have."""
    return InvalidStateValue(values)  # type: ignore[no-untyped-call]


def start_engine(
    machine: StateChart[Any], listeners: list[object], running: bool, in_step: bool
) -> None:
    """Build psm's per-instance machinery for a machine whose model already holds its state
    (so nothing is activated), with ``listeners``, and set the engine's ``running`` flag.

    ``in_step``: a compiled step of this machine is under way; the engine then takes it over
    as psm's own loop would hold it (its processing lock held, the step context its own), so
    events sent until the step ends wait in the engine's queues; :func:`release_step` ends
    that once the compiled step is done."""
    StateChart.__init__(machine, model=machine.model, listeners=listeners)
    engine = machine._engine
    engine.running = running
    if in_step:
        engine._processing.acquire(blocking=False)
        _running_engine.set(engine)


def release_step(machine: StateChart[Any]) -> None:
    """After a compiled step during which the machine moved to the engine: release the
    processing lock :func:`start_engine` took (the caller then runs the machine's processing
    loop, for the events sent meanwhile, unless the step raised)."""
    machine._engine._processing.release()


begin_step: Callable[[Any], Any] = _running_engine.set
"""Mark the current context (thread or task) as running a step of the given runner, as psm's
engines do (``engines/base.py:_processing_step``); returns the token for :func:`end_step`.
psm puts an internal event on the internal queue only when its own machine runs the step of
the current context. (The context variable's own methods: no Python call on the hot path.)"""

end_step: Callable[[Any], None] = _running_engine.reset
"""Undo :func:`begin_step` with its token."""

step_runner: Callable[[], object] = _running_engine.get
"""Whose step the current context is running (an engine, a compiled machine, or None)."""


def requeue(machine: StateChart[Any], trigger_data: TriggerData, internal: bool) -> None:
    """Put an event that waited in the compiled path's queue on the engine's queue."""
    engine = machine._engine
    (engine.internal_queue if internal else engine.external_queue).put(trigger_data)


def is_async(machine: StateChart[Any]) -> bool:
    """Whether the machine runs on psm's async engine (it has async callbacks or guards)."""
    return isinstance(machine._engine, AsyncEngine)


def loop_running() -> bool:
    """Whether an asyncio event loop runs in this thread (psm then hands back awaitables)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _LoopCloser:
    """Closes the loop it holds when it is collected (with its thread's local data)."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def __del__(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


def thread_loop() -> None:
    """Give this thread the loop psm runs async machines on from sync code
    (``utils.run_async_from_sync`` caches one per thread and never closes it, so a worker
    thread that ends leaks it with a ``ResourceWarning``): one closed when the thread's
    local data goes."""
    if not hasattr(_cached_loop, "loop"):
        loop = asyncio.new_event_loop()
        _cached_loop.loop = loop
        _cached_loop.lifecyclekit_closer = _LoopCloser(loop)


def activate_pending(machine: StateChart[Any]) -> None:
    """Run the initial activation psm's async engine only queues at construction, when no
    event loop runs in this thread (on psm's per-thread loop, as psm runs an async machine
    from sync code); inside a running loop it stays queued, for ``await
    machine.activate_initial_state()`` or the first event."""
    if isinstance(machine._engine, AsyncEngine) and not loop_running():
        thread_loop()
        machine.activate_initial_state()


def run_sync(awaitable: Any) -> Any:
    """Run ``awaitable`` to completion from sync code on psm's per-thread loop (no loop may
    be running in this thread)."""
    thread_loop()
    return run_async_from_sync(awaitable)


def engine_running(machine: StateMachine) -> bool:
    """Whether the machine's engine still accepts events (``False`` once a top-level final
    state was entered)."""
    return bool(machine._engine.running)


def set_engine_running(machine: StateMachine, running: bool) -> None:
    """Set the engine's ``running`` flag (after rolling a final state back, say)."""
    machine._engine.running = running


def guard_calls(
    machine: StateMachine, transition: Transition
) -> list[tuple[str, bool, Callable[..., Any]]]:
    """The guards of ``transition`` as resolved for ``machine``: ``(name, expected value,
    callable)`` in evaluation order.

    The callable is the wrapper's resolved callable, not the wrapper itself (whose ``call``
    reduces the answer to a bool), so a :class:`~lifecyclekit.Because` keeps its reason.
    """
    key = transition.cond.key
    if key not in machine._callbacks:
        return []
    return [
        (str(guard.meta.attr_name), guard.meta.expected_value is not False, guard._callback)
        for guard in machine._callbacks[key]
    ]


# -- the objects callbacks receive ------------------------------------------------------------


def signature(func: Callable[..., Any]) -> inspect.Signature:
    """psm's view of a callable's signature (cached by psm, ``__signature__`` honoured)."""
    return SignatureAdapter.from_callable(func)  # type: ignore[no-any-return]


def bind_call(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``func`` as psm calls a callback: with the parameters it declares, taken from
    ``args`` and ``kwargs`` (``dispatcher.callable_method``)."""
    bound = SignatureAdapter.from_callable(func).bind_expected(*args, **kwargs)
    return func(*bound.args, **bound.kwargs)


def bound_event(
    machine: StateChart[Any],
    event_id: str,
    name: str | None = None,
    delay: float = 0,
    internal: bool = False,
) -> BoundEvent:
    """The ``BoundEvent`` psm passes callbacks as ``event`` (as ``send`` builds it)."""
    return BoundEvent(id=event_id, name=name, delay=delay, internal=internal, _sm=machine)


def trigger_data(
    machine: StateChart[Any], event: Event, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> TriggerData:
    """The ``TriggerData`` psm builds for a sent event (``Event.build_trigger``)."""
    return TriggerData(machine=machine, event=event, args=args, kwargs=kwargs)


def event_data(
    trigger: TriggerData,
    transition: Transition,
    state: State,
    source: State,
    target: State | None,
) -> EventData:
    """The ``event_data`` argument psm builds for one callback phase."""
    data = EventData(trigger_data=trigger, transition=transition)
    data.state, data.source, data.target = state, source, target
    return data


def instance_state(
    state: State, machine: StateChart[Any], states: dict[Any, Any]
) -> InstanceState:
    """psm's per-instance view of ``state`` (what ``machine.<state id>`` returns)."""
    return InstanceState(state, machine, states)


def initial_transition(state: State) -> tuple[Transition, State]:
    """The synthetic transition (and its empty source) psm activates ``state`` with."""
    empty = State()
    transition = Transition(empty, state, event="__initial__")
    transition._specs.clear()  # type: ignore[no-untyped-call]
    return transition, empty


def compile_expression(text: str, leaf: Callable[[str], Callable[..., Any]]) -> Any:
    """A guard expression (``"a and not b"``) as psm builds it, ``leaf(name)`` giving each
    name's callable (called with the callback arguments)."""
    return parse_boolean_expr(text, leaf, operator_mapping)  # type: ignore[no-untyped-call]


def drop_event_data_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the names psm injects itself (``Event.build_trigger``)."""
    if _EVENT_DATA_KWARGS.isdisjoint(kwargs):
        return kwargs
    return {k: v for k, v in kwargs.items() if k not in _EVENT_DATA_KWARGS}


def build_trigger_error(event: Any, machine: StateChart[Any], args: Any, kwargs: Any) -> Any:
    """Raise what psm raises for data that names ``machine`` (a ``TypeError``)."""
    return BoundEvent.build_trigger(event, *args, machine=machine, **kwargs)


def event_type_for(event: Event, call: Callable[..., Any]) -> type[BoundEvent]:
    """A ``BoundEvent`` subclass for one event, built without psm's per-access ``Event``
    constructor: ``str.__new__(cls, id)`` plus ``_sm``; calling it runs ``call(event, args,
    kwargs)`` while the machine's ``_compiled`` is set, psm's own call otherwise."""

    def __call__(self: BoundEvent, *args: Any, **kwargs: Any) -> Any:
        machine = self._sm
        if machine._compiled is not None:  # type: ignore[union-attr]
            return call(self, args, kwargs)
        return BoundEvent.__call__(self, *args, **kwargs)

    namespace = {
        "__slots__": (),
        "__module__": BoundEvent.__module__,
        "__qualname__": "BoundEvent",
        "id": event.id,
        "name": event.name,
        "delay": event.delay,
        "internal": event.internal,
        "_has_real_id": True,
        "__call__": __call__,
    }
    return type("BoundEvent", (BoundEvent,), namespace)


class EventAttribute(Event):
    """The class attribute of an event on a compiled class: class access gives this
    ``Event`` (with the declared transitions, for psm and decorators); instance access a
    ``BoundEvent`` like psm's, cheaper to build, whose call takes the compiled path."""

    _bound_type: type[BoundEvent]

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        bound = str.__new__(self._bound_type, self.id)
        bound._sm = instance
        return bound


def event_attribute(event: Event, call: Callable[..., Any]) -> EventAttribute:
    """An :class:`EventAttribute` standing for ``event``."""
    attribute = EventAttribute(
        transitions=event._transitions,
        id=event.id,
        name=event.name,
        delay=event.delay,
        internal=event.internal,
    )
    attribute._bound_type = event_type_for(event, call)
    return attribute


class StateAttribute:
    """The class attribute of a state on a compiled class: class access gives the ``State``;
    instance access the instance's ``InstanceState`` (as psm's instance attribute does)."""

    def __init__(self, state: State, view: Callable[[Any, State], Any]) -> None:
        self.state = state
        self.view = view

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self.state
        return self.view(instance, self.state)


# -- resolving a flat class once --------------------------------------------------------------

Kind = Literal["method", "callable", "attribute", "listener", "expression"]


@dataclass(frozen=True, slots=True)
class Callback:
    """One callback of a flat class, as python-statemachine resolves it for every instance.

    ``kind`` says how to call it: ``method`` (``target`` is a function of the class, called
    with the instance first), ``callable`` (``target`` is called as is), ``attribute``
    (``target`` names an attribute read on the instance at each call), ``listener``
    (``target`` is ``(index, name)`` of a listener given to :func:`resolve_flat`) or
    ``expression`` (``target`` is a guard expression; ``leaves`` resolve its names).
    """

    name: str
    """The name as declared (a guard expression stays whole): what explanations show."""
    kind: Kind
    target: Any
    expected: bool | None
    """Guards: ``True`` for ``cond``, ``False`` for ``unless``; ``None`` for actions."""
    event: str | None
    """The callback runs only when this event fired (psm's ``*_<event>`` conventions)."""
    leaves: tuple[tuple[str, Callback], ...] = ()


@dataclass(frozen=True, slots=True)
class FlatDefinition:
    """What python-statemachine resolves for every instance of a flat class, once."""

    callbacks: dict[tuple[str, int], tuple[Callback, ...]]
    """``(group, id(owner))`` -> callbacks in psm's order; groups ``prepare`` (owner: the
    class), ``validators``, ``cond``, ``before``, ``on``, ``after`` (a transition),
    ``enter``, ``exit`` (a state)."""
    lookup_names: frozenset[str]
    """Every name psm looks up on an instance to resolve callbacks."""
    class_values: tuple[tuple[str, Any], ...]
    """``(name, getattr(cls, name))`` for each name resolved on the class."""


_GROUPS_OF_STATE = ("enter", "exit", "invoke")
_GROUPS_OF_TRANSITION = ("validators", "cond", "before", "on", "after")
_DEFAULT_FLAGS = {
    "allow_event_without_transition": False,
    "enable_self_transition_entries": False,
    "atomic_configuration_update": True,
    "catch_errors_as_events": False,
}


def resolve_flat(
    cls: type[StateMachine], model: object, listeners: Iterable[object]
) -> FlatDefinition | str:
    """psm's resolution of every callback of ``cls`` for an instance with ``model`` and
    ``listeners``, or why ``cls`` is not a flat machine the compiled path reproduces."""
    reason = _structure_reason(cls)
    if reason is not None:
        return reason
    owners = _spec_owners(cls)
    proto = object.__new__(cls)
    names = _lookup_names(owners)
    if isinstance(names, str):
        return names
    available = set(dir(proto)) - cls._protected_attrs
    for name in sorted(names & available):
        reason = _name_reason(proto, name)
        if reason is not None:
            return reason
    items = (
        Listener.from_obj(proto, skip_attrs=cls._protected_attrs),
        Listener.from_obj(model, skip_attrs={"state"}),
        *(Listener.from_obj(listener) for listener in listeners),
    )
    found = Listeners.from_listeners(items)
    registry = _registry(cls, owners, found)
    if isinstance(registry, str):
        return registry
    resolver = _Resolver(cls, proto, items, found)
    callbacks = _callbacks(cls, owners, registry, resolver)
    if isinstance(callbacks, str):
        return callbacks
    return FlatDefinition(
        callbacks=callbacks,
        lookup_names=frozenset(names),
        class_values=tuple(sorted(resolver.class_values.items())),
    )


def _registry(
    cls: type, owners: list[tuple[Any, CallbackSpecList]], found: Listeners
) -> CallbacksRegistry | str:
    """psm's ``_register_callbacks`` into a fresh registry (its checks included)."""
    registry = CallbacksRegistry()
    try:
        for _, specs in owners:
            found.resolve(specs, registry=registry)
        for owner, specs in owners:
            if owner is not cls:
                registry.check(specs)
    except Exception as err:  # psm raises this at every instance creation: let it.
        return f"its callbacks do not resolve ({err})"
    registry.async_or_sync()  # type: ignore[no-untyped-call]
    if registry.has_async_callbacks:
        return "it has async callbacks"
    return registry


def _callbacks(
    cls: type,
    owners: list[tuple[Any, CallbackSpecList]],
    registry: CallbacksRegistry,
    resolver: _Resolver,
) -> dict[tuple[str, int], tuple[Callback, ...]] | str:
    callbacks: dict[tuple[str, int], tuple[Callback, ...]] = {}
    for owner, specs in owners:
        for group in _groups_of(owner, cls):
            key = specs.grouper(_GROUP[group]).key
            wrappers = list(registry[key]) if key in registry else []
            if group == "invoke":
                if wrappers:
                    return f"state {owner.id!r} invokes"
                continue
            entries = []
            for wrapper in wrappers:
                entry = resolver.callback(wrapper)
                if isinstance(entry, str):
                    return entry
                entries.append(entry)
            callbacks[(group, id(owner))] = tuple(entries)
    return callbacks


def _structure_reason(cls: type[StateMachine]) -> str | None:  # noqa: C901
    if cls._abstract:
        return "it has no states"
    if cls._class_listeners:
        return "it declares class-level listeners"
    for flag, default in _DEFAULT_FLAGS.items():
        if getattr(cls, flag) != default:
            return f"it sets {flag} = {getattr(cls, flag)!r}"
    for hook in ENGINE_HOOKS:
        if getattr(cls, hook) is not getattr(HookedStateMachine, hook):
            return f"it overrides python-statemachine's {hook}"
    if len(cls.start_configuration_values) > 1:
        return "it starts in several states"
    for event in cls._events:
        if event.delay or event.internal:
            return f"event {event.id!r} is delayed or internal"
    for state in cls.states:
        if state.states or state.history or state.parallel:
            return f"state {state.id!r} is compound, parallel or has history"
        for transition in state.transitions:
            if transition.initial:
                continue
            if transition.is_eventless:
                return f"state {state.id!r} has an eventless transition"
            if len(transition.targets) > 1:
                return f"a transition from {state.id!r} has several targets"
            for event in transition.events:
                if event.delay or event.internal:
                    return f"event {event.id!r} is delayed or internal"
    return None


def _spec_owners(cls: type[StateMachine]) -> list[tuple[Any, CallbackSpecList]]:
    owners: list[tuple[Any, CallbackSpecList]] = [(cls, cls._specs)]
    for visited in iterate_states_and_transitions(cls.states):
        owners.append((visited, visited._specs))
    return owners


def _groups_of(owner: Any, cls: type) -> tuple[str, ...]:
    if owner is cls:
        return ("prepare",)
    if isinstance(owner, State):
        return _GROUPS_OF_STATE
    return _GROUPS_OF_TRANSITION


def _lookup_names(owners: list[tuple[Any, CallbackSpecList]]) -> set[str] | str:
    names: set[str] = set()
    for _, specs in owners:
        for spec in specs:
            if spec.reference is SpecReference.PROPERTY:
                return f"callback {spec.attr_name!r} is a property"
            if spec.is_convention:
                names.add(spec.func)
            elif spec.reference is SpecReference.NAME:
                if spec.may_contain_boolean_expression:
                    if _calls_functions(spec.attr_name):
                        return f"guard {spec.attr_name!r} calls In(...) or another function"
                    names.update(names_in_boolean_expr(spec.attr_name))
                else:
                    names.add(spec.attr_name)
            elif not spec.is_bounded:
                names.add(spec.lookup_name)
    return names


def _calls_functions(expression: str) -> bool:
    try:
        tree = ast.parse(replace_operators(expression), mode="eval")
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Call) for node in ast.walk(tree))


def _name_reason(proto: object, name: str) -> str | None:
    try:
        value = inspect.getattr_static(proto, name)
    except AttributeError:
        return None
    if isinstance(value, Event):
        return f"callback {name!r} names an event"
    if isinstance(value, staticmethod | classmethod | types.FunctionType):
        return None
    if hasattr(type(value), "__get__"):
        return f"callback {name!r} is a property or another descriptor"
    return None


_GROUP = {
    "prepare": CallbackGroup.PREPARE,
    "enter": CallbackGroup.ENTER,
    "exit": CallbackGroup.EXIT,
    "invoke": CallbackGroup.INVOKE,
    "validators": CallbackGroup.VALIDATOR,
    "cond": CallbackGroup.COND,
    "before": CallbackGroup.BEFORE,
    "on": CallbackGroup.ON,
    "after": CallbackGroup.AFTER,
}


class _Resolver:
    """Turns psm's resolved callback wrappers into :class:`Callback` entries."""

    def __init__(
        self, cls: type, proto: object, items: tuple[Listener, ...], found: Listeners
    ) -> None:
        self.cls = cls
        self.proto = proto
        self.found = found
        self.resolvers = {item.resolver_id: index for index, item in enumerate(items)}
        self.class_values: dict[str, Any] = {}

    def callback(self, wrapper: Any) -> Callback | str:
        spec = wrapper.meta
        condition = wrapper.condition
        if condition is allways_true:
            event = None
        elif getattr(condition, "__func__", None) is Event.is_same_event:
            event = str(condition.__self__)
        else:
            return f"callback {spec.attr_name!r} has a condition"
        expected = spec.expected_value
        if spec.may_contain_boolean_expression:
            leaves = []
            for name in sorted(names_in_boolean_expr(spec.attr_name)):
                leaf = self.leaf(name)
                if isinstance(leaf, str):
                    return leaf
                leaves.append((name, leaf))
            return Callback(
                str(spec.attr_name), "expression", spec.attr_name, expected, event, tuple(leaves)
            )
        attr, _, resolver = wrapper.unique_key.rpartition("@")
        if resolver == "None":
            return Callback(str(spec.attr_name), "callable", spec.func, expected, event)
        index = self.resolvers.get(resolver)
        if index == 0:
            return self.on_class(attr, str(spec.attr_name), expected, event)
        if index is None or index == 1:
            return f"callback {spec.attr_name!r} is provided by the model"
        return Callback(str(spec.attr_name), "listener", (index - 2, attr), expected, event)

    def leaf(self, name: str) -> Callback | str:
        found = self.found.search_name(name)  # type: ignore[no-untyped-call]
        owners = [key.rpartition("@")[2] for key, _ in found]
        if [self.resolvers.get(owner) for owner in owners] != [0]:
            return f"guard name {name!r} is not (only) an attribute of the class"
        return self.on_class(name, name, None, None)

    def on_class(self, attr: str, name: str, expected: bool | None, event: str | None) -> Callback:
        value = inspect.getattr_static(self.proto, attr)
        if isinstance(value, types.FunctionType):
            self.class_values[attr] = getattr(self.cls, attr)
            return Callback(name, "method", value, expected, event)
        if isinstance(value, staticmethod | classmethod) or callable(value):
            resolved = getattr(self.cls, attr)
            self.class_values[attr] = resolved
            return Callback(name, "callable", resolved, expected, event)
        return Callback(name, "attribute", attr, expected, event)


def iter_transitions(state: State) -> Iterator[Transition]:
    """A state's transitions in declaration order, initial ones left out."""
    return (transition for transition in state.transitions if not transition.initial)
