"""Payload-carrying events: the per-class payload table and its validation.

python-statemachine 3.2 rebuilds ``Event`` subclasses as plain events at class creation
and ``Event(..., payload=...)`` is a ``TypeError``, so a lifecycle declares its payload
models in a class-level mapping, merged along the class hierarchy and checked once when
the class is created::

    class Work(Lifecycle):
        ...
        payloads = {"finish": FinishPayload}
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from lifecyclekit.errors import DefinitionError, PayloadError, field_errors

__all__ = [
    "RESERVED_FIELD_NAMES",
    "bind_command",
    "build_payload_table",
    "dump_payload",
    "validate_payload",
]

RESERVED_FIELD_NAMES = frozenset(
    {
        "state",
        "event",
        "model",
        "source",
        "target",
        "machine",
        "transition",
        "event_data",
        "previous_configuration",
        "new_configuration",
        "payload",
    }
)
"""Keyword arguments python-statemachine (or lifecyclekit, for ``payload``) injects into
callbacks itself; a payload field with one of these names would be silently overridden."""


def build_payload_table(
    machine: str,
    declared: Mapping[str, type[BaseModel]],
    events: set[str],
) -> dict[str, type[BaseModel]]:
    """Check a class's declared payload models and return its table, event id -> model.

    Raises:
        DefinitionError: a key names no event, a value is not a pydantic model, or a model
            has a field whose name python-statemachine would override.
    """
    table: dict[str, type[BaseModel]] = {}
    for event_id, model in declared.items():
        if event_id not in events:
            known = ", ".join(sorted(events)) or "none"
            msg = (
                f"{machine}.payloads names {event_id!r}, which is not an event of {machine}. "
                f"Events: {known}."
            )
            raise DefinitionError(msg)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            msg = (
                f"{machine}.payloads[{event_id!r}] must be a pydantic BaseModel subclass, "
                f"got {model!r}."
            )
            raise DefinitionError(msg)
        clashes = sorted(RESERVED_FIELD_NAMES & set(model.model_fields))
        if clashes:
            msg = (
                f"{machine}.payloads[{event_id!r}] = {model.__name__} has field(s) "
                f"{', '.join(repr(c) for c in clashes)}: python-statemachine injects callback "
                f"arguments of that name itself, so the value would never reach your "
                f"callbacks. Rename the field (for example {clashes[0] + '_'!r} or "
                f"{'new_' + clashes[0]!r})."
            )
            raise DefinitionError(msg)
        table[event_id] = model
    return table


def validate_payload(
    machine: str,
    event: str,
    model: type[BaseModel] | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Validate the data sent with an event and return the keyword arguments for callbacks.

    The result holds the validated model as ``payload`` and each of its fields by name.
    An event without a payload model accepts no data.

    Raises:
        PayloadError: naming the machine, the event and each bad field.
    """
    if model is None:
        if args or kwargs:
            given = dict(kwargs) if not args else {"args": args, **kwargs}
            raise PayloadError(
                machine,
                event,
                [("", "this event carries no data", given)],
                hint=f"Call {event}() without arguments, or declare a payload model for it "
                f"in {machine}.payloads.",
            )
        return {}
    instance = _payload_instance(machine, event, model, args, kwargs)
    # A model instance keeps exactly its fields' values in __dict__ (extras and private
    # attributes live elsewhere), in declaration order.
    return {"payload": instance, **instance.__dict__}


def dump_payload(payload: BaseModel) -> dict[str, Any]:
    """``payload.model_dump(mode="json")``, without ``model_dump``'s argument handling (the
    history records every payload this way)."""
    return payload.__pydantic_serializer__.to_python(payload, mode="json")  # type: ignore[no-any-return]


def _payload_instance(
    machine: str,
    event: str,
    model: type[BaseModel],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> BaseModel:
    given = args[0] if len(args) == 1 and not kwargs else kwargs.get("payload")
    if isinstance(given, model) and (len(args) + len(kwargs)) == 1:
        return given
    if args:
        raise PayloadError(
            machine,
            event,
            [("", "positional data is not accepted", args)],
            hint=f"Pass the fields of {model.__name__} by name, or one {model.__name__} instance.",
        )
    try:
        return model.model_validate(kwargs)
    except ValidationError as exc:
        raise PayloadError(
            machine,
            event,
            field_errors(exc),
            hint=f"The payload model is {model.__name__}.",
        ) from None


def _parameters(signature: inspect.Signature) -> str:
    """A command's parameters as a caller writes them: ``state, at=None, *, infer=False``."""
    shown: list[str] = []
    star = False
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            star = True
            shown.append(f"*{param.name}")
            continue
        if param.kind is param.VAR_KEYWORD:
            shown.append(f"**{param.name}")
            continue
        if param.kind is param.KEYWORD_ONLY and not star:
            star = True
            shown.append("*")
        default = "" if param.default is param.empty else f"={param.default!r}"
        shown.append(f"{param.name}{default}")
    return ", ".join(shown)


def bind_command(
    machine: str,
    command: str,
    method: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Check that ``args`` and ``kwargs`` fit the command's signature before it runs, so a
    missing, surplus or unknown argument is a PayloadError naming the parameters, never a
    bare ``TypeError`` from inside the call (and the command changes nothing).

    Raises:
        PayloadError: the arguments do not bind; the message lists the parameters.
    """
    signature = inspect.signature(method)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        given = dict(kwargs) if not args else {"args": args, **kwargs}
        params = _parameters(signature)
        raise PayloadError(
            machine,
            command,
            [("", str(exc), given)],
            hint=f"{command} takes ({params}): pass each required one, and no others.",
        ) from None
