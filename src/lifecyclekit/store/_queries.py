"""Listings: ``find`` by keyset pages on indexes, ``count``, and the change feed in position
order. Read-only steps, no I/O."""

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

__all__ = ["changes", "count", "find"]


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
