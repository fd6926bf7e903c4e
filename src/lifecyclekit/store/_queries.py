"""Listings: ``find`` by keyset pages on indexes, ``count``, the change feed in position
order, consumers' cursors, the rows a migration rewrites. Steps, no I/O."""

from __future__ import annotations

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


def filters(
    dialect: Any,
    name: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
) -> tuple[list[str], list[Any]]:
    """WHERE clauses and parameters for find/count."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("machine", name), ("state", state)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    for key, value in (where or {}).items():
        if not isinstance(key, str) or not key or '"' in key or "\\" in key:
            msg = f"find(where=...) keys are context field names, got {shown(key)}."
            raise StoreError(msg)
        if value is not None and not isinstance(value, str | int | float | bool):
            msg = (
                f"find(where={{{key!r}: ...}}) compares with a str, int, float, bool or None,"
                f" not {shown(value)}."
            )
            raise StoreError(msg)
        clause, values = dialect.context_filter(key, value)
        clauses.append(clause)
        params.extend(values)
    return clauses, params


def find(
    dialect: Any,
    name: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
    limit: int,
    after: str | None,
) -> Step[Page[InstanceSummary]]:
    """Newest first, by keyset: an index walk, never a sort of the whole table."""
    clauses, params = filters(dialect, name, state, where)
    if after is not None:
        stamp, last_id = decode_cursor(after)
        clauses.append("(updated_at, id) < (?, ?)")  # a row value: an index range, not a scan
        params += [stamp, last_id]
    sql = (
        "SELECT id, machine, state, revision, updated_at FROM lk_instances"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + " ORDER BY updated_at DESC, id DESC LIMIT ?"
    )
    rows = yield Statement(sql, (*params, limit))
    found: list[InstanceSummary] = []
    skipped: list[Skipped] = []
    for instance_id, machine, st, revision, updated_at in rows.rows:
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
    clauses, params = filters(dialect, name, state, where)
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
    if not isinstance(name, str) or not name or len(name) > 200:
        msg = f"A consumer name is a str of 1-200 characters, not {shown(name)}."
        raise StoreError(msg)
    return name


def check_ack(position: Any) -> int:
    """The position an ack takes (a Change's, or an int >= 0)."""
    value = position.position if isinstance(position, Change) else position
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = f"ack() takes a Change or a position >= 0, not {shown(position)}."
        raise StoreError(msg)
    return value


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
