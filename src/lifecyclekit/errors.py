"""The errors lifecyclekit raises, under one root.

::

    LifecycleError
    ├── DefinitionError       a lifecycle class is malformed (also psm's InvalidDefinition)
    ├── UnknownLifecycle      no lifecycle registered under that name (also LookupError)
    ├── PayloadError          event data failed validation (also ValueError)
    ├── SnapshotError         a snapshot cannot be restored (also ValueError)
    ├── DiagramError          a diagram cannot be drawn (unknown format, missing tool)
    ├── MissingDependency     an optional extra is not installed (also ImportError)
    ├── AppImportError        an application module (--app) cannot be imported (also ImportError)
    ├── AsyncRequired         a sync call needs an await (an async guard; also TypeError)
    ├── StoreError            a store operation failed (the message names the store or id)
    │   ├── NoSuchStore       no store at that URL (also LookupError)
    │   ├── UnknownInstance   no stored instance has that id (also LookupError)
    │   ├── WriteConflict     another writer won; the operation may be re-run
    │   ├── IdempotencyConflict  a key was reused for a different request
    │   ├── ConnectionLost    the database could not be reached; nothing was applied
    │   │   └── OutcomeUnknown   the connection broke during commit: applied or not
    │   └── AfterCommitError  the commit happened; an after-commit callback failed
    └── TransitionRejected    an event was refused (also psm's TransitionNotAllowed)

Refusals stay python-statemachine's :class:`~statemachine.exceptions.TransitionNotAllowed`
(``TransitionRejected`` subclasses it), so code written against python-statemachine keeps
catching them. Every message says what happened, shows the offending value, lists what was
valid and says how to fix it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from statemachine.exceptions import InvalidDefinition, TransitionNotAllowed

if TYPE_CHECKING:
    from lifecyclekit.explain import Explanation

__all__ = [
    "AfterCommitError",
    "AppImportError",
    "AsyncRequired",
    "ConnectionLost",
    "DefinitionError",
    "DiagramError",
    "IdempotencyConflict",
    "LifecycleError",
    "MissingDependency",
    "NoSuchStore",
    "OutcomeUnknown",
    "PayloadError",
    "SnapshotError",
    "StoreError",
    "TransitionRejected",
    "UnknownInstance",
    "UnknownLifecycle",
    "WriteConflict",
    "field_errors",
    "optional_import",
    "shown",
]


class LifecycleError(Exception):
    """Root of every error lifecyclekit raises."""


class DefinitionError(LifecycleError, InvalidDefinition):
    """A lifecycle class is malformed; raised when the class is created."""


class UnknownLifecycle(LifecycleError, LookupError):
    """No lifecycle is registered under the requested name.

    Attributes:
        name: the name that was asked for.
        known: the names that are registered.
    """

    def __init__(self, name: str, known: Iterable[str], *, hint: str = "") -> None:
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "none"
        msg = f"Unknown lifecycle {name!r}. Registered lifecycles: {listed}."
        if hint:
            msg = f"{msg} {hint}"
        super().__init__(msg)

    def __str__(self) -> str:
        # LookupError (KeyError's parent) would otherwise repr() the message.
        return str(self.args[0])


SHOWN_LIMIT = 80
"""Values whose ``repr`` is longer than this are described by their size in messages."""


def shown(value: object) -> str:
    """A value for an error message: its ``repr``, or for an over-size one its type and size
    (a 10 MB string is described, never echoed into logs and terminals)."""
    text = repr(value)
    if len(text) <= SHOWN_LIMIT:
        return text
    if isinstance(value, str | bytes | bytearray):
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"a {type(value).__name__} of {len(value):,} {unit}"
    if hasattr(value, "__len__"):
        return f"a {type(value).__name__} of {len(value):,} items"
    return f"a value of type {type(value).__name__} whose repr is {len(text):,} characters"


class PayloadError(LifecycleError, ValueError):
    """Data sent with an event (or given as context) failed validation.

    Attributes:
        machine: the lifecycle class name.
        event: the event id (or ``"context"`` for constructor data).
        errors: one ``(field, message, value)`` triple per bad field.
    """

    def __init__(
        self,
        machine: str,
        event: str,
        errors: Sequence[tuple[str, str, Any]],
        *,
        hint: str = "",
    ) -> None:
        self.machine = machine
        self.event = event
        self.errors = list(errors)
        details = "; ".join(
            f"{field}: {message} (got {shown(value)})"
            if field
            else f"{message} (got {shown(value)})"
            for field, message, value in self.errors
        )
        what = "context" if event == "context" else f"event {event!r}"
        msg = f"Invalid data for {machine} {what}: {details}."
        if hint:
            msg = f"{msg} {hint}"
        super().__init__(msg)

    @classmethod
    def from_validation_error(
        cls, machine: str, event: str, exc: ValidationError, *, hint: str = ""
    ) -> PayloadError:
        """The PayloadError for a pydantic ``ValidationError``, one entry per bad field."""
        errors: list[tuple[str, str, Any]] = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"])
            inner = err.get("ctx", {}).get("error")
            if isinstance(inner, PayloadError):  # a nested model that validates itself
                for field, message, value in inner.errors:
                    errors.append((f"{where}.{field}" if where else field, message, value))
                continue
            message = err["msg"].removeprefix("Value error, ")
            errors.append((where, message, err.get("input")))
        return cls(machine, event, errors, hint=hint)


def field_errors(exc: ValidationError) -> list[tuple[str, str, Any]]:
    """``(field, message, value)`` per error of a pydantic ``ValidationError``."""
    return PayloadError.from_validation_error("", "", exc).errors


class SnapshotError(LifecycleError, ValueError):
    """A snapshot cannot be restored: unknown machine or state, wrong schema, bad context."""


class DiagramError(LifecycleError):
    """A diagram cannot be produced: unknown format, or a missing optional tool."""


class MissingDependency(LifecycleError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it.

    Attributes:
        module: the module that could not be imported.
        extra: the ``lifecyclekit`` extra that provides it.

    .. versionadded:: 0.2
    """

    def __init__(self, feature: str, module: str, extra: str, *, more: str = "") -> None:
        self.module = module
        self.extra = extra
        msg = f"{feature}: {module} is not installed; pip install 'lifecyclekit[{extra}]'"
        if more:
            msg = f"{msg}. {more}."
        super().__init__(msg, name=module)


class AppImportError(LifecycleError, ImportError):
    """An application module named with ``--app`` or ``LIFECYCLEKIT_APP`` cannot be imported.

    .. versionadded:: 0.2
    """


def optional_import(module: str, *, extra: str, feature: str, more: str = "") -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingDependency` saying how to get it.

    Args:
        module: the module to import (``"psycopg"``).
        extra: the extra that installs it (``"postgres"``).
        feature: what needs it, for the message (``"PostgreSQL stores"``).
        more: a sentence to add (what works without it, say).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(feature, module, extra, more=more) from None


class AsyncRequired(LifecycleError, TypeError):
    """A sync method was asked for an answer only an ``await`` gives: ``explain`` on an event
    whose guards are async (use ``await lifecycle.aexplain(...)``).

    .. versionadded:: 0.2
    """


class StoreError(LifecycleError):
    """A store operation failed: a duplicate id, a newer schema, endless write conflicts."""


class UnknownInstance(StoreError, LookupError):
    """No stored instance has that id."""

    def __str__(self) -> str:
        return str(self.args[0])


class WriteConflict(StoreError):
    """Another writer changed a row this transaction read; re-run the whole operation.

    Raised by the store once its retry policy is exhausted (the message says after how
    many attempts), and inside a unit of work when a compare-and-set fails.
    """


class NoSuchStore(StoreError, LookupError):
    """No store at that URL: a missing SQLite file, a database without lifecyclekit's tables,
    or a PostgreSQL database that does not exist. Reads never create a store.

    .. versionadded:: 0.2
    """

    def __str__(self) -> str:
        return str(self.args[0])


class IdempotencyConflict(StoreError):
    """An idempotency key already applied to a different request (another command or
    payload) on that instance. Nothing was written.

    .. versionadded:: 0.2
    """


class ConnectionLost(StoreError):
    """The database could not be reached, or the connection broke before the commit: nothing
    was applied. The next call reconnects; the same store object keeps working.

    .. versionadded:: 0.2
    """


class OutcomeUnknown(ConnectionLost):
    """The connection broke while the database was committing: the operation may or may not
    have been applied. Check the instance (``get``/``history``), or resend with the same
    idempotency key, which is safe either way.

    .. versionadded:: 0.2
    """


class AfterCommitError(StoreError):
    """The transaction committed, then an after-commit callback raised.

    Attributes:
        result: what the operation returned (its effects are durable).

    .. versionadded:: 0.2
    """

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class TransitionRejected(LifecycleError, TransitionNotAllowed):
    """An event was refused: no transition leaves the current state for it, or guards failed.

    Attributes:
        event: the event id.
        state: the state id the machine was (and still is) in.
        reasons: the candidate transitions with each guard's verdict
            (see :class:`lifecyclekit.Explanation`).
        explanation: the whole :class:`lifecyclekit.Explanation`.
    """

    def __init__(
        self,
        explanation: Explanation,
        configuration: Any = None,
        event: Any = None,
        *,
        message: str | None = None,
    ) -> None:
        self.explanation = explanation
        # psm's own exception carries the Event object (a str subclass equal to its id).
        self.event = event if event is not None else explanation.event  # type: ignore[assignment]
        self.state = explanation.state
        self.reasons = explanation.candidates
        self.configuration = configuration if configuration is not None else set()
        msg = message or explanation.message()
        self.message = msg
        # TransitionNotAllowed.__init__ formats its own message; set ours directly.
        Exception.__init__(self, msg)

    def __reduce__(self) -> tuple[Any, ...]:
        # The live State and Event objects hold weak references to their machine; the
        # explanation alone is plain data and rebuilds the same message.
        return (_rebuild_rejection, (type(self), self.explanation, self.message))


def _rebuild_rejection(
    cls: type[TransitionRejected], explanation: Explanation, message: str
) -> TransitionRejected:
    return cls(explanation, message=message)
