"""Effects once per committed transition: after_commit, on_commit and the change feed."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from lifecyclekit import TransitionRecord, TransitionRejected
from lifecyclekit.store import (
    AfterCommitError,
    Change,
    Store,
    StoreError,
    open_store,
)
from tests.helpers import postgres_url, raw_sql, reset_postgres
from tests.store import workers
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY


def test_after_commit_once_per_committed_record_never_for_refusals(
    store: Store, tmp_path: Path
) -> None:
    """A lifecycle's after_commit runs once per record the store committed, after the
    commit; a refused event calls nothing."""
    log = tmp_path / "alerts"
    store.create("alert-toggle", id="a", label=str(log))
    store.send("a", "flip", text="1")
    store.send("a", "flip_twice", text="2")
    with pytest.raises(TransitionRejected):
        store.send("a", "stop")  # from "on": refused
    assert log.read_text().split() == ["1", "2", "3"]


def test_on_commit_sees_every_lifecycle(store: Store) -> None:
    """store.on_commit(callback) gets each committed change, position included."""
    seen: list[Change] = []
    assert store.on_commit(seen.append) is not None
    store.create("toggle", id="t")
    store.create("loud-toggle", id="l")
    store.send("t", "flip", text="x")
    store.send("l", "flip", text="y")
    assert [(c.id, c.machine, c.record.seq) for c in seen] == [
        ("t", "toggle", 1),
        ("l", "loud-toggle", 1),
    ]
    assert [c.position for c in seen] == [c.position for c in store.changes()]


def test_a_failing_callback_does_not_undo_the_commit(store: Store) -> None:
    """AfterCommitError says the commit happened and carries the send's result; the other
    callbacks still ran."""
    seen: list[int] = []

    def broken(change: Change) -> None:
        msg = "mail server down"
        raise RuntimeError(msg)

    store.on_commit(broken)
    store.on_commit(lambda change: seen.append(change.record.seq))
    store.create("toggle", id="t")
    with pytest.raises(AfterCommitError, match="committed, but 1 after-commit") as caught:
        store.send("t", "flip", text="x")
    assert caught.value.result.revision == 1
    assert seen == [1]
    assert store.get("t").revision == 1


@pytest.mark.slow
def test_after_commit_count_under_four_process_contention(store_url: str, tmp_path: Path) -> None:
    """4 processes x 50 sends on 2 shared instances: exactly one after_commit line per
    committed transition, though callbacks inside the event may have run more often."""
    with open_store(store_url, registry=REGISTRY, create=True) as store:
        for name in ("a", "b"):
            store.create("alert-toggle", id=name, label=str(tmp_path / name))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        acknowledged = sum(
            pool.starmap(workers.flip_alerts, [(store_url, ["a", "b"], 50, s) for s in range(4)])
        )
    with open_store(store_url, registry=REGISTRY) as store:
        committed = {name: store.get(name).revision for name in ("a", "b")}
    assert sum(committed.values()) == acknowledged == 200
    for name, revision in committed.items():
        lines = (tmp_path / name).read_text().split()
        assert sorted(map(int, lines)) == list(range(1, revision + 1))
        attempts = (tmp_path / f"{name}.attempts").read_text().split()
        assert len(attempts) >= revision


# -- the change feed -------------------------------------------------------------------------


def test_changes_in_position_order_with_paging(store: Store) -> None:
    """changes(after, limit) pages through committed records in position order."""
    store.create("toggle", id="a")
    store.create("toggle", id="b")
    for n in range(3):
        store.send("a", "flip", text=str(n))
        store.send("b", "flip", text=str(n))
    first = store.changes(limit=4)
    rest = store.changes(after=first.next, limit=4)
    everything = [*first, *rest]
    assert [(c.id, c.record.seq) for c in everything] == [
        ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3),
    ]  # fmt: skip
    positions = [c.position for c in everything]
    assert positions == sorted(set(positions))
    assert store.changes(after=positions[-1]) == []
    assert isinstance(everything[0].record, TransitionRecord)


def test_deleting_an_instance_keeps_its_past_in_the_feed(store: Store) -> None:
    """The feed is a log: a deleted instance's committed changes stay readable."""
    store.create("toggle", id="a")
    store.send("a", "flip", text="x")
    store.delete("a")
    assert [(c.id, c.record.event) for c in store.changes()] == [("a", "flip")]


def test_named_consumers_keep_a_durable_cursor(opener: Opener, store_url: str) -> None:
    """A consumer resumes after its last ack in a new store object; an ack never moves
    its cursor back; unacknowledged changes are seen again (at least once)."""
    with opener(store_url, registry=REGISTRY, create=True) as store:
        store.create("toggle", id="a")
        for n in range(4):
            store.send("a", "flip", text=str(n))
        mailer = store.consumer("mailer")
        assert mailer.position == 0
        batch = mailer.changes(limit=3)
        mailer.ack(batch[1])
        mailer.ack(batch[0].position)  # older: ignored
        assert mailer.position == batch[1].position
    with opener(store_url, registry=REGISTRY) as store:
        mailer = store.consumer("mailer")
        assert [c.record.seq for c in mailer.changes()] == [3, 4]
        assert [c.record.seq for c in store.consumer("audit").changes()] == [1, 2, 3, 4]


@pytest.mark.parametrize("bad", ["", 5, "x" * 201])
def test_bad_consumer_names_and_acks(store: Store, bad: object) -> None:
    """Consumer names and ack positions are checked."""
    with pytest.raises(StoreError, match="consumer name"):
        store.consumer(bad)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="ack"):
        store.consumer("c").ack(-1)


def test_watch_returns_what_is_there_waits_for_more_and_times_out(store: Store) -> None:
    """watch() returns waiting changes at once, wakes for a commit made meanwhile by another
    thread, and returns an empty page when nothing comes before the timeout."""
    store.create("toggle", id="a")
    store.send("a", "flip", text="0")
    (first,) = store.watch(timeout=0)
    assert store.watch(after=first.position, timeout=0.05) == []
    started = threading.Event()

    def later() -> None:
        started.wait()
        store.send("a", "flip", text="1")

    writer = threading.Thread(target=later)
    writer.start()
    started.set()
    woken = store.watch(after=first.position, timeout=60)
    writer.join()
    assert [c.record.seq for c in woken] == [2]


@pytest.mark.postgres
def test_a_reader_never_skips_a_position_that_commits_late(opener: Opener) -> None:
    """Writer A takes a change position, writer B takes a later one and commits first: a
    reader in position order, continuing from its last position, still gets both."""
    url = postgres_url()
    reset_postgres(url)
    with opener(url, registry=REGISTRY, create=True) as store:
        store.create("toggle", id="a")
        store.create("toggle", id="b")
        read: list[list[Change]] = []
        reader = threading.Thread(target=lambda: read.append(list(store.changes())))
        with store.unit_of_work() as uow:
            toggle = uow.load("a")
            toggle.flip(text="A")
            uow.save("a", toggle)  # A's change has its position; A has not committed
            writer = threading.Thread(target=store.send, args=("b", "flip"), kwargs={"text": "B"})
            writer.start()
            writer.join()  # B committed, with a later position
            b_position = raw_sql(url, "SELECT position FROM lk_changes")[0][0]
            reader.start()
            for _ in range(600):  # until the reader waits for A (or, if it does not, returns)
                waiting = raw_sql(
                    url,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%pg_advisory_xact_lock(%'",
                )[0][0]
                if waiting or not reader.is_alive():
                    break
                time.sleep(0.05)
        reader.join()
        (first,) = read
        cursor = first[-1].position if first else 0
        rest = list(store.changes(after=cursor))
        seen = [*first, *rest]
        assert sorted(c.id for c in seen) == ["a", "b"]
        positions = [c.position for c in seen]
        assert positions == sorted(positions)
        a_position = next(c.position for c in seen if c.id == "a")
        assert a_position < b_position  # A's position was taken first, committed last
