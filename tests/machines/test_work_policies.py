"""Unique work: every ExistingWorkPolicy and ExistingPeriodicWorkPolicy case of spec §6."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lifecyclekit.machines import (
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    PeriodicWorkRequest,
    WorkGraph,
    WorkGraphError,
    WorkRequest,
    WorkResult,
)
from tests.machines.conftest import ManualClock


def state(graph: WorkGraph, request: WorkRequest) -> str:
    info = graph.info(request.id)
    return info.state.value if info else "deleted"


def named(graph: WorkGraph, name: str) -> list[str]:
    return [i.state.value for i in graph.infos_for_unique_work(name)]


def test_replace_cancels_unfinished_and_deletes_all(graph: WorkGraph) -> None:
    """REPLACE: unfinished named work is cancelled, then every named record is deleted
    (the stop reason of a cancelled running work is covered by W8's tests)."""
    done, running = WorkRequest(worker="D"), WorkRequest(worker="R")
    blocked = WorkRequest(worker="B")
    graph.enqueue_unique_work("sync", "REPLACE", done)
    graph.start(done.id)
    graph.finish(done.id, WorkResult.success())
    graph.enqueue_unique_work("sync", ExistingWorkPolicy.APPEND, running)
    graph.begin_unique_work("other", "KEEP", WorkRequest()).enqueue()
    graph.start(running.id)
    graph.begin_unique_work("sync", "APPEND", WorkRequest(worker="X")).then(blocked).enqueue()
    assert named(graph, "sync") == ["SUCCEEDED", "RUNNING", "BLOCKED", "BLOCKED"]
    fresh = WorkRequest(worker="New")
    graph.enqueue_unique_work("sync", "REPLACE", fresh)
    assert [state(graph, r) for r in (done, running, blocked)] == ["deleted"] * 3
    assert named(graph, "sync") == ["ENQUEUED"]
    assert graph.prerequisites(fresh.id) == []
    assert named(graph, "other") == ["ENQUEUED"]


@pytest.mark.parametrize(
    ("existing", "kept"),
    [
        pytest.param("ENQUEUED", True, id="keeps-enqueued"),
        pytest.param("RUNNING", True, id="keeps-running"),
        pytest.param("SUCCEEDED", False, id="replaces-finished"),
        pytest.param("BLOCKED", False, id="Q1-replaces-blocked-only"),
    ],
)
def test_keep(graph: WorkGraph, existing: str, kept: bool) -> None:
    """KEEP keeps iff a named work is ENQUEUED or RUNNING (Q1: code over docs)."""
    old = WorkRequest(worker="Old")
    if existing == "BLOCKED":
        # A name whose only work is BLOCKED on an unnamed prerequisite: built as data.
        root = WorkRequest(worker="Root")
        graph.begin_with(root).then(old).enqueue()
        data = graph.snapshot().model_dump(mode="json")
        data["names"] = {"n": [str(old.id)]}
        graph = WorkGraph.restore(data, clock=graph.clock)
    else:
        graph.enqueue_unique_work("n", "KEEP", old)
        if existing != "ENQUEUED":
            graph.start(old.id)
        if existing == "SUCCEEDED":
            graph.finish(old.id, WorkResult.success())
    new = WorkRequest(worker="New")
    graph.enqueue_unique_work("n", "KEEP", new)
    if kept:
        assert (state(graph, old), state(graph, new)) == (existing, "deleted")
    else:
        assert (state(graph, old), state(graph, new)) == ("deleted", "ENQUEUED")


@pytest.mark.parametrize(
    ("leaf_result", "appended"),
    [
        pytest.param(None, "BLOCKED", id="unfinished-leaf-blocked"),
        pytest.param(WorkResult.success({"k": 1}), "ENQUEUED", id="Q2-succeeded-leaf-enqueued"),
        pytest.param(WorkResult.failure(), "FAILED", id="failed-leaf-poisons"),
        pytest.param("cancel", "CANCELLED", id="cancelled-leaf-poisons"),
    ],
)
def test_append_to_leaves(graph: WorkGraph, leaf_result: object, appended: str) -> None:
    """APPEND: the new work depends on every leaf, its state by rule E over them."""
    root, leaf = WorkRequest(worker="Root"), WorkRequest(worker="Leaf")
    graph.begin_unique_work("chain", "APPEND", root).then(leaf).enqueue()
    graph.start(root.id)
    graph.finish(root.id, WorkResult.success())
    if leaf_result == "cancel":
        graph.cancel(leaf.id)
    elif isinstance(leaf_result, WorkResult):
        graph.start(leaf.id)
        graph.finish(leaf.id, leaf_result)
    new = WorkRequest(worker="Appended")
    graph.enqueue_unique_work("chain", "APPEND", new)
    assert state(graph, new) == appended
    assert graph.prerequisites(new.id) == [leaf.id]
    if appended == "ENQUEUED":
        assert graph.input_for(new.id) == {"k": 1}


@pytest.mark.parametrize("poison", ["fail", "cancel"])
def test_append_or_replace_drops_a_poisoned_chain(graph: WorkGraph, poison: str) -> None:
    """APPEND_OR_REPLACE: a FAILED or CANCELLED leaf -> old works deleted, new chain ENQUEUED."""
    old = WorkRequest(worker="Old")
    graph.enqueue_unique_work("chain", "APPEND_OR_REPLACE", old)
    if poison == "cancel":
        graph.cancel(old.id)
    else:
        graph.start(old.id)
        graph.finish(old.id, WorkResult.failure())
    new = WorkRequest(worker="New")
    graph.enqueue_unique_work("chain", "APPEND_OR_REPLACE", new)
    assert (state(graph, old), state(graph, new)) == ("deleted", "ENQUEUED")
    assert graph.prerequisites(new.id) == []


def test_append_or_replace_appends_to_a_healthy_chain(graph: WorkGraph) -> None:
    """With no poisoned leaf, APPEND_OR_REPLACE appends like APPEND."""
    old, new = WorkRequest(worker="Old"), WorkRequest(worker="New")
    graph.enqueue_unique_work("chain", "APPEND_OR_REPLACE", old)
    graph.enqueue_unique_work("chain", "APPEND_OR_REPLACE", new)
    assert (state(graph, new), graph.prerequisites(new.id)) == ("BLOCKED", [old.id])


@pytest.mark.parametrize("policy", ["APPEND", "APPEND_OR_REPLACE"])
def test_appending_onto_periodic_work_is_refused(graph: WorkGraph, policy: str) -> None:
    """Q6: a name holding periodic work cannot have one-time work chained onto it."""
    graph.enqueue_unique_periodic_work("p", "KEEP", PeriodicWorkRequest(worker="Sync"))
    before = graph.snapshot()
    with pytest.raises(WorkGraphError, match="cannot chain onto periodic work"):
        graph.enqueue_unique_work("p", policy, WorkRequest())
    assert graph.snapshot() == before


def test_periodic_update_in_place(graph: WorkGraph, clock: ManualClock) -> None:
    """UPDATE: same id, generation + 1, enqueue time and counts preserved (P9)."""
    old = PeriodicWorkRequest(worker="Sync", repeat_interval=timedelta(hours=8))
    graph.enqueue_unique_periodic_work("sync", "UPDATE", old)
    enqueued_at = graph.work(old.id).context.last_enqueue_time
    clock.advance(hours=3)
    newer = PeriodicWorkRequest(worker="Sync", repeat_interval=timedelta(hours=5))
    graph.enqueue_unique_periodic_work("sync", ExistingPeriodicWorkPolicy.UPDATE, newer)
    assert graph.info(newer.id) is None
    info = graph.info(old.id)
    assert info is not None
    assert (info.generation, info.periodicity.repeat_interval) == (1, timedelta(hours=5))  # type: ignore[union-attr]
    assert graph.work(old.id).context.last_enqueue_time == enqueued_at


def test_periodic_update_of_a_cancelled_work_replaces_it(graph: WorkGraph) -> None:
    """UPDATE on a CANCELLED work deletes it and enqueues the new request."""
    old = PeriodicWorkRequest(worker="Sync")
    graph.enqueue_unique_periodic_work("sync", "UPDATE", old)
    graph.cancel(old.id)
    new = PeriodicWorkRequest(worker="Sync")
    graph.enqueue_unique_periodic_work("sync", "UPDATE", new)
    assert (graph.info(old.id), named(graph, "sync")) == (None, ["ENQUEUED"])


def test_periodic_update_errors(graph: WorkGraph) -> None:
    """UPDATE refuses chains and one-time work under the name."""
    graph.begin_unique_work("one", "REPLACE", WorkRequest()).then(WorkRequest()).enqueue()
    with pytest.raises(WorkGraphError, match="Can't apply UPDATE policy to the chains of work."):
        graph.enqueue_unique_periodic_work("one", "UPDATE", PeriodicWorkRequest())
    graph.enqueue_unique_work("single", "REPLACE", WorkRequest())
    with pytest.raises(WorkGraphError, match="Can't update OneTimeWorker to Periodic Worker"):
        graph.enqueue_unique_periodic_work("single", "UPDATE", PeriodicWorkRequest())


@pytest.mark.parametrize(
    ("policy", "replaced"),
    [("REPLACE", True), ("CANCEL_AND_REENQUEUE", True), ("KEEP", False)],
)
def test_periodic_replace_and_keep(graph: WorkGraph, policy: str, replaced: bool) -> None:
    """REPLACE and CANCEL_AND_REENQUEUE map to REPLACE; KEEP keeps enqueued work."""
    old, new = PeriodicWorkRequest(worker="Old"), PeriodicWorkRequest(worker="New")
    graph.enqueue_unique_periodic_work("p", policy, old)
    graph.enqueue_unique_periodic_work("p", policy, new)
    assert (graph.info(old.id) is None, graph.info(new.id) is not None) == (replaced, replaced)
