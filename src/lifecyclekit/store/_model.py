"""What flows in and out of the store: statements and steps, results, values, checks.

A *step* is a generator that yields :class:`Statement` objects and receives their
:class:`~lifecyclekit.store._backend.Rows` (a database error is thrown into it where the
statement was yielded), then returns its result; :func:`drive` runs one with a synchronous
``execute`` (the asynchronous store awaits each statement instead). A step that needs the
result of an awaitable (an asynchronous command of a lifecycle) yields :class:`Await`: the
asynchronous store awaits it, the synchronous one refuses it. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_jsonable_python

from lifecyclekit.errors import PayloadError, StoreError
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.snapshot import TransitionRecord
from lifecyclekit.store._backend import BackendError, Rows

__all__ = [
    "Await",
    "Change",
    "InstanceSummary",
    "Page",
    "SendResult",
    "Skipped",
    "Statement",
    "Step",
    "adrive",
    "drive",
]

T = TypeVar("T")
Step = Generator["Statement | Await", Any, T]
"""A store operation without I/O: yields statements (receiving their rows) or awaitables
(receiving their results), returns T."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ID_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement with ``?`` placeholders, for a driver to run."""

    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Await:
    """An awaitable whose result a step needs (what an asynchronous command returned)."""

    awaitable: Awaitable[Any]
    what: str
    """What returned it, for messages (``"'flip_later' on 't'"``)."""


def cannot_await(instruction: Await) -> StoreError:
    """The refusal of a synchronous store asked to await ``instruction`` (which is closed,
    so no "never awaited" warning follows)."""
    close = getattr(instruction.awaitable, "close", None)
    if callable(close):
        close()
    msg = (
        f"{instruction.what} is asynchronous (it returned an awaitable), and a synchronous "
        "store cannot await it; nothing was written. Use open_async_store() and await its "
        "send()."
    )
    return StoreError(msg)


def drive(execute: Callable[[str, Sequence[Any]], Rows], step: Step[T]) -> T:
    """Run ``step`` to the end with a synchronous ``execute``; its return value.

    A :class:`~lifecyclekit.store._backend.BackendError` of a statement is thrown into the
    step (which may turn it into another error); an :class:`Await` is refused there.
    """
    try:
        instruction = next(step)
        while True:
            if isinstance(instruction, Await):
                instruction = step.throw(cannot_await(instruction))
                continue
            try:
                rows = execute(instruction.sql, instruction.params)
            except BackendError as exc:
                instruction = step.throw(exc)
            else:
                instruction = step.send(rows)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(execute: Callable[[str, Sequence[Any]], Awaitable[Rows]], step: Step[T]) -> T:
    """Run ``step`` to the end with an asynchronous ``execute``, awaiting each statement and
    each :class:`Await`; an error of either is thrown into the step where it was yielded."""
    try:
        instruction = next(step)
        while True:
            try:
                if isinstance(instruction, Await):
                    value = await instruction.awaitable
                else:
                    value = await execute(instruction.sql, instruction.params)
            except Exception as exc:
                instruction = step.throw(exc)
            else:
                instruction = step.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# -- results ---------------------------------------------------------------------------------


class SendResult(BaseModel):
    """What a ``send`` did: the instance's state after it, and the records it added.

    The whole history is not returned (its length would make every send slower); read it
    with ``store.history(id, after=..., limit=...)``.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    machine: str
    state: str
    revision: int
    context: dict[str, Any] | None = None
    records: tuple[TransitionRecord, ...] = ()
    """The transitions this send committed (none for a command that changed nothing)."""
    replayed: bool = False
    """``True`` when an idempotency key had already been applied: this is the outcome of the
    original send, and nothing was fired or written now."""
    returned: bool | int | float | str | None = None
    """What a command returned, when it is a plain value (``DataflowJob.sync``: ``False``
    when the poll was stale and ignored); ``None`` for an event or any other value.

    .. versionadded:: 0.2
    """


class InstanceSummary(BaseModel):
    """One stored instance, as ``find`` lists it."""

    model_config = ConfigDict(frozen=True)

    id: str
    machine: str
    state: str
    revision: int
    updated_at: datetime
    """When it last changed, in UTC."""

    @property
    def cursor(self) -> str:
        """Pass as ``find(after=...)`` to list what comes after this instance."""
        return encode_cursor(to_micros(self.updated_at), self.id)


class Change(BaseModel):
    """One committed transition in the change feed."""

    model_config = ConfigDict(frozen=True)

    position: int
    """Increasing in commit order (not necessarily consecutive); the feed's cursor."""
    id: str
    """The instance id."""
    machine: str
    """The lifecycle's registry name."""
    record: TransitionRecord


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row a listing could not read, and why."""

    id: str
    reason: str


class Page(list[T], Generic[T]):
    """A list of results with what was skipped and where the next page starts.

    Attributes:
        next: the cursor of the next page (``find(after=page.next)``), ``None`` at the end.
        skipped: rows that could not be read (reported, never fatal to the others).
    """

    def __init__(
        self, items: Iterable[T] = (), *, next: Any = None, skipped: Sequence[Skipped] = ()
    ) -> None:
        super().__init__(items)
        self.next = next
        self.skipped = list(skipped)


# -- values ----------------------------------------------------------------------------------


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, UTC, of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of :func:`to_micros`."""
    if not isinstance(micros, int) or isinstance(micros, bool):
        msg = f"not a timestamp: {micros!r}"
        raise ValueError(msg)
    return _EPOCH + timedelta(microseconds=micros)


def now_micros(clock: Clock | None) -> int:
    """The store clock's time (UTC now by default), whatever its zone."""
    moment = clock() if clock is not None else datetime.now(UTC)
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        msg = f"The store's clock returned {moment!r}; it must return an aware datetime."
        raise StoreError(msg)
    return to_micros(moment)


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, or its type and size when that would be long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str | bytes) else f"{len(text):,}"
    if not isinstance(value, str | bytes):
        size = f"{size} characters when printed"
    return f"<a {type(value).__name__} of {size}>"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_id(value: Any) -> str:
    """A valid instance id, or a StoreError saying what ids may be."""
    if not isinstance(value, str):
        problem = f"is a {type(value).__name__} ({shown(value)}), not a str"
    elif not value:
        problem = "is empty"
    elif len(value) > MAX_ID_LENGTH:
        problem = f"has {len(value):,} characters"
    elif _CONTROL.search(value):
        problem = f"contains a control character: {shown(value)}"
    else:
        return value
    msg = (
        f"Invalid instance id: it {problem}. Ids are 1-{MAX_ID_LENGTH} printable characters "
        "(a UUID or a name like 'orders-2024')."
    )
    raise StoreError(msg)


def dumps(value: Any) -> str | None:
    """Compact JSON, or None for None.

    Raises:
        StoreError: ``value`` holds NaN or an infinity, which JSON cannot hold (written as
            ``NaN``, the row would drop out of every filtered query and differ from the
            live instance); the transaction writing it rolls back.
    """
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        msg = (
            f"{shown(value)} holds NaN or an infinity, which the store cannot write as JSON; "
            "nothing was written. Use None or a finite number (or refuse such values in the "
            "pydantic model, e.g. with allow_inf_nan=False)."
        )
        raise StoreError(msg) from None


def fingerprint(name: str, args: Sequence[Any], data: Mapping[str, Any]) -> str:
    """What an idempotency key is bound to: the command and its payload, canonically."""
    canonical = json.dumps(
        to_jsonable_python([name, list(args), dict(data)], fallback=repr),
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_cursor(micros: int, instance_id: str) -> str:
    return f"{micros}:{instance_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (updated_at, id) of a cursor from :attr:`InstanceSummary.cursor`."""
    stamp, sep, instance_id = str(cursor).partition(":")
    try:
        if not sep:
            raise ValueError(cursor)
        return int(stamp), instance_id
    except ValueError:
        msg = f"Not a find() cursor: {shown(cursor)}; pass page.next or summary.cursor."
        raise StoreError(msg) from None


# -- checks of what callers pass ---------------------------------------------------------------


def check_count(what: str, value: Any, *, allow_zero: bool = False) -> None:
    """``value`` is an int in range for a count or position argument named ``what``."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
        msg = f"{what} must be an int from {low} to 2**63 - 1, got {shown(value)}."
        raise StoreError(msg)


def check_audit(actor: Any, reason: Any, metadata: Any, key: Any) -> None:
    """The who/why/key arguments of ``send`` are what they must be."""
    for label, value in (("actor", actor), ("reason", reason), ("idempotency_key", key)):
        if value is not None and (
            not isinstance(value, str) or not 0 < len(value) <= 1000 or "\x00" in value
        ):
            msg = (
                f"send(..., {label}=) takes a str of 1-1000 characters without NUL, got "
                f"{shown(value)}. (A payload field called {label!r} goes in data={{...}}.)"
            )
            raise StoreError(msg)
    if metadata is not None and not isinstance(metadata, Mapping):
        msg = f"send(..., metadata=) takes a JSON object (a mapping), got {shown(metadata)}."
        raise StoreError(msg)
    if metadata is not None:
        problem = _not_json(metadata, "metadata")
        if problem:
            msg = (
                f"send(..., metadata=) takes JSON data: {problem}. Use str (without NUL), "
                "int, finite float, bool, None, lists and str-keyed mappings of those."
            )
            raise StoreError(msg)


def _not_json(value: Any, where: str, depth: int = 0) -> str:
    """What keeps ``value`` from being JSON every back-end stores alike ("" when nothing)."""
    if depth > 100:
        return f"{where} is nested more than 100 levels deep"
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str) or "\x00" in key:
                return f"{where} has the key {shown(key)} (keys are str without NUL)"
        children = [(item, f"{where}[{key!r}]") for key, item in value.items()]
    elif isinstance(value, list | tuple):
        children = [(item, f"{where}[{index}]") for index, item in enumerate(value)]
    else:
        return _not_json_scalar(value, where)
    for item, inner in children:
        problem = _not_json(item, inner, depth + 1)
        if problem:
            return problem
    return ""


def _not_json_scalar(value: Any, where: str) -> str:
    if value is None or isinstance(value, bool | int):
        return ""
    if isinstance(value, str):
        return f"{where} contains a NUL character" if "\x00" in value else ""
    if isinstance(value, float):
        return "" if math.isfinite(value) else f"{where} is {value!r}, not a finite number"
    return f"{where} is {shown(value)}, a {type(value).__name__}"


def payload_of(
    data: BaseModel | Mapping[str, Any] | None, fields: dict[str, Any]
) -> dict[str, Any]:
    """The payload of ``send``: ``data`` (mapping or model) and keyword fields."""
    if data is None:
        return fields
    if isinstance(data, BaseModel):
        data = {name: getattr(data, name) for name in type(data).model_fields}
    elif not isinstance(data, Mapping):
        msg = f"send(..., data=) takes a mapping or a payload model, got {shown(data)}."
        raise StoreError(msg)
    both = sorted(set(data) & set(fields))
    if both:
        msg = f"send() got payload field(s) {both} both in data= and as keywords."
        raise StoreError(msg)
    return {**data, **fields}


def context_of(
    cls: type[Lifecycle], context: BaseModel | Mapping[str, Any] | None, fields: dict[str, Any]
) -> BaseModel | None:
    """The validated context from ``context=`` and keyword fields (data only)."""
    if isinstance(context, BaseModel):
        if fields:
            msg = f"create() got a {type(context).__name__} and fields {sorted(fields)}; pass one."
            raise PayloadError(cls.__name__, "context", [("context", msg, context)])
        return cls._build_context(context, {})
    if context is not None and not isinstance(context, Mapping):
        problem = "create(context=) takes a mapping or a Context instance"
        raise PayloadError(cls.__name__, "context", [("context", problem, context)])
    data = dict(context or {})
    both = sorted(set(data) & set(fields))
    if both:
        problem = "given both in context= and as a keyword"
        raise PayloadError(cls.__name__, "context", [(k, problem, fields[k]) for k in both])
    data.update(fields)
    return cls._build_context(None, data)
