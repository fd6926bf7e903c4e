"""Several OS processes against one store: no lost update, no double apply, no gap."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from lifecyclekit.store import Store, open_store
from tests.store import workers
from tests.store_machines import REGISTRY

IDS = [f"i{n}" for n in range(10)]
pytestmark = pytest.mark.slow


def seed(url: str) -> None:
    with open_store(url, registry=REGISTRY) as store:
        for instance_id in IDS:
            store.create("toggle", id=instance_id)


def assert_consistent(store: Store) -> int:
    """Every history is a legal, gap-free chain matching its row; returns the total."""
    total = 0
    for instance_id in IDS:
        snap = store.get(instance_id)
        history = snap.history
        assert [r.seq for r in history] == list(range(1, len(history) + 1))
        state = "off"
        for record in history:
            assert record.source == state
            state = record.target
        assert state == snap.state
        assert snap.revision == len(history) == snap.context["flips"]
        total += len(history)
    return total


def test_four_processes_two_hundred_events(store_url: str) -> None:
    """4 processes x 200 flips over 10 instances: history count == successful sends."""
    seed(store_url)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(workers.flip_many, [(store_url, s, 200, IDS) for s in range(4)])
    with open_store(store_url, registry=REGISTRY) as store:
        assert assert_consistent(store) == sum(results) == 800


def test_idempotency_under_concurrency(store_url: str) -> None:
    """The same 60 keys sent by 4 processes are applied once each."""
    seed(store_url)
    keys = [str(k) for k in range(60)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(workers.flip_with_keys, [(store_url, keys[s:] + keys[:s]) for s in range(4)])
    with open_store(store_url, registry=REGISTRY) as store:
        assert assert_consistent(store) == 60


def test_a_process_killed_mid_send_leaves_the_store_consistent(store_url: str) -> None:
    """SIGKILL during sends: every row and history is still whole and agrees."""
    seed(store_url)
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=workers.flip_forever, args=(store_url, IDS))
    process.start()
    time.sleep(3)
    process.kill()
    process.join()
    with open_store(store_url, registry=REGISTRY) as store:
        assert assert_consistent(store) > 0
        store.send("i0", "flip", text="after the crash")


def test_a_stored_graph_driven_by_four_processes(store_url: str) -> None:
    """12 chains of 3 works drained by 4 processes: each work runs exactly once, every
    dependent is unblocked, and no propagation is lost."""
    from lifecyclekit.machines import WorkGraph, WorkRequest

    with open_store(store_url) as store:
        graph = WorkGraph(store=store)
        chains = [[WorkRequest(worker="Step") for _ in range(3)] for _ in range(12)]
        for a, b, c in chains:
            graph.begin_with(a).then(b).then(c).enqueue()
    deadline = time.time() + 120
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ran = pool.starmap(workers.drain_graph, [(store_url, deadline)] * 4)
    assert sum(ran) == 36
    with open_store(store_url) as store:
        graph = WorkGraph(store=store)
        for chain in chains:
            for position, request in enumerate(chain):
                events = [r.event for r in graph.work(request.id).history]
                expected = ["start", "finish"]
                assert events == (["prerequisite_succeeded", *expected] if position else expected)
