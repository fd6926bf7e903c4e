"""Static findings about a lifecycle class or a declarative statechart document.

python-statemachine refuses, at class creation, unreachable states, trap states and states
with no path to a final state. ``check`` reports what it does not see: those three for
documents (which ``statemachine.io.load`` accepts unchecked) and for classes built with the
validation flags off; guard names that resolve to nothing; events no reachable state accepts;
payload or context models without a JSON Schema; transitions without provenance in a
lifecycle that declares provenance; duplicate state values; transitions to no state; history
states with no default transition (python-statemachine then enters nothing when the history
state remembers nothing).

Statecharts are checked with their hierarchy: entering a state enters its ancestors and its
initial child (every region of a parallel state); a state can leave by its ancestors'
transitions; "trap" and "no path to a final state" are judged on atomic states and reaching a
top-level final state.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from lifecyclekit.errors import DefinitionError
from lifecyclekit.lifecycle import Lifecycle
from lifecyclekit.transitions import all_states

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
        self.parent: dict[str, str] = {}
        """Statecharts: each nested state's (and history state's) parent."""
        self.entered: dict[str, list[str]] = {}
        """Statecharts: what entering a state also enters (initial child, every region; for
        a history state its default target, or every state of its parent)."""
        self.history_without_default: list[str] = []
        self.region_final: set[str] = set()
        """Statecharts: final states inside a compound state (they end a region)."""


def _from_class(cls: type[Lifecycle]) -> _Shape:
    shape = _Shape()
    for state in all_states(cls):
        shape.states.append(state.id)
        if state.parent is not None:
            shape.parent[state.id] = state.parent.id
        elif state.initial:
            shape.initial = state.id
        if state.final:
            (shape.final if state.parent is None else shape.region_final).add(state.id)
        if state.states:
            shape.entered[state.id] = [
                c.id for c in state.states if state.parallel or c.initial
            ] or [state.states[0].id]
        for history in state.history:
            shape.parent[history.id] = state.id
            defaults = [t.target.id for t in history.transitions if t.target is not None]
            shape.entered[history.id] = defaults or [c.id for c in state.states]
            if not defaults:
                shape.history_without_default.append(history.id)
    for row in cls.transition_table():
        shape.edges.append((row.source, row.event, row.target, tuple(g.name for g in row.guards)))
    return shape


def _names(value: object) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _parts(document: Mapping[str, Any]) -> Iterator[tuple[str, str, object, bool]]:
    """Each part ``_from_document`` reads: where it is, what it must be, it, and whether it is."""
    yield from _state_parts("'states'", document.get("states", {}))


def _state_parts(where: str, states: object) -> Iterator[tuple[str, str, object, bool]]:
    yield where, "a mapping of state ids", states, isinstance(states, Mapping)
    if not isinstance(states, Mapping):
        return
    for state_id, spec in states.items():
        yield f"state {state_id!r}", "a mapping", spec, isinstance(spec, Mapping)
        if not isinstance(spec, Mapping):
            return
        if "states" in spec:
            yield from _state_parts(f"'states' of {state_id!r}", spec["states"])
        history = spec.get("history", {})
        yield f"'history' of {state_id!r}", "a mapping", history, isinstance(history, Mapping)
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


_TRUE = (True, "true", "yes", "on")


def _document_states(
    states: Mapping[str, Any], parent: str | None, shape: _Shape
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each document state (nested ones after their parent), recording the hierarchy."""
    for state_id, spec in states.items():
        if parent is not None:
            shape.parent[state_id] = parent
        yield state_id, spec
        children = spec.get("states") or {}
        if children:
            parallel = spec.get("parallel") in _TRUE
            initial = [c for c, s in children.items() if s.get("initial") in _TRUE]
            shape.entered[state_id] = (
                list(children) if parallel else initial or [next(iter(children))]
            )
        for history_id, history in (spec.get("history") or {}).items():
            shape.parent[history_id] = state_id
            defaults = [t["target"] for t in (history or {}).get("transitions", [])]
            shape.entered[history_id] = defaults or list(children)
            if not defaults:
                shape.history_without_default.append(history_id)
        yield from _document_states(children, state_id, shape)


def _from_document(document: Mapping[str, Any]) -> _Shape:
    shape = _Shape()
    for state_id, spec in _document_states(_check_shape(document).get("states", {}), None, shape):
        shape.states.append(state_id)
        if spec.get("initial") in _TRUE and state_id not in shape.parent:
            shape.initial = state_id
        if spec.get("final") in _TRUE:
            nested = state_id in shape.parent
            (shape.region_final if nested else shape.final).add(state_id)
        for transition in spec.get("transitions", []):
            guards: list[str] = []
            for key in ("cond", "unless"):
                value = transition.get(key, [])
                guards += [value] if isinstance(value, str) else value
            target = transition.get("target", state_id)
            shape.edges.append((state_id, transition.get("event", ""), target, tuple(guards)))
    if shape.initial is None and shape.states:
        top = [s for s in shape.states if s not in shape.parent]
        shape.initial = top[0]  # document order, as the loader does
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


def _ancestors(shape: _Shape, state: str) -> list[str]:
    found = []
    while state in shape.parent:
        state = shape.parent[state]
        found.append(state)
    return found


def _moves(shape: _Shape) -> list[tuple[str, str]]:
    """Where the instance can go from a state: its and its ancestors' transitions, and
    what entering it enters (its parent, its initial child or regions)."""
    pairs = [(s, t) for s, _, t, _ in shape.edges]
    moves = list(pairs)
    for state in shape.states:
        moves += [(state, t) for a in _ancestors(shape, state) for s, t in pairs if s == a]
    moves += [(child, parent) for child, parent in shape.parent.items()]
    moves += [(state, child) for state, children in shape.entered.items() for child in children]
    return moves


def _structure(shape: _Shape) -> list[Finding]:
    pairs = _moves(shape)
    reachable = _reach(shape.initial, pairs)
    reversed_pairs = [(t, s) for s, t in pairs]
    reaches_final: set[str] = set()
    for final in shape.final:
        reaches_final |= _reach(final, reversed_pairs)
    known = set(shape.states) | {h for h in shape.entered if h not in shape.states}
    findings = [
        Finding(code="LK009", subject=f"{event} {source}->{target}", message="targets no state")
        for source, event, target, _ in shape.edges
        if target not in known
    ]
    findings += [
        Finding(
            code="LK010",
            subject=history,
            message=(
                "history state without a default transition: entered before it remembers "
                f"anything it enters no state; add {history}.to(<a state of "
                f"{shape.parent[history]}>) (a document: its 'transitions')"
            ),
        )
        for history in shape.history_without_default
    ]
    exits = {s for s, _, _, _ in shape.edges}
    for state in shape.states:
        if state not in reachable:
            findings.append(
                Finding(code="LK001", subject=state, message="unreachable from the initial state")
            )
        if state in shape.entered:
            continue  # compound and parallel states: judged through their atomic states
        leaves = not ({state, *_ancestors(shape, state)} & exits)
        if state not in shape.final | shape.region_final and leaves:
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
