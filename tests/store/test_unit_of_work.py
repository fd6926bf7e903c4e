"""The unit of work and extension tables: the API coordinators (the stored WorkGraph) use."""

from __future__ import annotations

import threading

import pytest

from lifecyclekit.errors import NoSuchStore
from lifecyclekit.store import (
    Extension,
    RetryPolicy,
    Store,
    StoreError,
    UnitOfWork,
    UnknownInstance,
    WriteConflict,
)
from tests.helpers import raw_sql
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY, StrayToggle, Toggle

LEDGER = Extension(
    "ledger",
    1,
    (
        "CREATE TABLE IF NOT EXISTS lk_ledger (name TEXT PRIMARY KEY, total INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS lk_ledger_lines (name TEXT NOT NULL, amount INTEGER)",
    ),
)


def test_everything_in_a_unit_of_work_commits_together(store: Store) -> None:
    """load/save/add/remove and extension SQL commit as one; the result is returned."""
    store.create("toggle", id="a")
    store.create("toggle", id="gone")
    store.extension(LEDGER)

    def operation(uow: UnitOfWork) -> int:
        toggle = uow.load("a")
        assert uow.version("a") == 1
        toggle.flip(text="x")
        uow.save("a", toggle)
        assert uow.version("a") == 2
        uow.add("b", Toggle(label="new"))
        uow.remove("gone")
        ledger = uow.extension(LEDGER)
        ledger.execute("INSERT INTO lk_ledger (name, total) VALUES (?, ?)", ("a", 5))
        assert ledger.execute("UPDATE lk_ledger SET total = total + 1 WHERE name = ?", ("a",))
        row = ledger.query_one("SELECT total FROM lk_ledger WHERE name = ?", ("a",))
        assert row is not None
        return int(row[0])

    assert store.run(operation) == 6
    assert store.get("a").state == "on"
    assert [r.event for r in store.history("a")] == ["flip"]
    assert store.get("b").context == {"label": "new", "flips": 0}
    with pytest.raises(UnknownInstance):
        store.get("gone")


def test_an_exception_rolls_everything_back(store: Store) -> None:
    """Nothing of a failed unit of work is written; its after-commit callbacks never run."""
    store.create("toggle", id="a")
    store.extension(LEDGER)
    called: list[str] = []

    def operation(uow: UnitOfWork) -> None:
        toggle = uow.load("a")
        toggle.flip(text="x")
        uow.save("a", toggle)
        uow.add("b", Toggle())
        uow.extension(LEDGER).execute("INSERT INTO lk_ledger VALUES ('a', 1)")
        uow.after_commit(lambda: called.append("after"))
        msg = "boom"
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="boom"):
        store.run(operation)
    assert store.get("a").revision == 0
    assert store.count() == 1
    assert store.changes() == []
    assert called == []
    assert store.run(lambda uow: uow.extension(LEDGER).query("SELECT * FROM lk_ledger")) == []


def test_records_saved_by_a_unit_of_work_reach_after_commit_and_the_feed(store: Store) -> None:
    """Like send's: each committed record once to after_commit, on_commit and the feed;
    uow.after_commit callbacks run after them."""
    seen: list[str] = []
    store.on_commit(lambda change: seen.append(f"on_commit {change.id} {change.record.seq}"))
    store.create("toggle", id="a")

    def operation(uow: UnitOfWork) -> None:
        toggle = uow.load("a")
        toggle.flip_twice(text="x")
        uow.save("a", toggle)
        uow.after_commit(lambda: seen.append("uow"))

    store.run(operation)
    assert seen == ["on_commit a 1", "on_commit a 2", "uow"]
    assert [(c.id, c.record.seq) for c in store.changes()] == [("a", 1), ("a", 2)]


def test_a_lost_compare_and_set_raises_write_conflict_in_one_attempt(store: Store) -> None:
    """save() of an instance whose row changed since it was loaded is a WriteConflict
    (shown with a version bumped behind the unit of work's back, in the same transaction
    order a concurrent writer would produce)."""
    store.create("toggle", id="a")
    with pytest.raises(WriteConflict, match="'a' was changed by another writer"):  # noqa: PT012
        with store.unit_of_work() as uow:
            toggle = uow.load("a")
            uow._execute("UPDATE lk_instances SET version = version + 1 WHERE id = 'a'", ())
            toggle.flip(text="x")
            uow.save("a", toggle)
    assert store.get("a").revision == 0


@pytest.mark.postgres
def test_run_re_runs_after_a_concurrent_writer_and_commits_once(opener: Opener) -> None:
    """On PostgreSQL another connection commits between load and save: the unit of work is
    re-run from the start, and its after-commit callback runs once."""
    from tests.helpers import postgres_url, reset_postgres

    url = postgres_url()
    reset_postgres(url)
    attempts: list[int] = []
    committed: list[str] = []
    with opener(url, registry=REGISTRY, create=True) as store:
        store.create("toggle", id="a")

        def operation(uow: UnitOfWork) -> None:
            attempts.append(1)
            toggle = uow.load("a")
            if len(attempts) == 1:
                raw_sql(url, "UPDATE lk_instances SET version = version + 1 WHERE id = 'a'")
            toggle.flip(text="x")
            uow.save("a", toggle)
            uow.after_commit(lambda: committed.append("done"))

        store.run(operation)
        assert (len(attempts), committed) == (2, ["done"])
        assert store.get("a").revision == 1


def test_exhausted_retries_say_how_many_attempts(opener: Opener, store_url: str) -> None:
    """WriteConflict after the policy's attempts names the number."""
    with opener(
        store_url, registry=REGISTRY, create=True, retry=RetryPolicy(attempts=3, base=0)
    ) as store:
        store.create("toggle", id="a")

        def always_conflicting(uow: UnitOfWork) -> None:
            msg = "lost"
            raise WriteConflict(msg)

        with pytest.raises(WriteConflict, match="after 3 attempts"):
            store.run(always_conflicting)


def test_read_only_units_of_work_refuse_writes(store: Store) -> None:
    """write=False loads but refuses add/save/remove."""
    store.create("toggle", id="a")

    def operation(uow: UnitOfWork) -> None:
        toggle = uow.load("a")
        uow.save("a", toggle)

    with pytest.raises(StoreError, match="read-only"):
        store.run(operation, write=False)


def test_store_operations_inside_a_unit_of_work_are_refused(store: Store) -> None:
    """Calling the store itself from inside its unit of work (same thread) is an error that
    says to use the unit of work."""
    store.create("toggle", id="a")
    with pytest.raises(StoreError, match="use the unit of work's own"):
        store.run(lambda uow: store.send("a", "flip", text="x"))


def test_save_needs_a_load_or_add(store: Store) -> None:
    """save() of an id this unit of work did not load is refused."""
    with pytest.raises(StoreError, match="neither loaded nor added"):
        store.run(lambda uow: uow.save("a", Toggle()))


def test_add_refuses_duplicates_and_unregistered_classes(store: Store) -> None:
    """uow.add of an existing id, or of an instance whose class is not registered."""
    store.create("toggle", id="a")
    with pytest.raises(StoreError, match="'a' already exists"):
        store.run(lambda uow: uow.add("a", Toggle()))
    with pytest.raises(LookupError, match="StrayToggle is not registered"):
        store.run(lambda uow: uow.add("s", StrayToggle()))


# -- extensions ------------------------------------------------------------------------------


def test_extensions_are_created_once_and_upgraded(opener: Opener, store_url: str) -> None:
    """A declared extension's tables exist; a later version runs its upgrade steps once; an
    older declaration than the stored one is refused."""
    with opener(store_url, registry=REGISTRY, extensions=[LEDGER]) as store:
        store.run(
            lambda uow: uow.extension(LEDGER).execute("INSERT INTO lk_ledger VALUES ('a', 1)")
        )
    v2 = Extension(
        "ledger",
        2,
        LEDGER.statements,
        upgrades={2: ("ALTER TABLE lk_ledger ADD COLUMN note TEXT",)},
    )
    for _ in range(2):  # the second open finds version 2 and runs nothing
        with opener(store_url, registry=REGISTRY, extensions=[v2]) as store:
            rows = store.run(
                lambda uow: uow.extension(v2).query("SELECT name, total, note FROM lk_ledger")
            )
            assert rows == [("a", 1, None)]
    with (
        opener(store_url, registry=REGISTRY) as store,
        pytest.raises(StoreError, match="'ledger' .* is at version 2, newer than this code's 1"),
    ):
        store.extension(LEDGER)


def test_a_missing_upgrade_step_is_refused(opener: Opener, store_url: str) -> None:
    """Going from 1 to 3 without a step to 2 names the missing step."""
    with opener(store_url, registry=REGISTRY, extensions=[LEDGER]):
        pass
    v3 = Extension("ledger", 3, LEDGER.statements, upgrades={3: ()})
    with (
        opener(store_url, registry=REGISTRY) as store,
        pytest.raises(StoreError, match="declares no upgrade to 2"),
    ):
        store.extension(v3)


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("UPDATE lk_instances SET state = 'x'", "lk_instances"),
        ("DELETE FROM lk_history", "lk_history"),
        ("SELECT * FROM lk_ledgerx", "lk_ledgerx"),
        ("select * from LK_CHANGES", "lk_changes"),
    ],
)
def test_extension_sql_is_scoped_to_its_own_tables(store: Store, sql: str, table: str) -> None:
    """An extension's SQL naming another lifecyclekit table is refused before it runs."""
    store.extension(LEDGER)
    with pytest.raises(StoreError, match=f"only its own tables .* names {table}"):
        store.run(lambda uow: uow.extension(LEDGER).query(sql))
    with pytest.raises(StoreError, match=f"names {table}"):
        Extension("ledger", 1, (sql,))


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("Ledger", 1, "is not valid"),
        ("instances", 1, "the store's own"),
        ("ledger", 0, "version must be an int >= 1"),
    ],
)
def test_bad_extension_declarations(name: str, version: int, message: str) -> None:
    """Names and versions are checked when the extension is declared."""
    with pytest.raises(StoreError, match=message):
        Extension(name, version, ())


def test_an_undeclared_extension_is_refused_in_a_unit_of_work(store: Store) -> None:
    """uow.extension() of an extension the store does not know says to declare it."""
    with pytest.raises(StoreError, match=r"call store.extension\(ext\) first"):
        store.run(lambda uow: uow.extension(LEDGER))


def test_threads_declaring_an_extension_at_once(opener: Opener, store_url: str) -> None:
    """8 threads of one store declaring the same extension on a fresh database all succeed,
    and the tables are made once."""
    with opener(store_url, registry=REGISTRY) as store:
        errors: list[BaseException] = []

        def declare() -> None:
            try:
                store.extension(LEDGER)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=declare) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        rows = store.run(lambda uow: uow.extension(LEDGER).query("SELECT * FROM lk_ledger"))
        assert rows == []


def test_long_histories_are_written_in_chunks(store: Store) -> None:
    """Adding an instance with 1,200 records (more parameters than one statement takes)
    stores them all, with their changes."""
    toggle = Toggle()
    for n in range(1200):
        toggle.flip(text=str(n))
    store.run(lambda uow: uow.add("long", toggle))
    assert [r.seq for r in store.history("long")] == list(range(1, 1201))
    assert [c.record.seq for c in store.changes(limit=5000)] == list(range(1, 1201))


def test_extension_sql_naming_a_missing_table_is_a_store_error(store: Store) -> None:
    """Issue: PostgreSQL reported a missing table in an extension's SQL as NoSuchStore
    (SQLite: a StoreError). Only a missing table of the store itself means "no store"; the
    message names the table, and the store goes on."""
    store.extension(LEDGER)
    with pytest.raises(StoreError, match="notes_typo") as caught:
        store.run(lambda uow: uow.extension(LEDGER).query("SELECT * FROM notes_typo"))
    assert not isinstance(caught.value, NoSuchStore)
    assert store.run(lambda uow: uow.extension(LEDGER).query("SELECT * FROM lk_ledger")) == []
