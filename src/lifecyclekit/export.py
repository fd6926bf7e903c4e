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
from collections.abc import Callable, Mapping
from typing import Any

from statemachine import State

from lifecyclekit.errors import DefinitionError, optional_import
from lifecyclekit.lifecycle import Lifecycle
from lifecyclekit.transitions import Provenance

__all__ = ["EXTRAS_VERSION", "from_document", "to_document", "to_json", "to_yaml"]

EXTRAS_VERSION = 1


def _name_of(cls: type[Lifecycle]) -> str:
    return cls.lifecycle_name or cls.__name__


def _document(cls: type[Lifecycle]) -> dict[str, Any]:
    states: dict[str, dict[str, Any]] = {}
    for state in cls.states_map.values():
        entry: dict[str, Any] = {}
        if state.initial:
            entry["initial"] = True
        if state.final:
            entry["final"] = True
        states[state.id] = entry
    for row in cls.transition_table():
        transition: dict[str, Any] = {"event": row.event, "target": row.target}
        cond = [g.name for g in row.guards if not g.negated]
        unless = [g.name for g in row.guards if g.negated]
        if cond:
            transition["cond"] = cond
        if unless:
            transition["unless"] = unless
        states[row.source].setdefault("transitions", []).append(transition)
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
        "values": {s.id: s.value for s in cls.states_map.values()},
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


def _guard_names(document: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for state in document.get("states", {}).values():
        for transition in state.get("transitions", []):
            for key in ("cond", "unless"):
                value = transition.get(key, [])
                names.update([value] if isinstance(value, str) else value)
    return names


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
    """A strict :class:`~lifecyclekit.Lifecycle` class built from a flat statechart document.

    Args:
        document: the statechart document (as :func:`to_document` writes it), or the
            document with its companion: the ``(document, extras)`` pair of
            ``to_document(cls, extras=True)`` or the JSON object of ``to_json(cls,
            extras=True)``; the companion's state values and provenance are applied (its
            payload and context schemas are documentation, not models).
        guards: guard name -> callable; every guard the document names must be bound.
        name: the class name (default: the document's ``name``).

    Raises:
        DefinitionError: an unbound guard name, a nested state, or a malformed document
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
    states = {}
    for state_id, spec in states_doc.items():
        if spec.get("states") or spec.get("parallel"):
            msg = f"State {state_id!r} is compound or parallel; lifecycles are flat."
            raise DefinitionError(msg)
        states[state_id] = State(
            initial=bool(spec.get("initial")),
            final=bool(spec.get("final")),
            value=values.get(state_id),
        )
    events: dict[str, Any] = {}
    for state_id, spec in states_doc.items():
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
    attrs: dict[str, Any] = {**states, **events, "provenance": _provenance(extras)}
    # staticmethod: python-statemachine injects only the arguments each guard declares.
    attrs.update({guard: staticmethod(fn) for guard, fn in guards.items()})
    class_name = name or str(document.get("name", "DocumentLifecycle")).replace("-", "_")
    return type(class_name, (Lifecycle,), attrs)
