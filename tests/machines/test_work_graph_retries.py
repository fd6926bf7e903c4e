"""Re-runnable operations (issue 12, point 2): an attempt that loses a race is re-run from the
start and does exactly what a first attempt would have; nothing the caller holds changes
before the transaction commits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecyclekit import StoreError, WriteConflict
from lifecyclekit.machines import WorkGraph, WorkGraphError, WorkRequest, WorkResult
from lifecyclekit.machines.workmanager import _repo_sql
from lifecyclekit.store import RetryPolicy, open_store
from tests.helpers import postgres_url, reset_postgres

FAIL_FIRST_WORK_INSERT = """
CREATE OR REPLACE FUNCTION lk_test_fail_once() RETURNS trigger AS $$
BEGIN
    IF nextval('lk_test_fail_once_seq') = 1 THEN
        RAISE EXCEPTION 'injected: another writer won' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""


@pytest.fixture
def postgres_graph() -> Iterator[tuple[WorkGraph, Any]]:
    """A stored graph on PostgreSQL whose first insert of a work row fails as a lost race
    does (SQLSTATE 40001), raised by the database itself, so the graph's own retry runs."""
    import psycopg

    url = postgres_url()
    reset_postgres(url)
    with open_store(url) as store:
        graph = WorkGraph(store=store)  # creates the graph's tables
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DROP SEQUENCE IF EXISTS lk_test_fail_once_seq")
            connection.execute("CREATE SEQUENCE lk_test_fail_once_seq")
            connection.execute(FAIL_FIRST_WORK_INSERT)
            connection.execute(
                "CREATE TRIGGER lk_test_fail_once BEFORE INSERT ON lk_graph_works"
                " FOR EACH ROW EXECUTE FUNCTION lk_test_fail_once()"
            )
            yield graph, connection
            connection.execute("DROP TABLE lk_graph_works CASCADE")
            connection.execute("DROP FUNCTION lk_test_fail_once")
            connection.execute("DROP SEQUENCE lk_test_fail_once_seq")


@pytest.mark.postgres
def test_a_retried_enqueue_stores_the_whole_chain(postgres_graph: tuple[WorkGraph, Any]) -> None:
    """The lost-chain bug: the first attempt conflicts at its first write; the re-run must
    still store every step (today's code marked the continuation enqueued in the failed
    attempt, so the re-run stored nothing and enqueue() returned normally)."""
    graph, connection = postgres_graph
    a, b, c = WorkRequest(worker="A"), WorkRequest(worker="B"), WorkRequest(worker="C")
    graph.begin_with(a).then(b).then(c).enqueue()
    states = [graph.info(r.id).state.value if graph.info(r.id) else "lost" for r in (a, b, c)]  # type: ignore[union-attr]
    assert states == ["ENQUEUED", "BLOCKED", "BLOCKED"]
    inserts = connection.execute("SELECT last_value FROM lk_test_fail_once_seq").fetchone()[0]
    assert inserts == 1 + 3  # the refused first attempt, then the three works


def _conflict_once(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """Make the first flush of a stored graph's transaction lose a race."""
    calls: list[int] = []
    original = getattr(_repo_sql._SqlTx, method)

    def flaky(self: Any, *args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            msg = "injected: another writer won"
            raise WriteConflict(msg)
        return original(self, *args)

    monkeypatch.setattr(_repo_sql._SqlTx, method, flaky)
    return calls


@pytest.fixture
def sqlite_graph(tmp_path: Path) -> Iterator[WorkGraph]:
    with open_store(f"sqlite:///{tmp_path}/graph.db") as store:
        yield WorkGraph(store=store)


def test_every_operation_is_re_run_whole(
    sqlite_graph: WorkGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conflict at commit re-runs the operation: enqueue, start and finish (with its
    propagation) each take effect once."""
    graph = sqlite_graph
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    calls = _conflict_once(monkeypatch, "flush")
    graph.begin_with(a).then(b).enqueue()
    assert len(calls) == 2
    for operation in (lambda: graph.start(a.id), lambda: graph.finish(a.id, WorkResult.success())):
        monkeypatch.undo()
        calls = _conflict_once(monkeypatch, "flush")
        operation()
        assert len(calls) == 2
    assert [r.event for r in graph.work(a.id).history] == ["start", "finish"]
    assert [r.event for r in graph.work(b.id).history] == ["prerequisite_succeeded"]
    assert graph.info(b.id).state.value == "ENQUEUED"  # type: ignore[union-attr]


def test_a_refused_enqueue_leaves_the_continuation_unenqueued(graph: WorkGraph) -> None:
    """Nothing the caller holds changes unless the transaction commits: after a refusal the
    same continuation can be enqueued once the cause is gone."""
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    graph.enqueue(b)
    continuation = graph.begin_with(a).then(b)
    with pytest.raises(WorkGraphError, match="already enqueued"):
        continuation.enqueue()
    assert (continuation.enqueued, continuation.parents[0].enqueued) == (False, False)
    assert graph.info(a.id) is None


def test_endless_conflicts_give_up_with_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph that never wins stops after the store's retry policy, naming the operation;
    nothing is stored."""

    def always(self: Any) -> None:
        msg = "injected"
        raise WriteConflict(msg)

    retry = RetryPolicy(attempts=3, base=0, cap=0)
    with open_store(f"sqlite:///{tmp_path}/graph.db", retry=retry) as store:
        graph = WorkGraph(store=store, name="uploads")
        monkeypatch.setattr(_repo_sql._SqlTx, "flush", always)
        request = WorkRequest()
        with pytest.raises(StoreError, match=r"run WorkGraph\('uploads'\)\.enqueue after 3"):
            graph.enqueue(request)
        monkeypatch.undo()
        assert graph.info(request.id) is None
