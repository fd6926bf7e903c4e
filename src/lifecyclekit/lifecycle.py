"""``Lifecycle``: the python-statemachine ``StateMachine`` every lifecycle subclasses.

It keeps python-statemachine's whole class DSL, naming-convention callbacks and dependency
injection, and adds strictness, typed events, guard explanations, a pydantic context, a
history of :class:`~lifecyclekit.TransitionRecord`, an injectable clock and snapshots.

Data flow of one event call (``m.finish(outcome="success")`` or ``m.send("finish", ...)``):
the payload model validates the data (refusal: :class:`~lifecyclekit.PayloadError`, nothing
changed) -> python-statemachine selects the transition, evaluating guards (refusal:
:class:`~lifecyclekit.TransitionRejected` with every guard's verdict, nothing changed) ->
callbacks run -> the state changes and one record is appended to :attr:`Lifecycle.history`.

Two paths run that flow with the same observable behaviour. An instance of a flat class runs
it on the class's compiled plan (:mod:`lifecyclekit._fast`) and holds only its state holder,
context, history, revision, clock and plan; anything else (and an instance given listeners or
a model of its own, or asked for python-statemachine's per-instance machinery) runs on
python-statemachine's engine. :attr:`Lifecycle.on_fast_path` and ``Cls.fast_path_reason`` say
which. The private python-statemachine names lifecyclekit relies on all live in
:mod:`lifecyclekit._psm` (pinned by ``tests/test_engine_hooks.py``); this module implements
the hooks it exposes (``_admit_event``, ``_refusal``, ``_start_engine``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self

from pydantic import BaseModel, ValidationError
from statemachine import State, StateChart
from typing_extensions import TypeVar

import lifecyclekit._chart as _chart
import lifecyclekit._fast as _fast
import lifecyclekit._psm as _psm
from lifecyclekit._display import DISPLAY_HOOKS
from lifecyclekit._meta import LifecycleMeta
from lifecyclekit.errors import (
    DefinitionError,
    PayloadError,
    SnapshotError,
    TransitionRejected,
    field_errors,
)
from lifecyclekit.explain import Explanation, abuild_explanation, build_explanation
from lifecyclekit.payloads import bind_command, dump_payload, validate_payload
from lifecyclekit.snapshot import (
    Migration,
    Snapshot,
    TransitionRecord,
    check_history,
    coerce_snapshot,
)
from lifecyclekit.transitions import Provenance, TransitionInfo, transition_table

if TYPE_CHECKING:
    from statemachine import Event
    from statemachine.transition import Transition

__all__ = ["C", "Clock", "Lifecycle", "utc_now"]

C = TypeVar("C", bound=BaseModel | None, default=Any)
"""The context model of a lifecycle: ``class Build(Lifecycle[BuildContext])``."""

_RECORD_FIELDS = ("seq", "event", "source", "target", "payload", "at", "inferred")


@lru_cache(maxsize=256)
def _field_names(model: type[BaseModel]) -> frozenset[str]:
    """A context model's field names and aliases (the keywords the constructor accepts)."""
    fields = model.model_fields
    return frozenset(fields) | {f.alias for f in fields.values() if f.alias is not None}


def _as_record(values: tuple[Any, ...]) -> TransitionRecord:
    return TransitionRecord.model_construct(**dict(zip(_RECORD_FIELDS, values, strict=True)))


Clock = Callable[[], datetime]
"""A callable returning an aware ``datetime``; lifecycles read time only through it."""


def utc_now() -> datetime:
    """The default clock: the current time, aware, in UTC."""
    return datetime.now(UTC)


class _StateHolder:
    """The minimal model python-statemachine keeps the current state value on.

    Restore passes one already holding the state (so nothing is activated); an instance
    given one of these still takes the compiled path, unlike one given a model of its own.
    """

    __slots__ = ("state",)

    def __init__(self, state: Any = None) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"StateHolder(state={self.state!r})"


class _HistoryRecorder:
    """A listener shared by every lifecycle: turns each fired transition into one record."""

    def after_transition(
        self, machine: Lifecycle, event: str, source: State, target: State | None, **kwargs: Any
    ) -> None:
        machine._record_transition(event, source, target, kwargs.get("payload"))

    @staticmethod
    def records_directly(cls: type[Lifecycle]) -> bool:
        """Whether the compiled path may append records itself (the class does not override
        ``_record_transition``)."""
        return cls._record_transition is Lifecycle._record_transition


_RECORDER = _HistoryRecorder()
_MODEL_PROTOTYPE = _StateHolder()


class Lifecycle(_psm.HookedStateMachine, Generic[C], metaclass=LifecycleMeta):
    """A strict python-statemachine ``StateMachine`` with typed events, context and history.

    Declare states and transitions with python-statemachine's DSL, then optionally:

    - the context model, a pydantic model of the instance's domain data, as the type
      argument (``class Build(Lifecycle[BuildContext])``: ``self.context`` is then a
      ``BuildContext`` for type checkers, and ``Context`` is set from it) or as
      ``Context = BuildContext``; the constructor takes its fields as keyword arguments (or a
      ready ``context=`` instance or mapping) and validates them.
    - ``payloads``: ``{event_id: PydanticModel}``; data sent with that event is validated
      before any guard or callback runs and reaches callbacks as ``payload`` and by field.
    - ``schema_version``: bump it when the context model changes incompatibly.
    - the construction hooks, instead of a custom ``__init__``: :meth:`initial_state_for`
      (the starting state from the context), :meth:`when_created` (once per new
      instance) and :meth:`when_restored` (once per restored one).

    A class with ``async def`` guards or callbacks is driven with ``await`` inside a
    running event loop (see :attr:`is_async`, :meth:`aexplain`, :meth:`acall`).

    Args:
        clock: returns the current time as an aware ``datetime`` (default: UTC now).
            History and time-based guards read time only through :meth:`now`.
        listeners: python-statemachine listeners, as for ``StateMachine``.
        model: an external object that stores the state (python-statemachine domain model).
        state_field: the attribute of ``model`` that holds the state value.
        start_value: the value of the state to start in instead of the initial state
            (entry actions run, as python-statemachine's ``start_value`` does).
        context: a ready ``Context`` instance, or a mapping of its fields (validated; any
            field name works here, including the names of this constructor's parameters).
        **fields: the ``Context`` fields (merged with a ``context`` mapping; a field given
            both ways is refused).

    Raises:
        PayloadError: the context fields do not validate.

    ``allowed_events`` (python-statemachine's) lists events with a transition from the current
    state *ignoring guards*; ``enabled_events(**data)`` evaluates the guards with the raw data
    given. :meth:`explain` validates the payload first and reports every guard's verdict.
    """

    Context: ClassVar[type[BaseModel] | None] = None
    """The pydantic model of this lifecycle's domain data, or ``None``."""

    payloads: ClassVar[Mapping[str, type[BaseModel]]] = {}
    """Payload models by event id; merged with those of base classes."""

    schema_version: ClassVar[int] = 1
    """Version of this lifecycle's snapshot shape (states and context); bump on breaking change."""

    migrations: ClassVar[Mapping[int, Migration]] = {}
    """Upgrades of older snapshots: ``{1: upgrade_v1}`` takes a snapshot in JSON form from
    ``schema_version`` 1 to 2 (see :data:`lifecyclekit.snapshot.Migration`). Stores apply
    them when they load an older row; ``lifecyclekit migrate`` rewrites the rows.

    .. versionadded:: 0.2
    """

    lifecycle_name: ClassVar[str | None] = None
    """The registry name, set by ``registry.register(name)``; each class has its own (a
    subclass of a registered lifecycle starts with ``None``)."""

    commands: ClassVar[frozenset[str]] = frozenset()
    """Methods that drive this lifecycle besides its events (``DataflowJob.observe``, say);
    :meth:`call` and the store's ``send`` accept them by name."""

    noop_when_finished: ClassVar[frozenset[str]] = frozenset()
    """Events accepted as no-ops once the instance is finished (WorkManager's ``cancel()`` on
    a finished work, say); any other event on a finished instance is refused."""

    provenance: ClassVar[Mapping[tuple[str, str, str], Provenance]] = {}
    """Where each transition comes from, keyed by ``(event, source id, target id)``;
    merged with those of base classes. Read it through :meth:`transition_table`."""

    # Notebooks show a class or an instance as lifecyclekit's diagram (see _display.py).
    _repr_html_ = DISPLAY_HOOKS["_repr_html_"]
    _repr_svg_ = DISPLAY_HOOKS["_repr_svg_"]
    _repr_markdown_ = DISPLAY_HOOKS["_repr_markdown_"]

    _provenance: ClassVar[dict[tuple[str, str, str], Provenance]] = {}
    _payload_models: ClassVar[dict[str, type[BaseModel]]] = {}
    _event_ids: ClassVar[frozenset[str]] = frozenset()
    _state_by_id: ClassVar[dict[str, State]] = {}
    _id_by_value: ClassVar[dict[Any, str]] = {}
    _is_chart: ClassVar[bool] = False
    _history_ids: ClassVar[frozenset[str]] = frozenset()

    fast_path: ClassVar[bool] = True
    """Whether instances may take the compiled event path (see :attr:`on_fast_path`); set it
    to ``False`` to run a class on python-statemachine's engine. A class outside the flat
    subset the compiled path reproduces runs on the engine whatever this says; its
    ``fast_path_reason`` says why."""

    _compiled: _fast.Plan | None = None
    _clock: Clock = staticmethod(utc_now)
    _revision = 0
    _record_at: datetime | None = None
    _record_inferred = False
    _fast_running = True
    _fast_busy = False

    def __init__(  # noqa: C901 - both paths inline: creation is a hot path
        self,
        *,
        clock: Clock | None = None,
        listeners: Iterable[object] | None = None,
        model: Any = None,
        state_field: str = "state",
        context: BaseModel | Mapping[str, Any] | None = None,
        start_value: Any = None,
        **fields: Any,
    ) -> None:
        if clock is not None and not callable(clock):
            msg = f"clock must be a callable returning an aware datetime, got {clock!r}."
            raise TypeError(msg)
        attributes = self.__dict__
        plan = _fast.plan_for(type(self), _MODEL_PROTOTYPE, _RECORDER)
        if (
            plan is not None
            and not listeners
            and state_field == "state"
            and (model is None or type(model) is _StateHolder)
            and (not attributes or plan.accepts(attributes))
        ):
            context = self._build_context(context, fields)
            holder = model if model is not None else _StateHolder()
            attributes["_compiled"] = plan
            attributes["model"] = holder
            attributes["_context"] = context
            attributes["_history"] = []
            if clock is not None:
                attributes["_clock"] = clock
            fresh = holder.state is None
            if (
                fresh
                and start_value is None
                and type(self).initial_state_for.__func__ is not _DEFAULT_INITIAL  # type: ignore[attr-defined]
            ):
                start_value = self._chosen_start(context)
            if start_value is not None:
                attributes["start_configuration_values"] = [start_value]
            if fresh:
                _fast.activate(self, plan, start_value)
                if type(self).when_created is not _NO_CREATED_HOOK:
                    self.when_created()
            return
        if clock is not None:
            self._clock = clock
        self._history: list[Any] = []
        self._context: Any = self._build_context(context, fields)
        fresh = model is None or getattr(model, state_field, None) is None
        if fresh and start_value is None and _picks_initial_state(type(self)):
            start_value = self._chosen_start(self._context)
        super().__init__(
            model=model if model is not None else _StateHolder(),
            state_field=state_field,
            start_value=start_value,
            listeners=[_RECORDER, *(listeners or ())],
        )
        if super().current_state_value is None:
            # psm's async engine only queues the initial activation (see ``is_async``).
            _psm.activate_pending(self)
        if fresh and type(self).when_created is not _NO_CREATED_HOOK:
            self.when_created()

    # -- construction hooks --------------------------------------------------------------

    @classmethod
    def initial_state_for(cls, context: C) -> str | State | None:
        """The state a new instance starts in, chosen from its validated context.

        Override it when the starting state depends on the data (a work with unfinished
        prerequisites starts ``blocked``). Called once per new instance, before the
        instance starts, never on :meth:`restore` or :meth:`from_stored`, nor when the
        constructor is given ``start_value``. The chosen state's entry actions run, as the
        initial state's would. Return a state id (``"blocked"``), the class's ``State``
        (``cls.blocked``), or ``None`` for the declared initial state (the default).

        Raises:
            DefinitionError: (raised for it) the value names no state of the class.

        .. versionadded:: 0.2
        """
        return None

    def when_created(self) -> None:
        """Called once on a new instance, at the end of its construction: its context is
        validated and its starting state entered (entry actions run; for an async
        lifecycle created inside a running loop they wait, see :attr:`is_async`). Never
        called on a restored instance (see :meth:`when_restored`). Does nothing here;
        override it for work a new instance does once: stamp the context, check it
        against the clock. An exception from it fails the construction.

        .. versionadded:: 0.2
        """

    def when_restored(self) -> None:
        """Called once on an instance rebuilt by :meth:`restore` or :meth:`from_stored`
        (stores load instances through them), after its state, context, history and
        revision are set; no entry action ran. Never called on a new instance (see
        :meth:`when_created`). Does nothing here; override it to rebuild what the
        snapshot does not hold (caches, derived fields). An exception from it fails the
        restore.

        .. versionadded:: 0.2
        """

    def _chosen_start(self, context: Any) -> Any:
        """The value of the state :meth:`initial_state_for` chose (``None``: the initial)."""
        cls = type(self)
        chosen = cls.initial_state_for(context)
        if chosen is None:
            return None
        if isinstance(chosen, str) and chosen in cls._state_by_id:
            return cls._state_by_id[chosen].value
        if isinstance(chosen, State) and cls._state_by_id.get(chosen.id) is chosen:
            return chosen.value
        msg = (
            f"{cls.__name__}.initial_state_for returned {chosen!r}, which is not a state of "
            f"{cls.__name__}. Return a state id ({', '.join(cls._state_by_id)}), one of the "
            "class's State attributes, or None for the initial state."
        )
        raise DefinitionError(msg)

    # -- context -------------------------------------------------------------------------

    @classmethod
    def build_context(
        cls, context: BaseModel | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> BaseModel | None:
        """Validate context data exactly as the constructor does (for subclasses whose
        constructor must read the context before the machine starts).

        Raises:
            PayloadError: the data does not validate, or names unknown fields.
        """
        return cls._build_context(context, fields)

    @classmethod
    def _build_context(
        cls, given: BaseModel | Mapping[str, Any] | None, fields: dict[str, Any]
    ) -> BaseModel | None:
        name = cls.__name__
        model = cls.Context
        if model is None:
            if given or fields:
                data = fields or {"context": given}
                errors = [(key, "unexpected field", value) for key, value in data.items()]
                raise PayloadError(
                    name, "context", errors, hint=f"{name} declares no Context model."
                )
            return None
        if isinstance(given, BaseModel) or (given is not None and not isinstance(given, Mapping)):
            if fields or not isinstance(given, model):
                msg = (
                    f"{name}: pass either context={model.__name__}(...), a mapping of its "
                    f"fields, or its fields as keywords, not {type(given).__name__} and "
                    f"{sorted(fields)}."
                )
                raise PayloadError(name, "context", [("context", msg, given)])
            return given
        if given is not None:
            both = sorted(set(given) & set(fields))
            if both:
                errors = [
                    (key, "given both in context= and as a keyword", fields[key]) for key in both
                ]
                raise PayloadError(name, "context", errors, hint="Give each field once.")
            fields = {**given, **fields}
        known = _field_names(model)
        unknown = [
            (key, "unknown context field", fields[key]) for key in fields if key not in known
        ]
        if unknown:
            raise PayloadError(
                name,
                "context",
                unknown,
                hint=f"{model.__name__} fields: {', '.join(sorted(model.model_fields))}.",
            )
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            raise PayloadError(
                name, "context", field_errors(exc), hint=f"The context is {model.__name__}."
            ) from None

    @property
    def context(self) -> C:
        """The validated ``Context`` instance (``None`` when the lifecycle declares none).

        Assign a new ``Context`` instance to replace it whole (for changes whose fields must
        be validated together); anything else is a :class:`PayloadError`.
        """
        context: C = self._context
        return context

    @context.setter
    def context(self, value: C) -> None:
        model = self.Context
        if model is None or not isinstance(value, model):
            expected = model.__name__ if model is not None else "no context"
            msg = f"{type(self).__name__}.context takes a {expected} instance"
            raise PayloadError(type(self).__name__, "context", [("context", msg, value)])
        self._context = value

    # -- state, time and history ---------------------------------------------------------

    @property
    def state(self) -> str:
        """The current state id, e.g. ``"running"``.

        In a statechart (compound, parallel or history states) several states are active at
        once; ``state`` is then the innermost active state that contains all of them: the
        active leaf of nested compound states (``"packing"`` inside ``"fulfilment"``), or the
        parallel state whose regions are active (``"running"``). :attr:`configuration_ids`
        lists every active state.

        An async lifecycle created inside a running event loop is in its initial state
        from the start; only the initial state's entry actions wait for ``await
        lc.activate_initial_state()`` or the first event (see :attr:`is_async`).
        """
        if self._is_chart:
            return _chart.summary(self._active()).id
        try:
            return self._id_by_value[self.current_state_value]
        except KeyError:
            return str(self._current_state().id)

    @property
    def state_value(self) -> Any:
        """The current state's vendor value, e.g. ``"JOB_STATE_RUNNING"`` (the value of
        :attr:`state`, for a statechart too)."""
        if self._is_chart:
            return _chart.summary(self._active()).value
        value = self.current_state_value
        return value if value is not None else self._current_state().value

    @property
    def configuration_ids(self) -> tuple[str, ...]:
        """The ids of every active state, ancestors included, in declaration order: one id
        for a flat lifecycle; ``("fulfilment", "packing")`` or ``("running", "health",
        "healthy", "scaling", "steady")`` in a statechart. :attr:`configuration` holds the
        same states as python-statemachine objects.

        .. versionadded:: 0.2
        """
        if not self._is_chart:
            return (self.state,)
        return tuple(state.id for state in self._active())

    def _active(self) -> list[State]:
        """The active class states, in declaration order (while an async statechart's
        initial activation is pending, the state it starts in)."""
        states = self.states_map
        order = self._state_by_id
        active = [states[value] for value in self.configuration_values]
        if not active:
            return [self._start_state()]
        return sorted(active, key=lambda s: list(order).index(s.id)) if len(active) > 1 else active

    @property
    def is_finished(self) -> bool:
        """Whether the instance is in a final state (no event is accepted any more); in a
        statechart, a top-level final state (a final state inside a compound one only ends
        that region)."""
        if self._is_chart:
            return any(s.final and s.parent is None for s in self._active())
        return bool(self._current_state().final)

    def _current_state(self) -> State:
        """The current state; while an async lifecycle's initial activation is pending (the
        model holds no state yet), the state it starts in."""
        value = self.current_state_value
        return self._start_state() if value is None else self.states_map[value]

    def _start_state(self) -> State:
        starts = self.start_configuration_values
        if starts:
            return self.states_map[starts[0]]
        initial = self.initial_state
        assert initial is not None  # a lifecycle has states (checked at class creation)
        return initial

    @property
    def is_async(self) -> bool:
        """Whether this instance runs on python-statemachine's async engine: its class (or a
        listener) has an ``async def`` callback or guard.

        Inside a running event loop, its events, ``send``, ``call`` and
        ``activate_initial_state()`` return awaitables (``await lc.pay()``), a refusal is
        raised by the ``await``, and :meth:`explain` is :meth:`aexplain`. From sync code
        with no loop running they run to completion as for a sync lifecycle (on
        python-statemachine's per-thread loop). Created inside a running loop, the
        instance is in its initial state at once, but the initial state's entry actions
        run only at ``await lc.activate_initial_state()`` or the first event.
        :meth:`asend` and :meth:`acall` are awaitable for every lifecycle.

        .. versionadded:: 0.2
        """
        return self._compiled is None and _psm.is_async(self)

    @property
    def history(self) -> tuple[TransitionRecord, ...]:
        """Every transition fired by this instance, oldest first."""
        history = self._history
        for index, record in enumerate(history):
            if type(record) is tuple:
                history[index] = _as_record(record)
        return tuple(history)

    @property
    def revision(self) -> int:
        """How many transitions this instance has taken (stores use it for compare-and-set)."""
        return self._revision

    def now(self) -> datetime:
        """The current time from this instance's clock, as an aware UTC ``datetime``.

        Raises:
            ValueError: the clock returned something other than an aware ``datetime``.
        """
        value = self._record_at if self._record_at is not None else self._clock()
        if type(value) is datetime and value.tzinfo is UTC:
            return value
        if not isinstance(value, datetime) or value.utcoffset() is None:
            msg = (
                f"{type(self).__name__}'s clock returned {value!r}; it must return an aware "
                "datetime, e.g. datetime.now(UTC)."
            )
            raise ValueError(msg)
        return value.astimezone(UTC)

    @contextmanager
    def recording(self, *, at: datetime | None = None, inferred: bool = False) -> Iterator[None]:
        """Record the transitions fired inside the block as of ``at``, optionally inferred.

        For changes reported by an outside system with their own time (``at`` becomes the
        records' ``at`` and what :meth:`now` returns inside the block, so time guards judge
        as of then), and for transitions a lifecycle infers rather than sees.

        Raises:
            ValueError: ``at`` is not an aware ``datetime``.
        """
        if at is not None and (not isinstance(at, datetime) or at.utcoffset() is None):
            msg = f"at must be an aware datetime, got {at!r}."
            raise ValueError(msg)
        saved = (self._record_at, self._record_inferred)
        self._record_at, self._record_inferred = at, inferred
        try:
            yield
        finally:
            self._record_at, self._record_inferred = saved

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """All or nothing: if the block raises, state, context, history and revision return
        to what they were when it began (callbacks' own side effects are not undone).

        For commands that fire several events (an inferred path, a sync, a propagation through
        a graph of works) and must not stop half-way.
        """
        state = self.current_state_value
        if self._is_chart:
            state = _psm.OrderedSet(self.configuration_values)
            memory = {key: list(found) for key, found in self.history_values.items()}
        context = self._context.model_copy(deep=True) if self._context is not None else None
        length, revision = len(self._history), self._revision
        try:
            yield
        except BaseException:
            if self._is_chart:
                self.history_values.clear()
                self.history_values.update(memory)
                if _psm.OrderedSet(self.configuration_values) != state:
                    self.current_state_value = state
                    self._set_running(not self.is_finished)
            elif self.current_state_value != state:
                if state is None:  # an async lifecycle's pending activation ran in the block
                    state = self._start_state().value
                self.current_state_value = state
                # Entering a final state stopped the engine; the restored state is live.
                self._set_running(not self.states_map[state].final)
            self._context = context
            del self._history[length:]
            self._revision = revision
            raise

    def _record_transition(
        self, event: str, source: State, target: State | None, payload: Any
    ) -> None:
        self._append_record(str(event), source.id, (target or source).id, payload)

    def _append_record(self, event: str, source: str, target: str, payload: Any) -> None:
        values = self.__dict__
        values["_revision"] = self._revision + 1
        history = self._history
        if history:
            last = history[-1]
            seq = (last[0] if type(last) is tuple else last.seq) + 1
        else:
            seq = 1
        # Kept as a tuple until history is read: a TransitionRecord costs more than the rest
        # of an event.
        history.append(
            (
                seq,
                event,
                source,
                target,
                dump_payload(payload) if isinstance(payload, BaseModel) else None,
                self.now(),
                self._record_inferred,
            )
        )

    # -- the compiled path and python-statemachine's engine ------------------------------

    @property
    def on_fast_path(self) -> bool:
        """Whether this instance runs events on the compiled path (``False``: on
        python-statemachine's engine, for its class or since it was given listeners, a model
        of its own, or asked for psm's per-instance machinery).

        .. versionadded:: 0.2
        """
        return self._compiled is not None

    @classmethod
    def _fast_path_reason(cls) -> str | None:
        return _fast.reason_for(cls, _MODEL_PROTOTYPE, _RECORDER)

    def _start_engine(self, name: str) -> None:
        """Leave the compiled path for good: build psm's per-instance machinery (something
        asked for ``name``), carrying over the state, the running flag and waiting events."""
        plan = self.__dict__.pop("_compiled", None)
        if plan is None:
            return
        values = self.__dict__
        running = values.pop("_fast_running", True)
        waiting = [
            (trigger, internal)
            for key, internal in (("_fast_internal", True), ("_fast_queue", False))
            for trigger in values.pop(key, None) or ()
        ]
        in_step = bool(values.pop("_fast_busy", False))
        values.pop("_instance_states", None)
        _psm.start_engine(self, [_RECORDER], running, in_step)
        for trigger, internal in waiting:
            _psm.requeue(self, trigger.trigger_data(self), internal)

    def _set_running(self, running: bool) -> None:
        if self._compiled is not None:
            self.__dict__["_fast_running"] = running
        else:
            _psm.set_engine_running(self, running)

    def _instance_state(self, value: Any) -> Any:
        """psm's ``InstanceState`` of the state ``value`` (compiled path: built on demand)."""
        states = self.__dict__.get("_instance_states")
        if states is None:
            states = self.__dict__["_instance_states"] = {}
        view = states.get(value)
        if view is None:
            view = states[value] = _psm.instance_state(self.states_map[value], self, states)
        return view

    def _ist(self) -> Any:
        return self._instance_state(self.model.state)

    def _send_compiled(self, event: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``m.<event>(...)`` on the compiled path (psm's ``BoundEvent.__call__``)."""
        if kwargs:
            if "send_id" in kwargs:
                self._start_engine("send_id")
                return event(*args, **kwargs)
            if "machine" in kwargs:
                _psm.build_trigger_error(event, self, args, kwargs)
            kwargs = _psm.drop_event_data_kwargs(kwargs)
        plan = self._compiled
        assert plan is not None
        name = event.name
        return _fast.send(self, _fast.Trigger(event, event.id, name, args, kwargs))

    def send(
        self,
        event: str,
        *args: Any,
        delay: float | None = None,
        send_id: str | None = None,
        internal: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send the event ``event`` with ``args`` and ``kwargs`` (python-statemachine's
        ``send``; ``delay`` and ``send_id`` move the instance to psm's engine)."""
        plan = self._compiled
        if plan is None or send_id is not None or delay:
            if plan is not None:
                self._start_engine("send")
            return super().send(
                event, *args, delay=delay, send_id=send_id, internal=internal, **kwargs
            )
        if event in plan.event_ids and event not in self.__dict__:
            name: str | None = plan.event_names[event]
            internal = bool(internal)
        else:
            known = getattr(self, event, None)
            name = known.name if known else event
            if known and known.delay:
                self._start_engine("send")
                return super().send(event, *args, internal=internal, **kwargs)
            if internal is None:
                internal = bool(known and known.internal)
        if kwargs:
            if "machine" in kwargs:
                _psm.build_trigger_error(event, self, args, kwargs)
            kwargs = _psm.drop_event_data_kwargs(kwargs)
        return _fast.send(self, _fast.Trigger(None, event, name, args, kwargs, internal))

    @property
    def current_state_value(self) -> Any:
        """The current state's value as the model holds it (python-statemachine's)."""
        if self._compiled is not None:
            return self.model.state
        return super().current_state_value

    @current_state_value.setter
    def current_state_value(self, value: Any) -> None:
        if self._compiled is not None and not isinstance(value, AbstractSet):
            if value is not None and value not in self.states_map:
                raise _psm.invalid_state_value(value)
            self.model.state = value
            return
        StateChart.current_state_value.fset(self, value)  # type: ignore[attr-defined]

    @property
    def configuration(self) -> Any:
        """The active states (python-statemachine's ``OrderedSet`` of ``InstanceState``)."""
        if self._compiled is not None:
            value = self.model.state
            return _psm.OrderedSet(() if value is None else (self._instance_state(value),))
        return StateChart.configuration.fget(self)  # type: ignore[attr-defined]

    @configuration.setter
    def configuration(self, states: Any) -> None:
        if self._compiled is not None:
            values = [state.value for state in states]
            if len(values) <= 1:
                self.current_state_value = values[0] if values else None
                return
        StateChart.configuration.fset(self, states)  # type: ignore[attr-defined]

    @property
    def configuration_values(self) -> Any:
        """The active states' values (python-statemachine's)."""
        if self._compiled is not None:
            value = self.model.state
            return _psm.OrderedSet(() if value is None else (value,))
        return StateChart.configuration_values.fget(self)  # type: ignore[attr-defined]

    @property
    def is_terminated(self) -> bool:
        """Whether a final state was entered and the machine stopped (python-statemachine's)."""
        if self._compiled is not None:
            return not self._fast_running
        return bool(StateChart.is_terminated.fget(self))  # type: ignore[attr-defined]

    @property
    def active_listeners(self) -> list[object]:
        """The listeners of this instance (python-statemachine's)."""
        if self._compiled is not None:
            return [_RECORDER]
        return list(StateChart.active_listeners.fget(self))  # type: ignore[attr-defined]

    def enabled_events(self, *args: Any, **kwargs: Any) -> Any:
        """Events with a transition from the current state whose guards pass with the data
        given (python-statemachine's)."""
        plan = self._compiled
        if plan is not None:
            return _fast.enabled_events(self, plan, args, kwargs)
        return super().enabled_events(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        if self._compiled is not None:
            self._start_engine("__getstate__")
        return super().__getstate__()  # type: ignore[no-untyped-call,no-any-return]

    def after_commit(self, record: TransitionRecord) -> None:
        """Called by a store once per record it committed, after the commit, in the process
        that committed it; never for an attempt that lost a race or was refused. The place
        for effects that must happen once per transition (callbacks that run inside the
        event may run again when the store retries a conflicting write). Does nothing here;
        override it.

        .. versionadded:: 0.2
        """

    def check_delete(self) -> None:
        """Called by a store's ``delete`` with the stored instance, inside the deleting
        transaction, before the row is removed: raise (``self.rejection("delete", why)``) to
        refuse, and nothing is deleted. Allows every delete here; override it.

        .. versionadded:: 0.2
        """

    # -- typed events and explanations (engine hooks) ------------------------------------

    def _admit_event(
        self, event_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if event_id in self.noop_when_finished and self.is_finished:
            return None
        if event_id in self._event_ids:
            model = self._payload_models.get(event_id)
            if model is None and not args and not kwargs:
                return (), {}
            return (), validate_payload(type(self).__name__, event_id, model, args, kwargs)
        return args, kwargs

    def _refusal(self, event: Event | None, kwargs: dict[str, Any]) -> TransitionRejected:
        event_id = event.id if event is not None else ""
        if self.is_async and not _psm.loop_running():
            # A sync call of an async lifecycle: its guards are awaited on psm's loop too.
            explanation = _psm.run_sync(abuild_explanation(self, event_id, kwargs))
        else:
            explanation = build_explanation(self, event_id, kwargs)
        return TransitionRejected(explanation, set(self.configuration), event)

    async def _arefusal(self, event: Event | None, kwargs: dict[str, Any]) -> TransitionRejected:
        event_id = event.id if event is not None else ""
        explanation = await abuild_explanation(self, event_id, kwargs)
        return TransitionRejected(explanation, set(self.configuration), event)

    def _is_refusal(self, error: Exception) -> bool:
        return isinstance(error, TransitionRejected)

    def _guard_calls(self, transition: Transition) -> list[tuple[str, bool, Callable[..., Any]]]:
        """The guards of ``transition``: ``(name, expected value, raw callable)``, in order."""
        plan = self._compiled
        if plan is not None:
            return plan.guard_calls(self, transition)
        return _psm.guard_calls(self, transition)

    def call(self, name: str, /, *args: Any, **data: Any) -> Any:
        """Fire the event ``name``, or run the command ``name``, with ``data``.

        Raises:
            TransitionRejected: ``name`` is neither an event nor a declared command (the
                message lists both), or the event is refused.
            PayloadError: the data does not validate, or does not fit the command's
                parameters (missing, surplus or unknown arguments).
        """
        if name in self._event_ids:
            return self.send(name, *args, **data)
        if name in self.commands:
            command = getattr(self, name)
            bind_command(type(self).__name__, name, command, args, data)
            return command(*args, **data)
        events = ", ".join(sorted(self._event_ids)) or "none"
        commands = ", ".join(sorted(self.commands)) or "none"
        action = f"call {name!r} on"
        reason = f"it is neither an event nor a command. Events: {events}. Commands: {commands}."
        raise self.rejection(action, reason)

    async def acall(self, name: str, /, *args: Any, **data: Any) -> Any:
        """:meth:`call`, awaitable for every lifecycle: awaits the event of an async one
        (inside a running loop), returns a sync one's result as is. What an async store
        (or any async code driving lifecycles it does not know) calls.

        Raises:
            TransitionRejected: as :meth:`call`, with every guard's verdict (async guards
                awaited).
            PayloadError: the data does not validate (before any guard runs).

        .. versionadded:: 0.2
        """
        result = self.call(name, *args, **data)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def asend(self, event: str, /, *args: Any, **data: Any) -> Any:
        """:meth:`send`, awaitable for every lifecycle (see :meth:`acall`).

        .. versionadded:: 0.2
        """
        result = self.send(event, *args, **data)
        if inspect.isawaitable(result):
            result = await result
        return result

    def rejection(self, action: str, reason: str) -> TransitionRejected:
        """Build the refusal a lifecycle's own command raises, worded like the built-in ones:
        ``Can't <action> <Machine> in <STATE_VALUE>: <reason>``.

        Args:
            action: what was attempted (an event id, or a command like ``"observe"``).
            reason: why it is refused.
        """
        explanation = build_explanation(self, str(action), {})
        message = f"Can't {action} {type(self).__name__} in {self.state_value}: {reason}"
        return TransitionRejected(explanation, set(self.configuration), message=message)

    def explain(self, event: str, /, *args: Any, **data: Any) -> Explanation:
        """Say what ``event`` would do now, evaluating every guard, without firing it.

        The data is validated as the event call would validate it.

        Raises:
            PayloadError: the data does not validate against the event's payload model.
            AsyncRequired: a guard of the event is async; use :meth:`aexplain`.
        """
        return build_explanation(self, str(event), self._explain_data(str(event), args, data))

    async def aexplain(self, event: str, /, *args: Any, **data: Any) -> Explanation:
        """:meth:`explain`, awaiting async guards (for lifecycles with ``async def`` guards;
        works for every lifecycle).

        Raises:
            PayloadError: the data does not validate against the event's payload model.

        .. versionadded:: 0.2
        """
        event_id = str(event)
        return await abuild_explanation(self, event_id, self._explain_data(event_id, args, data))

    def _explain_data(
        self, event_id: str, args: tuple[Any, ...], data: dict[str, Any]
    ) -> dict[str, Any]:
        if event_id in self._event_ids:
            return validate_payload(
                type(self).__name__, event_id, self._payload_models.get(event_id), args, data
            )
        return data

    # -- introspection -------------------------------------------------------------------

    @classmethod
    def transition_table(cls) -> list[TransitionInfo]:
        """Every transition as data, in declaration order: event, source, target, guards,
        payload model and provenance (for ``show``, diagrams, docs and tests)."""
        return transition_table(cls)

    # -- snapshots -----------------------------------------------------------------------

    @classmethod
    def machine_key(cls) -> str:
        """The name snapshots record: the class's own registry name, else ``module:QualName``
        (a subclass of a registered lifecycle is not its base: register it under its own
        name to store it)."""
        return cls.lifecycle_name or f"{cls.__module__}:{cls.__qualname__}"

    def snapshot(self) -> Snapshot:
        """This instance as data: state id, context, history and revision.

        The result round-trips through JSON (``snapshot.model_dump_json()`` and
        ``Snapshot.model_validate_json``) and :meth:`restore` rebuilds the instance.
        """
        context = self._context
        chart: dict[str, Any] = {}
        if self._is_chart:
            chart["configuration"] = self.configuration_ids
            memory = _chart.dump_memory(self.history_values)
            chart["history_states"] = memory or None
        return Snapshot.model_construct(
            machine=self.machine_key(),
            schema_version=self.schema_version,
            state=self.state,
            context=context.model_dump(mode="json") if context is not None else None,
            history=self.history,
            revision=self._revision,
            **chart,
        )

    @classmethod
    def restore(
        cls,
        snapshot: Snapshot | Mapping[str, Any] | str | bytes,
        *,
        clock: Clock | None = None,
        listeners: Iterable[object] | None = None,
    ) -> Self:
        """Rebuild an instance from a snapshot, in its state, without running entry actions.

        Args:
            snapshot: a :class:`Snapshot`, its ``model_dump()`` or its JSON.
            clock: the clock of the rebuilt instance.
            listeners: python-statemachine listeners for the rebuilt instance.

        Raises:
            SnapshotError: the snapshot is malformed, names another machine, an unknown
                state or another schema version, or its context does not validate.
        """
        snap = coerce_snapshot(snapshot)
        if snap.machine != cls.machine_key():
            msg = (
                f"Snapshot is of lifecycle {snap.machine!r}, not {cls.machine_key()!r}: an "
                "instance is restored as the exact class that took it, never a base class or a "
                f"subclass. Restore it with registry.restore(snapshot) or {snap.machine}'s class."
            )
            raise SnapshotError(msg)
        if snap.schema_version != cls.schema_version:
            msg = (
                f"Snapshot of {snap.machine!r} has schema_version {snap.schema_version}, but "
                f"{cls.__name__} is at schema_version {cls.schema_version}; migrate the "
                "snapshot before restoring it."
            )
            raise SnapshotError(msg)
        state = cls._state_by_id.get(snap.state)
        if state is None:
            msg = (
                f"Snapshot of {snap.machine!r} is in unknown state {snap.state!r}. "
                f"States of {cls.__name__}: {', '.join(cls._state_by_id)}."
            )
            raise SnapshotError(msg)
        check_history(snap)
        what = f"Snapshot of {snap.machine!r}"
        holder, memory = cls._chart_holder(what, state, snap.configuration, snap.history_states)
        if cls._is_chart and snap.history:
            cls._check_last_target(what, snap.history[-1], holder)
        context = cls._restore_context(snap)
        instance = cls(clock=clock, listeners=listeners, model=holder, context=context)
        if memory:
            instance.history_values.update(memory)
        values = instance.__dict__
        values["_history"] = list(snap.history)
        values["_revision"] = snap.revision
        if cls.when_restored is not _NO_RESTORED_HOOK:
            instance.when_restored()
        return instance

    @classmethod
    def from_stored(
        cls,
        state: str,
        context: str | bytes | Mapping[str, Any] | None,
        *,
        revision: int,
        last: TransitionRecord | None = None,
        schema_version: int | None = None,
        clock: Clock | None = None,
        configuration: Sequence[str] | None = None,
        history_states: Mapping[str, Sequence[str]] | None = None,
    ) -> Self:
        """Rebuild an instance from a stored row, without a :class:`Snapshot` round trip.

        For stores: ``state`` and ``revision`` as stored, the context as the stored JSON
        (validated once, with ``model_validate_json``) or a dict, and optionally the last
        history record. Like :meth:`restore`, no entry action runs and the class's
        constructor (and a subclass's) runs with the rebuilt context; the instance takes
        the compiled event path when its class does.

        Args:
            state: the state id.
            context: the context as JSON text, a dict, or ``None`` for no context.
            revision: how many transitions the instance has taken.
            last: the last history record (``history`` then holds it alone), if any.
            schema_version: the row's schema version, checked against the class's.
            clock: the clock of the rebuilt instance.
            configuration: a statechart's active state ids (see :class:`Snapshot`).
            history_states: what a statechart's history states remember.

        Raises:
            SnapshotError: an unknown state, another schema version, a last record that
                does not end in ``state`` (a statechart: in its configuration) or passes
                ``revision``, an impossible configuration, or a context that does not
                validate.

        .. versionadded:: 0.2
        """
        name = cls.machine_key()
        if schema_version is not None and schema_version != cls.schema_version:
            msg = (
                f"Stored {name!r} has schema_version {schema_version}, but {cls.__name__} is "
                f"at schema_version {cls.schema_version}; migrate it before loading it."
            )
            raise SnapshotError(msg)
        found = cls._state_by_id.get(state)
        if found is None:
            msg = (
                f"Stored {name!r} is in unknown state {state!r}. "
                f"States of {cls.__name__}: {', '.join(cls._state_by_id)}."
            )
            raise SnapshotError(msg)
        holder, memory = cls._chart_holder(
            f"Stored {name!r}", found, configuration, history_states
        )
        if last is not None and (
            last.seq > revision
            or (cls._is_chart and not cls._ends_in(last, holder))
            or (not cls._is_chart and last.target != state)
        ):
            msg = (
                f"Stored {name!r} is in state {state!r} at revision {revision}, but its last "
                f"history record is #{last.seq} ending in {last.target!r}."
            )
            raise SnapshotError(msg)
        instance = cls(clock=clock, model=holder, context=cls._stored_context(context))
        if memory:
            instance.history_values.update(memory)
        values = instance.__dict__
        values["_history"] = [last] if last is not None else []
        values["_revision"] = revision
        if cls.when_restored is not _NO_RESTORED_HOOK:
            instance.when_restored()
        return instance

    @classmethod
    def _chart_holder(
        cls,
        what: str,
        state: State,
        configuration: Sequence[str] | None,
        history_states: Mapping[str, Sequence[str]] | None,
    ) -> tuple[_StateHolder, dict[str, list[State]]]:
        """The state holder a restored instance starts with, and its history memory."""
        name = cls.__name__
        if not cls._is_chart:
            if configuration is not None and tuple(configuration) != (state.id,):
                msg = (
                    f"{what} has the configuration {list(configuration)!r}, but {name} is not "
                    f"a statechart: its one active state is {state.id!r}."
                )
                raise SnapshotError(msg)
            if history_states:
                msg = f"{what} remembers history states, but {name} has none."
                raise SnapshotError(msg)
            return _StateHolder(state.value), {}
        states = cls._state_by_id
        if configuration is None:
            active = _chart.derive_configuration(state)
            if active is None:
                msg = (
                    f"{what} is in {state.id!r} without a configuration, but in {name} that "
                    "state does not say which states are active (it is compound, parallel or "
                    "inside a parallel state). Take snapshots with Lifecycle.snapshot()."
                )
                raise SnapshotError(msg)
        else:
            active = _chart.check_configuration(what, configuration, states, name)
            summary = _chart.summary(active)
            if summary is not state:
                msg = (
                    f"{what} is in state {state.id!r}, but its configuration "
                    f"{[s.id for s in active]} is in {summary.id!r}."
                )
                raise SnapshotError(msg)
        memory = _chart.check_memory(what, history_states or {}, states, name)
        return _StateHolder(_psm.OrderedSet(s.value for s in active)), memory

    @classmethod
    def _ends_in(cls, record: TransitionRecord, holder: _StateHolder) -> bool:
        """A statechart's last record ends in an active state (or a history state of one)."""
        active = {cls._id_by_value[value] for value in holder.state}
        target = cls._state_by_id.get(record.target)
        if target is None:
            return any(h.id == record.target for s in active for h in cls._state_by_id[s].history)
        return record.target in active

    @classmethod
    def _check_last_target(cls, what: str, record: TransitionRecord, holder: _StateHolder) -> None:
        if not cls._ends_in(record, holder):
            msg = (
                f"{what} has the configuration {sorted(map(str, holder.state))}, but its last "
                f"history record ends in {record.target!r}."
            )
            raise SnapshotError(msg)

    @classmethod
    def _stored_context(cls, data: str | bytes | Mapping[str, Any] | None) -> BaseModel | None:
        model = cls.Context
        name = cls.machine_key()
        if model is None:
            if data and data not in ("null", b"null", "{}", b"{}"):
                msg = f"Stored {name!r} has a context, but {cls.__name__} has none."
                raise SnapshotError(msg)
            return None
        try:
            if isinstance(data, str | bytes):
                return model.model_validate_json(data)
            return model.model_validate(data or {})
        except ValidationError as exc:
            details = "; ".join(f"{f}: {m} (got {v!r})" for f, m, v in field_errors(exc))
            msg = f"Stored {name!r} has an invalid context: {details}."
            raise SnapshotError(msg) from None

    @classmethod
    def _restore_context(cls, snap: Snapshot) -> BaseModel | None:
        model = cls.Context
        if model is None:
            if snap.context:
                msg = f"Snapshot of {snap.machine!r} has a context, but {cls.__name__} has none."
                raise SnapshotError(msg)
            return None
        try:
            return model.model_validate(snap.context or {})
        except ValidationError as exc:
            details = "; ".join(f"{f}: {m} (got {v!r})" for f, m, v in field_errors(exc))
            msg = f"Snapshot of {snap.machine!r} has an invalid context: {details}."
            raise SnapshotError(msg) from None


_NO_CREATED_HOOK = Lifecycle.when_created
_NO_RESTORED_HOOK = Lifecycle.when_restored
"""Lifecycle's own (empty) hooks, by identity: a class that keeps them is not called back
(no call on the hot paths of create and restore)."""


def _picks_initial_state(cls: type[Lifecycle]) -> bool:
    """Whether ``cls`` overrides :meth:`Lifecycle.initial_state_for` (inlined where hot)."""
    return cls.initial_state_for.__func__ is not _DEFAULT_INITIAL  # type: ignore[attr-defined]


_DEFAULT_INITIAL = Lifecycle.initial_state_for.__func__  # type: ignore[attr-defined]
