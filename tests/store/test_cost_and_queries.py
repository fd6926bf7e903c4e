"""Send cost independent of history length; paged history; find that scales and is right."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lifecyclekit.store import Store, StoreError
from tests.helpers import raw_sql
from tests.store.blocking import BlockingStore
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY, Toggle


@contextmanager
def rows_read(store: Store) -> Iterator[list[int]]:
    """Count the rows each statement returns, by wrapping the store's real back-end (either
    store's: the asynchronous one's transactions are asynchronous context managers)."""
    counts: list[int] = []
    backend = store._backend
    original = backend.transaction

    @contextmanager
    def counting(**kwargs: Any) -> Iterator[Any]:
        with original(**kwargs) as tx:
            execute = tx.execute

            class Counting:
                def execute(self, sql: str, params: Any = ()) -> Any:
                    result = execute(sql, params)
                    counts.append(len(result.rows))
                    return result

            yield Counting()

    @asynccontextmanager
    async def counting_async(**kwargs: Any) -> AsyncIterator[Any]:
        async with original(**kwargs) as tx:
            execute = tx.execute

            class Counting:
                committed = property(lambda self: tx.committed)

                async def execute(self, sql: str, params: Any = ()) -> Any:
                    result = await execute(sql, params)
                    counts.append(len(result.rows))
                    return result

            yield Counting()

    asynchronous = isinstance(store, BlockingStore)
    backend.transaction = counting_async if asynchronous else counting  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        backend.transaction = original  # type: ignore[method-assign]


def test_send_reads_the_same_whatever_the_history_length(store: Store) -> None:
    """A send on an instance with 300 records reads as many rows as one with 1 (its row and
    last record, in one statement), and returns only the record it added."""
    store.create("toggle", id="short")
    store.create("toggle", id="long")
    store.send("short", "flip", text="0")
    for n in range(300):
        store.send("long", "flip", text=str(n))
    reads = {}
    for instance_id in ("short", "long"):
        with rows_read(store) as counts:
            result = store.send(instance_id, "flip", text="now")
        reads[instance_id] = sum(counts)
        assert len(result.records) == 1
    assert reads["short"] == reads["long"] <= 3  # the row, a lock row, the new position


def test_history_is_paged(store: Store) -> None:
    """history(after=, limit=) returns a window, oldest first."""
    store.create("toggle", id="t")
    for n in range(7):
        store.send("t", "flip", text=str(n))
    assert [r.seq for r in store.history("t", after=2, limit=3)] == [3, 4, 5]
    assert [r.seq for r in store.history("t", after=5)] == [6, 7]
    assert store.history("t", after=7) == []
    with pytest.raises(StoreError, match="limit must be an int from 1"):
        store.history("t", limit=0)


def test_snapshots_without_history_restore_and_keep_numbering(store: Store) -> None:
    """get(history=False) carries only the last record, restores, and the next record
    continues the numbering."""
    store.create("toggle", id="t")
    for n in range(5):
        store.send("t", "flip", text=str(n))
    snap = store.get("t", history=False)
    assert ([r.seq for r in snap.history], snap.revision) == ([5], 5)
    toggle = Toggle.restore(snap)
    toggle.flip(text="next")
    assert toggle.history[-1].seq == 6
    assert store.load("t", history=False).history == snap.history


def test_timestamps_are_utc_whatever_the_clock_zone(opener: Opener, store_url: str) -> None:
    """updated_at is stored as UTC: newest first holds across clocks in other zones, and
    comes back in UTC."""
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    zones = [timezone(timedelta(hours=h)) for h in (5, -8, 0, 14, -11)]
    now = [base]
    with opener(store_url, registry=REGISTRY, create=True, clock=lambda: now[0]) as store:
        for n, zone in enumerate(zones):
            now[0] = (base + timedelta(minutes=n)).astimezone(zone)
            store.create("toggle", id=f"t{n}")
        found = store.find()
    assert [s.id for s in found] == ["t4", "t3", "t2", "t1", "t0"]
    assert found[0].updated_at == base + timedelta(minutes=4)
    assert found[0].updated_at.utcoffset() == timedelta(0)


def test_keyset_pages_cover_everything_once(store: Store) -> None:
    """Pages of 10 through 25 instances: each once, newest first, then an empty end."""
    for n in range(25):
        store.create("toggle", id=f"t{n:02}")
    seen: list[str] = []
    page = store.find(limit=10)
    while True:
        seen += [s.id for s in page]
        if page.next is None:
            break
        page = store.find(limit=10, after=page.next)
    assert sorted(seen) == [f"t{n:02}" for n in range(25)]
    assert len(seen) == 25
    times = [s.updated_at for s in store.find(limit=25)]
    assert times == sorted(times, reverse=True)


def test_find_filters_on_context_fields(store: Store) -> None:
    """where= compares top-level context fields: strings, numbers, booleans, null."""
    store.create("toggle", id="a", label="lamp")
    store.create("toggle", id="b", label="fan")
    store.create("toggle", id="c", label="lamp")
    store.send("c", "flip", text="x")
    assert sorted(s.id for s in store.find(where={"label": "lamp"})) == ["a", "c"]
    assert [s.id for s in store.find(where={"label": "lamp", "flips": 1})] == ["c"]
    assert [s.id for s in store.find("toggle", "off", where={"label": "lamp"})] == ["a"]
    assert store.count(where={"flips": 0}) == 2
    assert len(store.find(where={"missing": None})) == 3
    assert store.find(where={"flips": True}) == store.find(where={"flips": "1"}) == []
    assert [s.id for s in store.find(where={"flips": 1.0})] == ["c"]


@pytest.mark.parametrize(
    ("where", "message"),
    [({"label": ["lamp"]}, "compares with a str"), ({'la"bel': "x"}, "context field names")],
)
def test_bad_filters_are_refused(store: Store, where: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store.find(where=where)


QUERIES = [
    ((None, None), "SELECT id FROM lk_instances ORDER BY updated_at DESC, id DESC LIMIT 100"),
    (
        (None, None),
        "SELECT id FROM lk_instances WHERE (updated_at, id) < (9e18, 'x')"
        " ORDER BY updated_at DESC, id DESC LIMIT 100",
    ),
    (
        ("toggle", None),
        "SELECT id FROM lk_instances WHERE machine = 'toggle'"
        " ORDER BY updated_at DESC, id DESC LIMIT 100",
    ),
    (
        ("toggle", "on"),
        "SELECT id FROM lk_instances WHERE machine = 'toggle' AND state = 'on'"
        " ORDER BY updated_at DESC, id DESC LIMIT 100",
    ),
]


@pytest.mark.parametrize(
    ("filters", "sql"), QUERIES, ids=["all", "all-after", "name", "name-state"]
)
def test_find_walks_an_index_instead_of_sorting(
    store: Store, store_url: str, filters: tuple[str | None, str | None], sql: str
) -> None:
    """The query plan of find's query (its ORDER BY and filters) uses an index for the order:
    no temporary B-tree on SQLite, no Sort node on PostgreSQL even when sorting is
    discouraged."""
    store.create("toggle", id="t")
    name, state = filters
    assert [s.id for s in store.find(name, state)] == (["t"] if state != "on" else [])
    if store_url.startswith("sqlite"):
        plan = " ".join(str(row) for row in raw_sql(store_url, "EXPLAIN QUERY PLAN " + sql))
        assert "TEMP B-TREE" not in plan.upper(), plan
        assert "USING INDEX" in plan.upper() or "USING COVERING INDEX" in plan.upper(), plan
        if "<" in sql:
            assert "SEARCH" in plan.upper(), plan  # a range seek, not a walk from the top
    else:
        plan = _pg_plan(store_url, sql)
        assert "Sort" not in plan, plan


def _pg_plan(url: str, sql: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET enable_sort = off")
        return "\n".join(row[0] for row in connection.execute(f"EXPLAIN {sql}").fetchall())
