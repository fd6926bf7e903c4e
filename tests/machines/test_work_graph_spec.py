"""The graph's share of the spec's second revision (issue 13): progress (§1.3, §10.2), deleted
prerequisites (§10.3), queries (§10.5), pruning (§10.6), errors (§10.7); and ``due`` (issue 12,
point 5). Every table runs on the in-memory graph and on the stored one (SQLite, PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from lifecyclekit import LifecycleError, PayloadError, SnapshotError
from lifecyclekit.machines import (
    PeriodicWorkRequest,
    UnknownWork,
    WorkContinuation,
    WorkGraph,
    WorkGraphError,
    WorkQuery,
    WorkRequest,
    WorkResult,
    WorkState,
)
from lifecyclekit.machines.workmanager.continuation import JOIN_WORKER
from tests.machines.conftest import ManualClock

DATA = {"percent": 50}


def state(graph: WorkGraph, request: WorkRequest) -> str:
    info = graph.info(request.id)
    return info.state.value if info else "deleted"


def run(graph: WorkGraph, request: WorkRequest, result: WorkResult | None = None) -> None:
    graph.start(request.id)
    graph.finish(request.id, result or WorkResult.success())


# -- §1.3 and §10.2: progress -----------------------------------------------------------------

PROGRESS_STEPS: dict[str, Callable[[WorkGraph, WorkRequest], Any]] = {
    "stop": lambda g, r: g.stop(r.id, 7),
    "success": lambda g, r: g.finish(r.id, WorkResult.success()),
    "failure": lambda g, r: g.finish(r.id, WorkResult.failure()),
    "retry": lambda g, r: g.finish(r.id, WorkResult.retry()),
    "update": lambda g, r: g.update_work(r.model_copy(update={"input": {"v": 2}})),
    "set-again": lambda g, r: g.set_progress(r.id, {"percent": 90}),
}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param([], DATA, id="1.3-set-while-running"),
        pytest.param(["set-again"], {"percent": 90}, id="1.3-latest-progress-wins"),
        pytest.param(["stop"], DATA, id="1.3-kept-when-stopped"),
        pytest.param(["success"], {}, id="1.3-deleted-when-success-handled"),
        pytest.param(["failure"], {}, id="1.3-deleted-when-failure-handled"),
        pytest.param(["retry"], {}, id="1.3-deleted-when-retry-handled"),
        pytest.param(["update"], DATA, id="10.2-kept-by-update-while-running"),
        pytest.param(["stop", "update"], {}, id="10.2-cleared-by-update-when-not-running"),
    ],
)
def test_progress(graph: WorkGraph, steps: list[str], expected: dict[str, Any]) -> None:
    """WorkInfo.progress: set while RUNNING, kept on stop, deleted with a handled result,
    cleared by update_work unless running."""
    request = WorkRequest(worker="Upload")
    graph.enqueue(request)
    graph.start(request.id)
    assert graph.set_progress(request.id, DATA) is True
    for step in steps:
        PROGRESS_STEPS[step](graph, request)
    assert graph.info(request.id).progress == expected  # type: ignore[union-attr]


def test_progress_of_a_work_that_is_not_running_is_ignored(graph: WorkGraph) -> None:
    """§1.3: WorkManager ignores setProgress unless RUNNING, with a warning; so does the graph."""
    request = WorkRequest(worker="Upload")
    graph.enqueue(request)
    with pytest.warns(UserWarning, match=r"it is ENQUEUED, not RUNNING"):
        assert graph.set_progress(request.id, DATA) is False
    assert graph.info(request.id).progress == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("work_id", "data", "error", "match"),
    [
        pytest.param(None, {"p": object()}, PayloadError, "not a Data value", id="10.7-bad-data"),
        pytest.param(uuid4(), DATA, UnknownWork, "No work", id="10.7-unknown-work"),
    ],
)
def test_progress_refusals(
    graph: WorkGraph, work_id: Any, data: Any, error: type[Exception], match: str
) -> None:
    """Bad progress data and unknown works are library errors that change nothing."""
    request = WorkRequest()
    graph.enqueue(request)
    graph.start(request.id)
    with pytest.raises(error, match=match):
        graph.set_progress(work_id or request.id, data)
    assert graph.info(request.id).progress == {}  # type: ignore[union-attr]


# -- §10.3: prerequisites that no longer exist -------------------------------------------------


def _delete_by_replace(graph: WorkGraph, first: WorkRequest) -> None:
    graph.enqueue_unique_work("chain", "REPLACE", WorkRequest(worker="Newer"))


def _delete_by_append_or_replace(graph: WorkGraph, first: WorkRequest) -> None:
    run(graph, first, WorkResult.failure())
    graph.enqueue_unique_work("chain", "APPEND_OR_REPLACE", WorkRequest(worker="Newer"))


def _delete_by_pruning(graph: WorkGraph, first: WorkRequest) -> None:
    run(graph, first)
    assert graph.prune_work() == [first.id]


@pytest.mark.parametrize(
    "delete",
    [
        pytest.param(_delete_by_replace, id="10.3-replace"),
        pytest.param(_delete_by_append_or_replace, id="10.3-append-or-replace-on-failed"),
        pytest.param(_delete_by_pruning, id="10.3-pruning"),
    ],
)
def test_a_step_whose_prerequisite_was_deleted_enqueues_nothing(
    graph: WorkGraph, delete: Callable[[WorkGraph, WorkRequest], None]
) -> None:
    """The step is not stored and the result says why; steps after it are not stored either;
    an independent branch of the same enqueue is."""
    first = WorkRequest(worker="First")
    chain = graph.begin_unique_work("chain", "APPEND_OR_REPLACE", first)
    chain.enqueue()
    delete(graph, first)
    second, third, other = WorkRequest(), WorkRequest(), WorkRequest(worker="Other")
    tail = chain.then(second).then(third)
    joined = WorkContinuation.combine(tail, graph.begin_with(other))
    result = joined.enqueue()
    assert result.enqueued == (other.id,)
    assert result.not_enqueued == (second.id, third.id, *joined.ids)
    assert result.reasons == tuple(
        f"Prerequisite {missing} doesn't exist; not enqueuing"
        for missing in (first.id, second.id, third.id)
    )
    assert [state(graph, r) for r in (second, third, other)] == ["deleted", "deleted", "ENQUEUED"]
    assert tail.enqueued is True  # processed, as WorkManager marks it: a retry stores nothing


# -- §10.5: queries ----------------------------------------------------------------------------


@pytest.fixture
def populated(graph: WorkGraph) -> tuple[WorkGraph, dict[str, WorkRequest]]:
    """a (x, named n, SUCCEEDED) -> b (y, named n, ENQUEUED); c (x, RUNNING); d (y, BLOCKED
    on c); e (x and y, CANCELLED)."""
    w = {
        "a": WorkRequest(worker="A", tags={"x"}),
        "b": WorkRequest(worker="B", tags={"y"}),
        "c": WorkRequest(worker="C", tags={"x"}),
        "d": WorkRequest(worker="D", tags={"y"}),
        "e": WorkRequest(worker="E", tags={"x", "y"}),
    }
    graph.begin_unique_work("n", "KEEP", w["a"]).then(w["b"]).enqueue()
    graph.begin_with(w["c"]).then(w["d"]).enqueue()
    graph.enqueue(w["e"])
    run(graph, w["a"])
    graph.start(w["c"].id)
    graph.cancel(w["e"].id)
    return graph, w


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"ids": ["a", "c", "missing"]}, "ac", id="10.5-ids-or"),
        pytest.param({"unique_work_names": ["n"]}, "ab", id="10.5-name"),
        pytest.param({"unique_work_names": ["n", "none"]}, "ab", id="10.5-names-or"),
        pytest.param({"tags": ["x"]}, "ace", id="10.5-tag"),
        pytest.param({"tags": ["x", "y"]}, "abcde", id="10.5-tags-or"),
        pytest.param({"states": ["RUNNING", "BLOCKED"]}, "cd", id="10.5-states-or"),
        pytest.param({"tags": ["y"], "states": ["ENQUEUED"]}, "b", id="10.5-tag-and-state"),
        pytest.param({"unique_work_names": ["n"], "tags": ["x"]}, "a", id="10.5-name-and-tag"),
        pytest.param(
            {"ids": ["a", "b", "e"], "tags": ["x"], "states": ["CANCELLED"]},
            "e",
            id="10.5-three-components",
        ),  # fmt: skip
        pytest.param(
            {"ids": ["a"], "unique_work_names": ["n"], "tags": ["x"], "states": ["SUCCEEDED"]},
            "a",
            id="10.5-four-components",
        ),  # fmt: skip
        pytest.param({"tags": ["x"], "states": ["BLOCKED"]}, "", id="10.5-and-empty"),
    ],
)
def test_work_infos(
    populated: tuple[WorkGraph, dict[str, WorkRequest]], query: dict[str, Any], expected: str
) -> None:
    """Components are AND-ed, values within one OR-ed; oldest first."""
    graph, w = populated
    if "ids" in query:
        query = query | {"ids": [w[k].id if k in w else uuid4() for k in query["ids"]]}
    found = [info.id for info in graph.work_infos(WorkQuery(**query))]
    assert found == [w[k].id for k in expected]


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        pytest.param({}, "Must specify ids, uniqueNames, tags or states", id="10.5-empty"),
        pytest.param({"states": ["DONE"]}, "States are ENQUEUED, RUNNING", id="10.7-bad-state"),
        pytest.param({"ids": ["not-a-uuid"]}, "ids", id="10.7-bad-id"),
    ],
)
def test_work_query_refusals(fields: dict[str, Any], match: str) -> None:
    """A WorkQuery needs a component; bad values are PayloadErrors (ValueErrors too)."""
    with pytest.raises(PayloadError, match=match):
        WorkQuery(**fields)


def test_continuation_work_infos_include_parents_and_combine_works(graph: WorkGraph) -> None:
    """§10.5: getWorkInfos() of a continuation: its works, its parents', the hidden join."""
    a, b, c, d = (WorkRequest(worker=x) for x in "ABCD")
    left = graph.begin_with(a).then(b)
    joined = WorkContinuation.combine(left, graph.begin_with(c)).then(d)
    joined.enqueue()
    infos = joined.work_infos()
    workers = [graph.work(i.id).context.worker for i in infos]
    assert workers == ["A", "B", "C", JOIN_WORKER, "D"]
    assert [i.state for i in left.work_infos()] == [WorkState.ENQUEUED, WorkState.BLOCKED]


# -- §10.6: pruning ----------------------------------------------------------------------------


def test_prune_work_deletes_finished_work_without_unfinished_dependents(graph: WorkGraph) -> None:
    """pruneWork(): finished works go unless an unfinished work depends on them; a unique
    name left without works starts a new sequence."""
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    graph.begin_unique_work("n", "APPEND", a).then(b).enqueue()
    lone, failed = WorkRequest(worker="Lone"), WorkRequest(worker="Failed")
    graph.enqueue(lone, failed)
    run(graph, a)
    run(graph, lone)
    run(graph, failed, WorkResult.failure())
    assert graph.prune_work() == [lone.id, failed.id]  # a: b (ENQUEUED) depends on it
    assert (state(graph, a), graph.info(lone.id), graph.info(failed.id)) == (
        "SUCCEEDED",
        None,
        None,
    )
    run(graph, b)
    assert graph.prune_work() == [a.id, b.id]
    fresh = WorkRequest(worker="Fresh")
    graph.enqueue_unique_work("n", "APPEND", fresh)
    assert (state(graph, fresh), graph.prerequisites(fresh.id)) == ("ENQUEUED", [])
    assert graph.prune_work() == []


@pytest.mark.parametrize(
    ("keep", "waited", "pruned"),
    [
        pytest.param(timedelta(0), timedelta(days=1, seconds=1), True, id="10.6-default-1-day"),
        pytest.param(timedelta(0), timedelta(hours=23), False, id="10.6-within-threshold"),
        pytest.param(timedelta(days=2), timedelta(days=1, seconds=1), False, id="10.6-kept"),
        pytest.param(timedelta(days=2), timedelta(days=3, seconds=1), True, id="10.6-expired"),
    ],
)
def test_keep_results_for_at_least(
    graph: WorkGraph, clock: ManualClock, keep: timedelta, waited: timedelta, pruned: bool
) -> None:
    """Automatic pruning (androidx CleanupCallback): lastEnqueueTime + keepResultsForAtLeast
    must be more than a day in the past; pruneWork() itself ignores the retention."""
    request = WorkRequest(worker="Report", keep_results_for_at_least=keep)
    graph.enqueue(request)
    run(graph, request)
    clock.advance(seconds=waited.total_seconds())
    assert graph.prune_work(expired_only=True) == ([request.id] if pruned else [])
    assert graph.prune_work() == ([] if pruned else [request.id])


# -- issue 12, point 5: due work --------------------------------------------------------------


def test_due_lists_enqueued_works_whose_schedule_came_in_schedule_order(
    graph: WorkGraph, clock: ManualClock
) -> None:
    """due(now, limit): ENQUEUED and due, earliest first (ties: oldest first), whatever the
    constraints; BLOCKED, RUNNING and backed-off works are not due."""
    start = clock.now
    later = WorkRequest(worker="Later", initial_delay=timedelta(minutes=10))
    soon = WorkRequest(worker="Soon", initial_delay=timedelta(minutes=5))
    now_a, now_b = WorkRequest(worker="NowA"), WorkRequest(worker="NowB")
    wifi = WorkRequest(worker="Wifi", constraints={"network_type": "UNMETERED"})
    running, retried, blocked = WorkRequest(), WorkRequest(), WorkRequest()
    graph.enqueue(later, soon, now_a, wifi)
    graph.begin_with(running).then(blocked).enqueue()
    graph.enqueue(retried, now_b)
    graph.start(running.id)
    run(graph, retried, WorkResult.retry())  # backoff: 30 s
    assert graph.due() == [now_a.id, wifi.id, now_b.id]
    assert graph.due(limit=2) == [now_a.id, wifi.id]
    assert graph.due(start + timedelta(seconds=30)) == [now_a.id, wifi.id, now_b.id, retried.id]
    assert graph.due(start + timedelta(hours=1)) == [
        now_a.id, wifi.id, now_b.id, retried.id, soon.id, later.id,
    ]  # fmt: skip
    graph.start(now_a.id)
    graph.cancel(wifi.id)
    assert graph.due(start + timedelta(minutes=5)) == [now_b.id, retried.id, soon.id]
    assert graph.due(datetime(2000, 1, 1, tzinfo=start.tzinfo)) == []


# -- §10.7: no refusal is a KeyError, OverflowError or AttributeError -------------------------


def _with_deleted_prerequisite(graph: WorkGraph) -> Any:
    chain = graph.begin_unique_work("n", "REPLACE", WorkRequest())
    chain.enqueue()
    graph.enqueue_unique_work("n", "REPLACE", WorkRequest())
    return chain.then(WorkRequest()).enqueue()


ERRORS: list[Any] = [
    pytest.param(lambda g: g.enqueue(object()), WorkGraphError, "Expected a WorkRequest",
                 id="10.7-enqueue-not-a-request"),
    pytest.param(lambda g: g.update_work("id"), WorkGraphError, "Expected a WorkRequest",
                 id="10.7-update-not-a-request"),
    pytest.param(lambda g: g.enqueue_unique_work("n", "UPSERT", WorkRequest()), WorkGraphError,
                 "Unknown ExistingWorkPolicy 'UPSERT'; use one of REPLACE, KEEP",
                 id="10.7-unknown-policy"),
    pytest.param(lambda g: g.enqueue_unique_periodic_work("n", "APPEND", PeriodicWorkRequest()),
                 WorkGraphError, "Unknown ExistingPeriodicWorkPolicy 'APPEND'",
                 id="10.7-unknown-periodic-policy"),
    pytest.param(lambda g: g.begin_unique_work(7, "KEEP", WorkRequest()), WorkGraphError,
                 "unique work name is a str", id="10.7-name-not-a-str"),
    pytest.param(lambda g: WorkContinuation.combine(g.begin_with(WorkRequest()), "c"),
                 WorkGraphError, "combine takes WorkContinuations", id="10.7-combine-not-a-chain"),
    pytest.param(lambda g: g.work_infos("tag"), WorkGraphError, "takes a WorkQuery",
                 id="10.7-query-not-a-query"),
    pytest.param(lambda g: g.due(datetime(2026, 1, 1)), WorkGraphError, "aware datetime",
                 id="10.7-due-naive-now"),
    pytest.param(lambda g: g.due(limit=-1), WorkGraphError, "non-negative", id="10.7-due-limit"),
    pytest.param(lambda g: WorkGraph.restore("{"), SnapshotError, "Not a WorkGraph snapshot",
                 id="10.7-restore-garbage"),
    pytest.param(lambda g: WorkGraph.restore(
        {"works": [], "prerequisites": {}, "names": {"n": [str(uuid4())]}, "joins": []}),
        SnapshotError, "names works it does not hold", id="10.7-restore-dangling-name"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), ERRORS)
def test_refusals_are_library_errors(
    graph: WorkGraph, call: Callable[[WorkGraph], Any], error: type[Exception], match: str
) -> None:
    """Every refusal is a LifecycleError with a message saying what to do, and changes
    nothing."""
    before = graph.snapshot()
    with pytest.raises(error, match=match) as raised:
        call(graph)
    assert isinstance(raised.value, LifecycleError)
    assert not isinstance(raised.value, KeyError | OverflowError | AttributeError)
    assert graph.snapshot() == before


def test_a_deleted_prerequisite_is_no_key_error(graph: WorkGraph) -> None:
    """§10.3/§10.7: today's bare KeyError becomes a result that says what happened."""
    result = _with_deleted_prerequisite(graph)
    assert result.enqueued == ()
    assert "doesn't exist; not enqueuing" in result.reasons[0]


def test_work_ids_in_string_form_are_accepted_and_others_refused() -> None:
    """`graph.start(str(request.id))` works like the UUID; another type, or a string that is
    no UUID, is a WorkGraphError saying what a work id is (issue 10, point 8)."""
    graph = WorkGraph()
    request = WorkRequest(worker="W")
    graph.enqueue(request)
    text = str(request.id)
    graph.start(text)
    assert graph.info(text) == graph.info(request.id)
    assert graph.work(text).state == "running"
    assert graph.prerequisites(text) == []
    graph.set_progress(text, {"percent": 50})
    graph.finish(text, WorkResult.success())
    assert graph.info(request.id).state == WorkState.SUCCEEDED
    for bad in (12, "not-a-uuid", None):
        with pytest.raises(WorkGraphError, match="Work ids are the UUIDs of WorkRequests"):
            graph.start(bad)  # type: ignore[arg-type]
