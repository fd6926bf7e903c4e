"""Static findings about a lifecycle class or a declarative statechart document.

python-statemachine refuses, at class creation, unreachable states, trap states and states
with no path to a final state. ``check`` reports what it does not see: those three for
documents (which ``statemachine.io.load`` accepts unchecked) and for classes built with the
validation flags off; guard names that resolve to nothing; events no reachable state accepts;
payload or context models without a JSON Schema; transitions without provenance in a
lifecycle that declares provenance; duplicate state values; transitions to no state.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from lifecyclekit.errors import DefinitionError
from lifecyclekit.lifecycle import Lifecycle

__all__ = ["Finding", "check"]


class Finding(BaseModel):
    """One problem: a stable ``code``, what it is about, and a sentence saying how to fix it."""

    model_config = ConfigDict(frozen=True)

    code: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.subject}: {self.message}"


class _Shape:
    """The structure both a class and a document reduce to."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.initial: str | None = None
        self.final: set[str] = set()
        self.edges: list[
            tuple[str, str, str, tuple[str, ...]]
        ] = []  # source, event, target, guards


def _from_class(cls: type[Lifecycle]) -> _Shape:
    shape = _Shape()
    for state in cls.states_map.values():
        shape.states.append(state.id)
        if state.initial:
            shape.initial = state.id
        if state.final:
            shape.final.add(state.id)
    for row in cls.transition_table():
        shape.edges.append((row.source, row.event, row.target, tuple(g.name for g in row.guards)))
    return shape


def _names(value: object) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _parts(document: Mapping[str, Any]) -> Iterator[tuple[str, str, object, bool]]:
    """Each part ``_from_document`` reads: where it is, what it must be, it, and whether it is."""
    states = document.get("states", {})
    yield "'states'", "a mapping of state ids", states, isinstance(states, Mapping)
    for state_id, spec in states.items():
        yield f"state {state_id!r}", "a mapping", spec, isinstance(spec, Mapping)
        transitions = spec.get("transitions", [])
        yield f"{state_id!r}'s transitions", "a list", transitions, isinstance(transitions, list)
        for transition in transitions:
            where = f"a transition of {state_id!r}"
            yield where, "a mapping", transition, isinstance(transition, Mapping)
            for key in ("cond", "unless"):
                value = transition.get(key, [])
                yield f"{key!r} of {where}", "a name or a list of names", value, _names(value)


def _malformed(part: tuple[str, str, object]) -> DefinitionError:
    where, expected, value = part
    msg = (
        f"Not a statechart document: {where} must be {expected}, got "
        f"{type(value).__name__} {value!r:.60}. See lifecyclekit.export.to_document."
    )
    return DefinitionError(msg)


def _check_shape(document: object) -> Mapping[str, Any]:
    """The document, after checking the types ``_from_document`` reads.

    Raises:
        DefinitionError: a part has the wrong type (``states`` not a mapping, ...).
    """
    if not isinstance(document, Mapping):
        raise _malformed(("the document", "a mapping", document))
    wrong = next(((w, e, v) for w, e, v, ok in _parts(document) if not ok), None)
    if wrong is not None:
        raise _malformed(wrong)
    return document


def _from_document(document: Mapping[str, Any]) -> _Shape:
    shape = _Shape()
    for state_id, spec in _check_shape(document).get("states", {}).items():
        shape.states.append(state_id)
        if spec.get("initial") in (True, "true", "yes", "on"):
            shape.initial = state_id
        if spec.get("final") in (True, "true", "yes", "on"):
            shape.final.add(state_id)
        for transition in spec.get("transitions", []):
            guards: list[str] = []
            for key in ("cond", "unless"):
                value = transition.get(key, [])
                guards += [value] if isinstance(value, str) else value
            target = transition.get("target", state_id)
            shape.edges.append((state_id, transition.get("event", ""), target, tuple(guards)))
    if shape.initial is None and shape.states:
        shape.initial = shape.states[0]  # document order, as the loader does
    return shape


def _reach(start: str | None, edges: list[tuple[str, str]]) -> set[str]:
    seen: set[str] = set()
    queue = deque([start] if start else [])
    while queue:
        node = queue.popleft()
        if node not in seen:
            seen.add(node)
            queue.extend(t for s, t in edges if s == node)
    return seen


def _structure(shape: _Shape) -> list[Finding]:
    pairs = [(s, t) for s, _, t, _ in shape.edges]
    reachable = _reach(shape.initial, pairs)
    reversed_pairs = [(t, s) for s, t in pairs]
    reaches_final: set[str] = set()
    for final in shape.final:
        reaches_final |= _reach(final, reversed_pairs)
    findings = [
        Finding(code="LK009", subject=f"{event} {source}->{target}", message="targets no state")
        for source, event, target, _ in shape.edges
        if target not in shape.states
    ]
    for state in shape.states:
        if state not in reachable:
            findings.append(
                Finding(code="LK001", subject=state, message="unreachable from the initial state")
            )
        if state not in shape.final and not any(s == state for s, _ in pairs):
            findings.append(
                Finding(code="LK002", subject=state, message="trap state: not final, no exit")
            )
        elif shape.final and state not in reaches_final:
            findings.append(
                Finding(code="LK003", subject=state, message="no path to a final state")
            )
    dead = {e for s, e, _, _ in shape.edges} - {e for s, e, _, _ in shape.edges if s in reachable}
    findings += [
        Finding(code="LK005", subject=event, message="no reachable state accepts this event")
        for event in sorted(dead)
    ]
    return findings


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = {"and", "or", "not", "True", "False"}


def _guards(shape: _Shape, bound: set[str]) -> list[Finding]:
    # A guard may be a boolean expression of names ("a and not b"), as in psm's cond=.
    names = {
        word
        for *_, guards in shape.edges
        for guard in guards
        for word in _WORD.findall(guard)
        if word not in _KEYWORDS
    }
    return [
        Finding(code="LK004", subject=name, message="guard name resolves to nothing")
        for name in sorted(names - bound)
    ]


def _class_findings(cls: type[Lifecycle]) -> list[Finding]:
    findings = []
    models: dict[str, Any] = {f"payload of {e}": m for e, m in cls._payload_models.items()}
    if cls.Context is not None:
        models["context"] = cls.Context
    for subject, model in models.items():
        try:
            model.model_json_schema()
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            findings.append(
                Finding(code="LK006", subject=subject, message=f"no JSON Schema: {exc}")
            )
    if cls._provenance:
        findings += [
            Finding(
                code="LK007",
                subject=f"{row.event} {row.source}->{row.target}",
                message="transition without provenance in a lifecycle that declares it",
            )
            for row in cls.transition_table()
            if row.provenance is None
        ]
    values: dict[Any, str] = {}
    for state in cls.states:
        if state.value in values:
            findings.append(
                Finding(
                    code="LK008",
                    subject=state.id,
                    message=f"value {state.value!r} is also {values[state.value]!r}'s",
                )
            )
        values.setdefault(state.value, state.id)
    return findings


def check(
    target: type[Lifecycle] | Mapping[str, Any], *, guards: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Every finding about a lifecycle class or a statechart document (empty: all clear).

    Args:
        target: a lifecycle class, or a document as :func:`lifecyclekit.export.to_document`
            writes it.
        guards: for a document, the guard names that will be bound; each other guard it
            names is reported. ``None`` (default): a document's guards are not checked.

    Raises:
        DefinitionError: ``target`` is neither a lifecycle class nor a document of the
            right shape.
    """
    if isinstance(target, type) and issubclass(target, Lifecycle):
        shape = _from_class(target)
        bound = {name for name in dir(target) if not name.startswith("__")}
        return _structure(shape) + _guards(shape, bound) + _class_findings(target)
    shape = _from_document(target)
    findings = _structure(shape)
    return findings if guards is None else findings + _guards(shape, set(guards))
