"""Listings: ``find`` by keyset pages on indexes, ``count``, the change feed in position
order, consumers' cursors, the rows a migration rewrites. Steps, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from lifecyclekit.errors import StoreError
from lifecyclekit.snapshot import TransitionRecord
from lifecyclekit.store._model import (
    Change,
    InstanceSummary,
    Page,
    Skipped,
    Statement,
    Step,
    decode_cursor,
    encode_cursor,
    from_micros,
    shown,
)

__all__ = ["ack", "changes", "consumer_position", "count", "find", "machines", "outdated"]


def _text(label: str, value: Any) -> None:
    """``value`` of find's ``label`` argument is None or a str a database can hold."""
    if value is None or (isinstance(value, str) and "\x00" not in value):
        return
    problem = "contains a NUL character" if isinstance(value, str) else "is not a str"
    msg = (
        f"find()/count() {label}= takes a {'lifecycle name' if label == 'name' else 'state id'}"
        f" (a str) or None; {shown(value)} {problem}."
    )
    raise StoreError(msg)


def _where_value(key: str, value: Any) -> None:
    """A ``where=`` value both back-ends compare alike, or a StoreError saying why not."""
    if value is None or isinstance(value, bool):
        return
    problem = ""
    if isinstance(value, str):
        problem = "a str with a NUL character" if "\x00" in value else ""
    elif isinstance(value, int):
        problem = "an int outside 64 bits" if not -(2**63) <= value < 2**63 else ""
    elif isinstance(value, float):
        problem = "not a finite number" if not math.isfinite(value) else ""
    else:
        problem = f"a {type(value).__name__}"
    if problem:
        msg = (
            f"find(where={{{key!r}: {shown(value)}}}): the value is {problem}; a context field"
            " compares with a str (no NUL), a 64-bit int, a finite float, a bool or None"
            " (absent or null)."
        )
        raise StoreError(msg)


def filters(
    dialect: Any,
    name: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
) -> tuple[list[str], list[Any], str | None, list[Any]]:
    """WHERE clauses and parameters for find/count: those on columns, then one condition
    on the context (or None), to evaluate only where ``dialect.context_readable`` holds."""
    _text("name", name)
    _text("state", state)
    if where is not None and not isinstance(where, Mapping):
        msg = (
            f"find()/count() where= takes a mapping of context fields to values, like "
            f"{{'job_name': 'orders'}}, not {shown(where)}."
        )
        raise StoreError(msg)
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("machine", name), ("state", state)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    context: list[str] = []
    context_params: list[Any] = []
    for key, value in (where or {}).items():
        if not isinstance(key, str) or not key or any(c in key for c in '"\\\x00'):
            msg = (
                f"find(where=...) keys are context field names (a non-empty str without"
                f" quotes, backslashes or NUL), got {shown(key)}."
            )
            raise StoreError(msg)
        _where_value(key, value)
        clause, values = dialect.context_filter(key, value)
        context.append(clause)
        context_params.extend(values)
    return clauses, params, " AND ".join(context) or None, context_params


def _guarded(dialect: Any, condition: str, unreadable: str) -> str:
    """``condition`` on rows whose context can be read, ``unreadable`` on the others: a CASE,
    the one construct whose evaluation order both databases guarantee."""
    return f"(CASE WHEN {dialect.context_readable} THEN ({condition}) ELSE {unreadable} END)"


def find(
    dialect: Any,
    name: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
    limit: int,
    after: str | None,
) -> Step[Page[InstanceSummary]]:
    """Newest first, by keyset: an index walk, never a sort of the whole table.

    With ``where``, a row whose context cannot be read (not a JSON object, or holding what
    the database's JSON type refuses) keeps its place in the order and is reported in
    ``.skipped``: it neither hides the other rows nor fails the listing."""
    clauses, params, context, context_params = filters(dialect, name, state, where)
    readable = "TRUE"
    if context is not None:
        # TRUE for the unreadable: listed as skipped, never evaluated.
        clauses.append(_guarded(dialect, context, "TRUE"))
        params += context_params
        readable = dialect.context_readable
    if after is not None:
        stamp, last_id = decode_cursor(after)
        clauses.append("(updated_at, id) < (?, ?)")  # a row value: an index range, not a scan
        params += [stamp, last_id]
    sql = (
        f"SELECT id, machine, state, revision, updated_at, {readable} FROM lk_instances"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + " ORDER BY updated_at DESC, id DESC LIMIT ?"
    )
    rows = yield Statement(sql, (*params, limit))
    found: list[InstanceSummary] = []
    skipped: list[Skipped] = []
    for instance_id, machine, st, revision, updated_at, ok in rows.rows:
        if not ok:
            reason = (
                "unreadable row: its context is not a JSON object the database can read, so"
                " where= cannot be evaluated on it (get() on it says what is wrong)"
            )
            skipped.append(Skipped(str(instance_id), reason))
            continue
        try:
            found.append(
                InstanceSummary(
                    id=instance_id, machine=machine, state=st, revision=revision,
                    updated_at=from_micros(updated_at),
                )
            )  # fmt: skip
        except (ValueError, TypeError, ValidationError) as exc:
            skipped.append(Skipped(str(instance_id), f"unreadable row: {exc}"))
    following = None
    if rows.rows and len(rows.rows) == limit:
        last = rows.rows[-1]
        following = encode_cursor(last[4], str(last[0])) if isinstance(last[4], int) else None
    return Page(found, next=following, skipped=skipped)


def count(
    dialect: Any, name: str | None, state: str | None, where: Mapping[str, Any] | None
) -> Step[int]:
    """How many rows match; rows whose context cannot be read match no ``where``."""
    clauses, params, context, context_params = filters(dialect, name, state, where)
    if context is not None:
        clauses.append(_guarded(dialect, context, "FALSE"))
        params += context_params
    sql = "SELECT COUNT(*) FROM lk_instances" + (
        " WHERE " + " AND ".join(clauses) if clauses else ""
    )
    rows = yield Statement(sql, tuple(params))
    return int(rows.rows[0][0])


def changes(after: int, fence: int | None, limit: int) -> Step[Page[Change]]:
    """Committed changes after ``after`` (and at most ``fence``), in position order."""
    bound = "" if fence is None else " AND position <= ?"
    params = (after,) if fence is None else (after, fence)
    rows = yield Statement(
        "SELECT position, instance_id, machine, record FROM lk_changes"
        f" WHERE position > ?{bound} ORDER BY position LIMIT ?",
        (*params, limit),
    )
    found: list[Change] = []
    skipped: list[Skipped] = []
    for position, instance_id, machine, record in rows.rows:
        try:
            found.append(
                Change(
                    position=position, id=instance_id, machine=machine,
                    record=TransitionRecord.model_validate_json(record),
                )
            )  # fmt: skip
        except (ValueError, TypeError, ValidationError) as exc:
            skipped.append(Skipped(str(instance_id), f"unreadable change {position}: {exc}"))
    last = rows.rows[-1][0] if rows.rows else None
    return Page(found, next=last, skipped=skipped)


# -- consumers -------------------------------------------------------------------------------


def check_consumer(name: Any) -> str:
    """A valid consumer name, or a StoreError saying what names may be."""
    if not isinstance(name, str) or not name or len(name) > 200 or "\x00" in name:
        msg = f"A consumer name is a str of 1-200 characters without NUL, not {shown(name)}."
        raise StoreError(msg)
    return name


def check_ack(position: Any) -> int:
    """The position an ack takes (a Change's, or an int >= 0)."""
    value = position.position if isinstance(position, Change) else position
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        msg = f"ack() takes a Change or a position >= 0, not {shown(position)}."
        raise StoreError(msg)
    return value


def feed_head() -> Step[int]:
    """The position of the last committed change (0 for an empty feed)."""
    rows = yield Statement("SELECT MAX(position) FROM lk_changes")
    last = rows.rows[0][0] if rows.rows else None
    return 0 if last is None else int(last)


def check_delivered(name: str, value: int, head: int) -> None:
    """``value`` is at most ``head``, the highest position the feed can have delivered."""
    if value > head:
        msg = (
            f"ack({value}) for consumer {name!r} is beyond the change feed's head ({head}): "
            f"nothing above {head} has been delivered, and acknowledging it would skip the "
            f"changes committed next. Acknowledge a position from 0 to {head}: a change's "
            ".position or a page's .next."
        )
        raise StoreError(msg)


def consumer_position(name: str) -> Step[int]:
    """The last position consumer ``name`` acknowledged (0 before its first ack)."""
    rows = yield Statement("SELECT position FROM lk_consumers WHERE name = ?", (name,))
    return int(rows.rows[0][0]) if rows.rows else 0


def ack(name: str, position: int, now: int) -> Step[None]:
    """Move consumer ``name``'s cursor to ``position`` (never backwards)."""
    yield Statement(
        "INSERT INTO lk_consumers (name, position, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
        " updated_at = excluded.updated_at"
        " WHERE lk_consumers.position < excluded.position",
        (name, position, now),
    )


# -- what a migration rewrites ---------------------------------------------------------------


def machines() -> Step[list[str]]:
    """The lifecycle names that have stored rows."""
    rows = yield Statement("SELECT DISTINCT machine FROM lk_instances")
    return sorted(str(m) for (m,) in rows.rows)


def outdated(machine: str, version: int, after: str, batch: int) -> Step[list[str]]:
    """Up to ``batch`` ids of ``machine`` rows below schema ``version``, in id order after
    ``after``."""
    rows = yield Statement(
        "SELECT id FROM lk_instances WHERE machine = ? AND schema_version < ?"
        " AND id > ? ORDER BY id LIMIT ?",
        (machine, version, after, batch),
    )
    return [str(i) for (i,) in rows.rows]
