"""The metaclass of ``Lifecycle``: python-statemachine's class, then lifecyclekit's tables.

At class creation it refuses non-strict lifecycles, checks the ``Context`` model and the
payload and provenance tables, and builds the per-class lookups the engine hooks use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast, get_args, get_origin

from pydantic import BaseModel

import lifecyclekit._fast as _fast
from lifecyclekit._psm import StateMachineMetaclass
from lifecyclekit.errors import DefinitionError
from lifecyclekit.payloads import build_payload_table
from lifecyclekit.transitions import Provenance, all_states, edges

if TYPE_CHECKING:
    from lifecyclekit.lifecycle import Lifecycle

__all__ = ["CONSTRUCTOR_ARGS", "LifecycleMeta"]

CONSTRUCTOR_ARGS = frozenset(
    {"clock", "listeners", "model", "state_field", "context", "start_value"}
)
"""Keyword arguments of ``Lifecycle.__init__`` itself; no context field may take these names."""


class LifecycleMeta(StateMachineMetaclass):
    """Builds python-statemachine's class, then lifecyclekit's per-class tables and checks."""

    def __init__(cls, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> None:
        super().__init__(name, bases, attrs)  # type: ignore[arg-type]
        lifecycle = cast("type[Lifecycle]", cls)
        if lifecycle.allow_event_without_transition:
            msg = (
                f"{name} sets allow_event_without_transition = True; lifecycles are strict: an "
                "event with no transition must raise. Remove the attribute."
            )
            raise DefinitionError(msg)
        if "lifecycle_name" not in attrs:
            # A registry name belongs to the class registered under it, never to subclasses:
            # an application's subclass is stored and reloaded as itself, not as its base.
            lifecycle.lifecycle_name = None
        _context_from_type_argument(name, lifecycle, attrs)
        _check_context(name, lifecycle.Context)
        declared: dict[str, type[BaseModel]] = {}
        for klass in reversed(cls.__mro__):
            declared.update(vars(klass).get("payloads", None) or {})
        states = list(lifecycle.states)
        lifecycle._event_ids = frozenset(str(event) for event in lifecycle._events)
        lifecycle._payload_models = (
            build_payload_table(name, declared, set(lifecycle._event_ids)) if states else {}
        )
        every = list(all_states(lifecycle)) if states else []
        lifecycle._state_by_id = {state.id: state for state in every}
        lifecycle._id_by_value = {state.value: state.id for state in every}
        lifecycle._history_ids = frozenset(
            history.id for state in every for history in state.history
        )
        lifecycle._is_chart = any(s.states or s.parallel for s in every) or bool(
            lifecycle._history_ids
        )
        provenance: dict[tuple[str, str, str], Provenance] = {}
        for klass in reversed(cls.__mro__):
            provenance.update(vars(klass).get("provenance", None) or {})
        lifecycle._provenance = _check_provenance(name, provenance, lifecycle) if states else {}
        _fast.invalidate()

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        _fast.invalidate()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        _fast.invalidate()

    @property
    def fast_path_reason(cls) -> str | None:
        """Why this class runs on python-statemachine's engine rather than the compiled event
        path, or ``None`` when its instances take the compiled path.

        .. versionadded:: 0.2
        """
        lifecycle = cast("type[Lifecycle]", cls)
        return lifecycle._fast_path_reason()


def _check_provenance(
    name: str, table: Mapping[tuple[str, str, str], Provenance], cls: type[Lifecycle]
) -> dict[tuple[str, str, str], Provenance]:
    declared = {
        (event, source.id, (transition.target or source).id)
        for event, source, transition in edges(cls)
    }
    unknown = sorted(set(table) - declared)
    if unknown:
        msg = (
            f"{name}.provenance names transitions that {name} does not have: "
            f"{', '.join(f'{e} {s}->{t}' for e, s, t in unknown)}. Keys are "
            "(event, source state id, target state id)."
        )
        raise DefinitionError(msg)
    for key, value in table.items():
        if not isinstance(value, Provenance):
            msg = f"{name}.provenance[{key!r}] must be a lifecyclekit.Provenance, got {value!r}."
            raise DefinitionError(msg)
    return dict(table)


def _context_from_type_argument(name: str, cls: type[Lifecycle], attrs: dict[str, Any]) -> None:
    """``class Build(Lifecycle[BuildContext])`` declares ``Context = BuildContext``."""
    arguments = [
        arg
        for base in attrs.get("__orig_bases__", ())
        for arg in get_args(base)
        if isinstance(get_origin(base), LifecycleMeta)
    ]
    models = [arg for arg in arguments if isinstance(arg, type) and issubclass(arg, BaseModel)]
    if not models:
        return
    declared = attrs.get("Context")
    if declared is not None and declared is not models[0]:
        msg = (
            f"{name} is Lifecycle[{models[0].__name__}] but sets Context = "
            f"{getattr(declared, '__name__', declared)!r}; keep one of the two."
        )
        raise DefinitionError(msg)
    cls.Context = models[0]


def _check_context(name: str, context: object) -> None:
    if context is None:
        return
    if not (isinstance(context, type) and issubclass(context, BaseModel)):
        msg = f"{name}.Context must be a pydantic BaseModel subclass or None, got {context!r}."
        raise DefinitionError(msg)
    clashes = sorted(CONSTRUCTOR_ARGS & set(context.model_fields))
    if clashes:
        msg = (
            f"{name}.Context field(s) {', '.join(map(repr, clashes))} clash with the "
            f"constructor's own keyword arguments ({', '.join(sorted(CONSTRUCTOR_ARGS))}). "
            "Rename them."
        )
        raise DefinitionError(msg)
