"""Lifecycles to and from python-statemachine's declarative statechart document.

python-statemachine loads documents (``statemachine.io.load``) but has no exporter; its JSON
Schema (``statemachine/io/schemas/statechart.schema.json``) forbids extra keys at the root,
on states and on transitions. So :func:`to_document` writes only what the schema allows
(states, initial/final flags, transitions with event, target and guards *by name*), and
lifecyclekit's extras (state values, provenance, payload and context JSON Schemas) travel in a
companion document beside it (``to_document(cls, extras=True)``).

:func:`from_document` builds a *strict* :class:`~lifecyclekit.Lifecycle` from a document,
binding guard names to callables and refusing names it cannot bind (``load()`` builds a
lenient class where an undefined guard silently blocks its transition).
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from statemachine import HistoryState, State

from lifecyclekit.errors import DefinitionError, optional_import
from lifecyclekit.lifecycle import Lifecycle
from lifecyclekit.transitions import Provenance, all_states

__all__ = ["EXTRAS_VERSION", "from_document", "to_document", "to_json", "to_yaml"]

EXTRAS_VERSION = 1


def _name_of(cls: type[Lifecycle]) -> str:
    return cls.lifecycle_name or cls.__name__


def _entry(state: State, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A state's document entry; compound and parallel states nest theirs (``states``,
    ``parallel``, ``history`` with its default transition), as ``statemachine.io`` reads."""
    entry = entries[state.id]
    if state.initial and (state.parent is None or not state.parent.parallel):
        entry["initial"] = True
    if state.final:
        entry["final"] = True
    if state.parallel:
        entry["parallel"] = True
    if state.states:
        entry["states"] = {child.id: _entry(child, entries) for child in state.states}
    if state.history:
        entry["history"] = {
            history.id: {
                **({"type": "deep"} if history.type.value == "deep" else {}),
                **(
                    {"transitions": [{"target": t.target.id} for t in history.transitions]}
                    if history.transitions
                    else {}
                ),
            }
            for history in state.history
        }
    return entry


def _document(cls: type[Lifecycle]) -> dict[str, Any]:
    entries: dict[str, dict[str, Any]] = {state.id: {} for state in all_states(cls)}
    for row in cls.transition_table():
        transition: dict[str, Any] = {"event": row.event, "target": row.target}
        cond = [g.name for g in row.guards if not g.negated]
        unless = [g.name for g in row.guards if g.negated]
        if cond:
            transition["cond"] = cond
        if unless:
            transition["unless"] = unless
        entries[row.source].setdefault("transitions", []).append(transition)
    states = {state.id: _entry(state, entries) for state in cls.states}
    document: dict[str, Any] = {"name": _name_of(cls), "states": states}
    summary = (cls.__doc__ or "").strip().split("\n")[0]
    if summary:
        document["description"] = summary
    return document


def _schema(model: Any) -> dict[str, Any] | None:
    try:
        return dict(model.model_json_schema())
    except Exception:  # noqa: BLE001 - `lifecyclekit check` reports models without a schema
        return None


def _extras(cls: type[Lifecycle]) -> dict[str, Any]:
    return {
        "lifecyclekit": EXTRAS_VERSION,
        "machine": _name_of(cls),
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "values": {s.id: s.value for s in all_states(cls)},
        "provenance": [
            {"event": r.event, "source": r.source, "target": r.target} | r.provenance.model_dump()
            for r in cls.transition_table()
            if r.provenance is not None
        ],
        "payloads": {event: _schema(model) for event, model in cls._payload_models.items()},
        "context": _schema(cls.Context) if cls.Context is not None else None,
    }


def to_document(cls: type[Lifecycle], *, extras: bool = False) -> Any:
    """The lifecycle as a python-statemachine statechart document (a dict).

    Args:
        cls: the lifecycle class.
        extras: also return lifecyclekit's companion document, as ``(document, extras)``.
    """
    document = _document(cls)
    return (document, _extras(cls)) if extras else document


def to_json(cls: type[Lifecycle], *, extras: bool = False) -> str:
    """:func:`to_document` as JSON text (``{"document": ..., "extras": ...}`` with extras)."""
    if extras:
        document, companion = to_document(cls, extras=True)
        return json.dumps({"document": document, "extras": companion}, indent=2, default=str)
    return json.dumps(to_document(cls), indent=2)


def to_yaml(cls: type[Lifecycle], *, extras: bool = False) -> str:
    """:func:`to_document` as YAML (needs PyYAML: ``pip install 'lifecyclekit[yaml]'``)."""
    yaml = optional_import(
        "yaml", extra="yaml", feature="YAML export", more="JSON export needs nothing"
    )
    data = json.loads(to_json(cls, extras=extras))
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _walk(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every ``(state id, entry)`` of a document, nested states after their parent."""
    for state_id, spec in states.items():
        yield state_id, spec
        yield from _walk(spec.get("states") or {})


def _guard_names(document: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for _, state in _walk(document.get("states", {})):
        for transition in state.get("transitions", []):
            for key in ("cond", "unless"):
                value = transition.get(key, [])
                names.update([value] if isinstance(value, str) else value)
    return names


def _build_state(
    state_id: str, spec: Mapping[str, Any], values: Mapping[str, Any], built: dict[str, Any]
) -> State:
    """A document entry as a ``State``; a compound or parallel one through
    python-statemachine's own class DSL (``State.Compound``/``State.Parallel``), its
    children and history states (in ``built``) inside."""
    flags: dict[str, Any] = {
        "initial": bool(spec.get("initial")),
        "final": bool(spec.get("final")),
        "value": values.get(state_id),
    }
    children = spec.get("states") or {}
    if not children:
        state = built[state_id] = State(**flags)
        return state
    body: dict[str, Any] = {
        child_id: _build_state(child_id, child, values, built)
        for child_id, child in children.items()
    }
    for history_id, history_spec in (spec.get("history") or {}).items():
        kind = (history_spec or {}).get("type", "shallow")
        body[history_id] = built[history_id] = HistoryState(type=kind)
    base = State.Parallel if spec.get("parallel") else State.Compound
    # NestedStateFactory (State.Compound's metaclass) returns a State, not a class.
    nested = cast("State", types.new_class(state_id, (base,), flags, lambda ns: ns.update(body)))
    built[state_id] = nested
    return nested


def _history_defaults(
    states: Mapping[str, Any], built: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    for _, spec in _walk(states):
        for history_id, history_spec in (spec.get("history") or {}).items():
            for transition in (history_spec or {}).get("transitions", []):
                yield history_id, transition["target"]


def _split(given: Any) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """The document and the companion, from any form :func:`to_document`/:func:`to_json`
    writes: a document, a ``(document, extras)`` pair, or ``{"document": ..., "extras": ...}``."""
    if isinstance(given, tuple) and len(given) == 2:
        document, extras = given
    elif isinstance(given, Mapping) and "document" in given and "states" not in given:
        document, extras = given["document"], given.get("extras")
    else:
        document, extras = given, None
    if not isinstance(document, Mapping):
        msg = (
            f"Not a statechart document: {type(document).__name__}. Give a document mapping, "
            "the (document, extras) pair of to_document(cls, extras=True), or the JSON object "
            "of to_json(cls, extras=True)."
        )
        raise DefinitionError(msg)
    version = extras.get("lifecyclekit") if isinstance(extras, Mapping) else extras
    if extras is not None and version != EXTRAS_VERSION:
        msg = (
            f"The companion document is not lifecyclekit extras version {EXTRAS_VERSION} "
            f"(its 'lifecyclekit' key is {version!r}); export it again with to_document(cls, "
            "extras=True) from this version."
        )
        raise DefinitionError(msg)
    return document, extras


def _provenance(extras: Mapping[str, Any] | None) -> dict[tuple[str, str, str], Provenance]:
    table = {}
    for entry in (extras or {}).get("provenance", []):
        row = dict(entry)
        key = (row.pop("event"), row.pop("source"), row.pop("target"))
        table[key] = Provenance.model_validate(row)
    return table


def from_document(
    document: Mapping[str, Any] | tuple[Mapping[str, Any], Mapping[str, Any]],
    guards: Mapping[str, Callable[..., Any]] | None = None,
    *,
    name: str | None = None,
) -> type[Lifecycle]:
    """A strict :class:`~lifecyclekit.Lifecycle` class built from a statechart document
    (flat, or with compound, parallel and history states).

    Args:
        document: the statechart document (as :func:`to_document` writes it), or the
            document with its companion: the ``(document, extras)`` pair of
            ``to_document(cls, extras=True)`` or the JSON object of ``to_json(cls,
            extras=True)``; the companion's state values and provenance are applied (its
            payload and context schemas are documentation, not models).
        guards: guard name -> callable; every guard the document names must be bound.
        name: the class name (default: the document's ``name``).

    Raises:
        DefinitionError: an unbound guard name, or a malformed document
            (python-statemachine's own definition checks apply too).
    """
    document, extras = _split(document)
    values = dict((extras or {}).get("values", {}))
    guards = dict(guards or {})
    unbound = sorted(_guard_names(document) - set(guards))
    if unbound:
        msg = (
            f"The document's guards {', '.join(map(repr, unbound))} are not bound; pass "
            "guards={name: callable} for each (an unbound guard would silently block)."
        )
        raise DefinitionError(msg)
    states_doc = document.get("states")
    if not isinstance(states_doc, Mapping) or not states_doc:
        msg = "A statechart document needs a non-empty 'states' mapping."
        raise DefinitionError(msg)
    states: dict[str, Any] = {}
    top = {
        state_id: _build_state(state_id, spec, values, states)
        for state_id, spec in states_doc.items()
    }
    for history_id, target_id in _history_defaults(states_doc, states):
        if target_id not in states:
            msg = f"History state {history_id!r} defaults to unknown state {target_id!r}."
            raise DefinitionError(msg)
        states[history_id].to(states[target_id])
    events: dict[str, Any] = {}
    for state_id, spec in _walk(states_doc):
        for transition in spec.get("transitions", []):
            target = states.get(transition.get("target", state_id))
            if target is None:
                msg = (
                    f"Transition from {state_id!r} targets unknown state {transition['target']!r}."
                )
                raise DefinitionError(msg)
            edge = states[state_id].to(
                target, cond=transition.get("cond"), unless=transition.get("unless")
            )
            event = transition["event"]
            events[event] = events[event] | edge if event in events else edge
    attrs: dict[str, Any] = {**top, **events, "provenance": _provenance(extras)}
    # staticmethod: python-statemachine injects only the arguments each guard declares.
    attrs.update({guard: staticmethod(fn) for guard, fn in guards.items()})
    class_name = name or str(document.get("name", "DocumentLifecycle")).replace("-", "_")
    return type(class_name, (Lifecycle,), attrs)
