"""WorkGraph: chains, propagation (C1-C4), merging (§5.4), unique work (§6), queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from lifecyclekit.machines import (
    ChainedWork,
    DeviceConditions,
    PeriodicWorkRequest,
    StopReason,
    UnknownWork,
    WorkContinuation,
    WorkGraph,
    WorkGraphError,
    WorkRequest,
    WorkResult,
)
from tests.machines.conftest import ManualClock

OK = WorkResult.success()


def states(graph: WorkGraph, *requests: WorkRequest) -> list[str]:
    return [graph.info(r.id).state.value if graph.info(r.id) else "gone" for r in requests]  # type: ignore[union-attr]


def run(graph: WorkGraph, request: WorkRequest, result: WorkResult = OK) -> None:
    graph.start(request.id)
    graph.finish(request.id, result)


def test_spec_chain_downloads_merge_upload(graph: WorkGraph) -> None:
    """C1/C2: the merge waits for both downloads, then gets their outputs merged into its input."""
    a, b = WorkRequest(worker="DownloadA"), WorkRequest(worker="DownloadB")
    merge, upload = WorkRequest(worker="Merge", input={"k": "own"}), WorkRequest(worker="Upload")
    graph.begin_with(a, b).then(merge).then(upload).enqueue()
    assert states(graph, a, b, merge, upload) == ["ENQUEUED", "ENQUEUED", "BLOCKED", "BLOCKED"]
    assert graph.prerequisites(merge.id) == [a.id, b.id]
    run(graph, a, WorkResult.success({"k": "from-a", "x": 1}))
    assert states(graph, merge) == ["BLOCKED"]
    run(graph, b, WorkResult.success({"y": 2}))
    assert states(graph, merge, upload) == ["ENQUEUED", "BLOCKED"]
    # OverwritingInputMerger: own input first, then parents' outputs, later wins.
    assert graph.input_for(merge.id) == {"k": "from-a", "x": 1, "y": 2}
    run(graph, merge, WorkResult.success({"file": "m.zip"}))
    assert graph.input_for(upload.id) == {"file": "m.zip"}


def test_failure_fails_every_descendant_but_not_siblings(graph: WorkGraph) -> None:
    """C3: {A SUCCEEDED, B FAILED} -> the dependent and its descendants FAILED, with the cause."""
    a, b, c, d = (WorkRequest(worker=w) for w in "ABCD")
    graph.begin_with(a, b).then(c).then(d).enqueue()
    run(graph, a)
    run(graph, b, WorkResult.failure({"why": "404"}))
    assert states(graph, a, b, c, d) == ["SUCCEEDED", "FAILED", "FAILED", "FAILED"]
    record = graph.work(d.id).history[-1]
    assert (record.event, record.payload) == ("prerequisite_failed", {"prerequisite": str(b.id)})
    assert graph.info(c.id).output == {}  # type: ignore[union-attr]


def test_cancel_cascades_and_leaves_other_prerequisites(graph: WorkGraph) -> None:
    """C4 with the spec's graph 0 -> {1, 4}, {1, 3} -> 2: cancel 0 cancels 0, 1, 2, 4, not 3."""
    w = [WorkRequest(worker=f"W{i}") for i in range(5)]
    first = graph.begin_with(w[0])
    first.then(w[4]).enqueue()
    one = first.then(w[1])
    WorkContinuation.combine(one, graph.begin_with(w[3])).then(w[2]).enqueue()
    graph.cancel(w[0].id)
    assert states(graph, *w) == ["CANCELLED", "CANCELLED", "CANCELLED", "ENQUEUED", "CANCELLED"]


def test_first_terminal_wins(graph: WorkGraph) -> None:
    """A cancelled work is never failed by a later failure cascade, nor the reverse."""
    a, b, c = WorkRequest(worker="A"), WorkRequest(worker="B"), WorkRequest(worker="C")
    graph.begin_with(a).then(b).then(c).enqueue()
    graph.cancel(b.id)
    graph.start(a.id)
    graph.finish(a.id, WorkResult.failure())
    assert states(graph, a, b, c) == ["FAILED", "CANCELLED", "CANCELLED"]
    graph.cancel(a.id)
    assert states(graph, a, b, c) == ["FAILED", "CANCELLED", "CANCELLED"]


def test_cascades_walk_through_finished_works() -> None:
    """C3: the failure reaches past a work that is already CANCELLED (a race WorkManager
    allows; built here by cancelling B behind the graph's back, so in memory only)."""
    graph = WorkGraph(clock=ManualClock())
    a, b, c = WorkRequest(worker="A"), WorkRequest(worker="B"), WorkRequest(worker="C")
    graph.begin_with(a).then(b).then(c).enqueue()
    graph.work(b.id).send("cancel")  # B itself cancelled, cascade not run by the graph
    graph.start(a.id)
    graph.finish(a.id, WorkResult.failure())
    assert states(graph, a, b, c) == ["FAILED", "CANCELLED", "FAILED"]


def test_cancel_of_a_finished_root_still_cascades(graph: WorkGraph) -> None:
    """W11/Q11: cancel(id) on a finished work is a no-op on it and cancels its dependents."""
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    graph.begin_with(a).then(b).enqueue()
    run(graph, a)
    graph.start(b.id)
    graph.cancel(a.id)
    assert states(graph, a, b) == ["SUCCEEDED", "CANCELLED"]
    assert graph.info(b.id).stop_reason is StopReason.NOT_STOPPED  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["fail", "cancel", "succeed"])
def test_deep_chains_do_not_recurse(graph: WorkGraph, how: str) -> None:
    """A 600-deep chain propagates iteratively (Python's recursion limit is 1000)."""
    requests = [WorkRequest(worker=f"Step{i}") for i in range(600)]
    continuation = graph.begin_with(requests[0])
    for request in requests[1:]:
        continuation = continuation.then(request)
    continuation.enqueue()
    if how == "fail":
        run(graph, requests[0], WorkResult.failure())
        assert states(graph, requests[-1]) == ["FAILED"]
    elif how == "cancel":
        graph.cancel(requests[0].id)
        assert states(graph, requests[-1]) == ["CANCELLED"]
    else:
        for request in requests:
            run(graph, request)
        assert states(graph, requests[-1]) == ["SUCCEEDED"]


def test_array_merger_and_combine(graph: WorkGraph) -> None:
    """§5.1/§5.4: combine's hidden join merges into arrays and completes itself."""
    x, y, e = WorkRequest(worker="X"), WorkRequest(worker="Y"), WorkRequest(worker="E")
    WorkContinuation.combine(graph.begin_with(x), graph.begin_with(y)).then(e).enqueue()
    run(graph, x, WorkResult.success({"v": 1, "tags": ["a"]}))
    assert states(graph, e) == ["BLOCKED"]
    run(graph, y, WorkResult.success({"v": 2, "tags": ["b", "c"]}))
    assert states(graph, e) == ["ENQUEUED"]
    assert graph.input_for(e.id) == {"v": [1, 2], "tags": ["a", "b", "c"]}


def test_array_merger_on_a_request(graph: WorkGraph) -> None:
    """ArrayCreatingInputMerger: own primitive becomes an array; parents' values concatenate."""
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    child = WorkRequest(worker="C", input={"n": 0, "s": None}, input_merger="array")
    graph.begin_with(a, b).then(child).enqueue()
    run(graph, a, WorkResult.success({"n": 1, "s": "x"}))
    run(graph, b, WorkResult.success({"n": [2, 3]}))
    assert graph.input_for(child.id) == {"n": [0, 1, 2, 3], "s": [None, "x"]}


def test_array_merger_type_clash_fails_the_work_and_its_chain(graph: WorkGraph) -> None:
    """A merge error inside the run makes the work FAILED (§5.4), dependents too."""
    a = WorkRequest(worker="A")
    child = WorkRequest(worker="C", input={"n": "zero"}, input_merger="array")
    after = WorkRequest(worker="D")
    graph.begin_with(a).then(child).then(after).enqueue()
    run(graph, a, WorkResult.success({"n": 1}))
    with pytest.raises(ValueError, match="types don't match"):
        graph.input_for(child.id)
    graph.start(child.id)
    assert states(graph, child, after) == ["FAILED", "FAILED"]
    assert graph.info(child.id).run_attempt_count == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda g: g.enqueue(), "enqueue needs at least one WorkRequest."),
        (lambda g: g.begin_with(), "beginWith needs at least one OneTimeWorkRequest."),
        (lambda g: g.begin_unique_work("n", "KEEP"), "beginUniqueWork needs at least one"),
        (lambda g: g.begin_with(PeriodicWorkRequest()), "periodic work cannot be part of a chain"),
        (lambda g: g.begin_with(WorkRequest()).then(PeriodicWorkRequest()), "periodic"),
    ],
)
def test_building_errors(graph: WorkGraph, call: Any, pattern: str) -> None:
    """V9-V11 and §4.4: empty lists and periodic work in chains are refused."""
    with pytest.raises(WorkGraphError, match=pattern):
        call(graph)


def test_cycles_are_refused_and_nothing_is_stored(graph: WorkGraph) -> None:
    """V12: a request appearing twice in a continuation is a cycle; nothing is enqueued."""
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    with pytest.raises(WorkGraphError, match="WorkContinuation has cycles"):
        graph.begin_with(a).then(b).then(a).enqueue()
    assert graph.info(a.id) is None
    assert graph.snapshot().works == ()


def test_enqueuing_the_same_request_twice_is_refused(graph: WorkGraph) -> None:
    """A request id can be enqueued once."""
    a = WorkRequest()
    graph.enqueue(a)
    with pytest.raises(WorkGraphError, match="already enqueued"):
        graph.enqueue(a)


def test_unknown_ids_are_lookup_errors(graph: WorkGraph) -> None:
    """Driving an unknown id raises a LookupError saying how to find ids; info() is None."""
    missing = uuid4()
    assert graph.info(missing) is None
    with pytest.raises(UnknownWork, match="infos_by_tag") as info:
        graph.start(missing)
    assert isinstance(info.value, LookupError)
    with pytest.raises(LookupError):
        graph.cancel(missing)


def test_a_refused_operation_changes_nothing(
    graph: WorkGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a step of a propagation fails, the whole graph is as before (in memory: every
    touched work's atomic(); stored: the one store transaction)."""
    original = ChainedWork._note_failure

    def explode(self: ChainedWork, prerequisite: UUID) -> None:
        if self.context.worker == "C":
            msg = "callback exploded"
            raise RuntimeError(msg)
        original(self, prerequisite)

    # Patched before the works exist: psm binds callbacks when an instance is built.
    monkeypatch.setattr(ChainedWork, "_note_failure", explode)
    a, b, c = WorkRequest(worker="A"), WorkRequest(worker="B"), WorkRequest(worker="C")
    graph.begin_with(a).then(b).then(c).enqueue()
    graph.start(a.id)
    before = graph.snapshot()
    with pytest.raises(RuntimeError, match="callback exploded"):
        graph.finish(a.id, WorkResult.failure())
    assert graph.snapshot() == before
    assert states(graph, a, b, c) == ["RUNNING", "BLOCKED", "BLOCKED"]


def test_queries(graph: WorkGraph, clock: ManualClock) -> None:
    """infos_by_tag, infos_for_unique_work, and runnable with conditions, earliest first."""
    late = WorkRequest(worker="Late", tags={"sync"}, initial_delay=timedelta(minutes=5))
    wifi = WorkRequest(worker="Wifi", tags={"sync"}, constraints={"network_type": "UNMETERED"})
    now = WorkRequest(worker="Now")
    graph.enqueue(late, wifi, now)
    nightly = WorkRequest(worker="Nightly")
    graph.enqueue_unique_work("nightly", "KEEP", nightly)
    assert {i.id for i in graph.infos_by_tag("sync")} == {late.id, wifi.id}
    assert [i.id for i in graph.infos_for_unique_work("nightly")] == [nightly.id]
    assert set(graph.runnable()) == {wifi.id, now.id, nightly.id}
    assert set(graph.runnable(DeviceConditions(unmetered=False))) == {now.id, nightly.id}
    clock.advance(minutes=5)
    assert len(graph.runnable()) == 4
    assert graph.runnable()[-1] == late.id  # its next schedule time is the latest
    graph.start(now.id)
    assert now.id not in graph.runnable()


def test_update_work(graph: WorkGraph) -> None:
    """W10: generation + 1; APPLIED_IMMEDIATELY / APPLIED_FOR_NEXT_RUN / NOT_APPLIED."""
    request = WorkRequest(worker="Upload", input={"v": 1})
    graph.enqueue(request)
    changed = request.model_copy(update={"input": {"v": 2}})
    assert graph.update_work(changed) == "APPLIED_IMMEDIATELY"
    assert graph.info(request.id).generation == 1  # type: ignore[union-attr]
    assert graph.input_for(request.id) == {"v": 2}
    graph.start(request.id)
    assert graph.update_work(changed) == "APPLIED_FOR_NEXT_RUN"
    assert graph.info(request.id).run_attempt_count == 1  # type: ignore[union-attr]
    graph.finish(request.id, OK)
    assert graph.update_work(changed) == "NOT_APPLIED"
    assert graph.info(request.id).generation == 2  # type: ignore[union-attr]
    with pytest.raises(WorkGraphError, match="Can't update OneTime Worker to Periodic Worker"):
        graph.update_work(PeriodicWorkRequest(id=request.id))


def test_instantiation_failure_propagates(graph: WorkGraph) -> None:
    """W9 in a chain: FAILED without running, dependents FAILED."""
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    graph.begin_with(a).then(b).enqueue()
    graph.instantiation_failed(a.id)
    assert states(graph, a, b) == ["FAILED", "FAILED"]


def test_cancel_by_tag_unique_name_and_all(graph: WorkGraph) -> None:
    """Cancel by tag, by unique name, and everything: only unfinished works are selected."""
    a, b, c = WorkRequest(worker="A", tags={"t"}), WorkRequest(worker="B"), WorkRequest(worker="C")
    graph.enqueue(a, b)
    graph.enqueue_unique_work("u", "REPLACE", c)
    graph.cancel_by_tag("t")
    assert states(graph, a, b, c) == ["CANCELLED", "ENQUEUED", "ENQUEUED"]
    graph.cancel_unique_work("u")
    assert states(graph, b, c) == ["ENQUEUED", "CANCELLED"]
    graph.cancel_all_work()
    assert states(graph, b) == ["CANCELLED"]


def test_snapshot_restore_round_trip(graph: WorkGraph, clock: ManualClock) -> None:
    """The whole graph (edges, names, joins, every work) round-trips through JSON."""
    a, b, c = WorkRequest(worker="A"), WorkRequest(worker="B"), WorkRequest(worker="C")
    WorkContinuation.combine(graph.begin_with(a), graph.begin_unique_work("n", "APPEND", b)).then(
        c
    ).enqueue()
    run(graph, a, WorkResult.success({"k": 1}))
    snap = graph.snapshot()
    restored = WorkGraph.restore(snap.model_dump_json(), clock=clock)
    assert restored.snapshot() == snap
    run(restored, b, WorkResult.success({"k": 2}))
    assert states(restored, c) == ["ENQUEUED"]
    assert restored.input_for(c.id) == {"k": [1, 2]}


def test_c5_update_keeps_a_blocked_work_blocked(graph: WorkGraph) -> None:
    """C5: updateWork on a BLOCKED work keeps it BLOCKED, spec replaced, generation + 1."""
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B", tags={"old"})
    graph.begin_with(a).then(b).enqueue()
    result = graph.update_work(b.model_copy(update={"tags": frozenset({"new"})}))
    info = graph.info(b.id)
    assert result == "APPLIED_IMMEDIATELY"
    assert info is not None
    assert (info.state.value, info.generation, info.tags) == ("BLOCKED", 1, {"B", "new"})


def test_p10_periodic_instantiation_failure_in_a_graph(graph: WorkGraph) -> None:
    """P10: a periodic work that cannot be instantiated closes its period, never FAILED."""
    periodic = PeriodicWorkRequest(worker="Sync")
    graph.enqueue(periodic)
    graph.instantiation_failed(periodic.id)
    assert graph.info(periodic.id).state.value == "ENQUEUED"  # type: ignore[union-attr]
    assert graph.work(periodic.id).context.period_count == 1
