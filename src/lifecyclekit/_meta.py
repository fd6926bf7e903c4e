"""The metaclass of ``Lifecycle``: python-statemachine's class, then lifecyclekit's tables.

At class creation it refuses non-strict lifecycles, checks the ``Context`` model and the
payload and provenance tables, and builds the per-class lookups the engine hooks use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from lifecyclekit._psm import StateMachineMetaclass
from lifecyclekit.errors import DefinitionError
from lifecyclekit.payloads import build_payload_table
from lifecyclekit.transitions import Provenance, edges

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
        _check_context(name, lifecycle.Context)
        declared: dict[str, type[BaseModel]] = {}
        for klass in reversed(cls.__mro__):
            declared.update(vars(klass).get("payloads", None) or {})
        states = list(lifecycle.states)
        lifecycle._event_ids = frozenset(str(event) for event in lifecycle._events)
        lifecycle._payload_models = (
            build_payload_table(name, declared, set(lifecycle._event_ids)) if states else {}
        )
        lifecycle._state_by_id = {state.id: state for state in states}
        lifecycle._id_by_value = {state.value: state.id for state in states}
        provenance: dict[tuple[str, str, str], Provenance] = {}
        for klass in reversed(cls.__mro__):
            provenance.update(vars(klass).get("provenance", None) or {})
        lifecycle._provenance = _check_provenance(name, provenance, lifecycle) if states else {}


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
