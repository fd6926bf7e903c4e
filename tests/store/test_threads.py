"""One store object shared by many threads: nothing lost, nothing doubled, nothing unreadable."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from lifecyclekit import LifecycleError
from lifecyclekit.store import Store, UnitOfWork, open_store
from tests.store_machines import REGISTRY

pytestmark = pytest.mark.slow


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """The synchronous store only: these tests share it between threads (the asynchronous
    store's tasks share one in test_async_store.py)."""
    with open_store(store_url, registry=REGISTRY, create=True) as opened:
        yield opened


THREADS = 8
SENDS = 200
IDS = [f"shared-{n}" for n in range(5)]


def assert_legal_chains(store: Store, ids: list[str]) -> dict[str, int]:
    """Every history is gap-free, a legal chain of flips from ``off``, and agrees with its
    row; returns each instance's number of records."""
    lengths = {}
    for instance_id in ids:
        snap = store.get(instance_id)
        history = snap.history
        assert [r.seq for r in history] == list(range(1, len(history) + 1))
        state = "off"
        for record in history:
            assert (record.event, record.source) == ("flip", state)
            state = record.target
        assert state == snap.state
        assert snap.revision == len(history) == snap.context["flips"]
        lengths[instance_id] = len(history)
    return lengths


def test_eight_threads_share_one_store(store: Store) -> None:
    """8 threads x 200 sends on 5 shared instances through one store object: every
    acknowledged send is in its instance's history, exactly once, and nothing else is."""
    for instance_id in IDS:
        store.create("toggle", id=instance_id)
    acknowledged: list[tuple[str, int, str]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        for n in range(SENDS):
            instance_id = IDS[(number + n) % len(IDS)]
            text = f"{number}-{n}"
            try:
                result = store.send(instance_id, "flip", text=text)
            except LifecycleError as exc:  # pragma: no cover - reported below
                with lock:
                    failures.append(exc)
                continue
            (record,) = result.records
            with lock:
                acknowledged.append((instance_id, record.seq, text))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    lengths = assert_legal_chains(store, IDS)
    assert sum(lengths.values()) == len(acknowledged) == THREADS * SENDS
    stored = {
        (instance_id, r.seq, r.payload["text"])  # type: ignore[index]
        for instance_id in IDS
        for r in store.history(instance_id)
    }
    assert stored == set(acknowledged)
    assert Counter(c.id for c in store.changes(limit=THREADS * SENDS)) == Counter(lengths)


def test_threads_running_units_of_work(store_url: str) -> None:
    """4 threads move one token between instances through units of work: the total is
    conserved and every run that returned is committed."""
    with open_store(store_url, registry=REGISTRY, create=True) as store:
        for instance_id in IDS:
            store.create("toggle", id=instance_id)
        done: list[int] = []

        def flip_pair(uow: UnitOfWork, a: str, b: str) -> None:
            for instance_id in (a, b):
                toggle = uow.load(instance_id)
                toggle.flip(text="pair")
                uow.save(instance_id, toggle)

        def worker(number: int) -> None:
            for n in range(25):
                a, b = IDS[(number + n) % 5], IDS[(number + n + 1) % 5]
                store.run(lambda uow, a=a, b=b: flip_pair(uow, a, b))  # type: ignore[misc]
                done.append(1)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(assert_legal_chains(store, IDS).values()) == 2 * len(done) == 200


def test_threads_reading_while_others_write(store: Store) -> None:
    """Readers in other threads always see a whole instance (row and history agree)."""
    store.create("toggle", id="r")
    stop = threading.Event()
    seen: list[list[int]] = [[], [], []]
    problems: list[BaseException] = []

    def reader(mine: list[int]) -> None:
        while not stop.is_set():
            try:
                snap = store.get("r")
                assert snap.revision == len(snap.history) == snap.context["flips"]
                mine.append(snap.revision)
            except BaseException as exc:  # pragma: no cover - reported below
                problems.append(exc)
                return

    readers = [threading.Thread(target=reader, args=(mine,)) for mine in seen]
    for thread in readers:
        thread.start()
    for n in range(100):
        store.send("r", "flip", text=str(n))
    stop.set()
    for thread in readers:
        thread.join()
    assert problems == []
    assert all(mine == sorted(mine) for mine in seen)  # a reader's view only moves forward
    assert store.get("r").revision == 100
