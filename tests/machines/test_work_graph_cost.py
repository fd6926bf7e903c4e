"""An operation costs what it touches, not what the graph holds (issue 12, point 4).

Timings belong to ``make bench``; here the cost is counted. In memory, an operation makes
the same Python calls and allocates the same memory at its peak with 100 works around it as
with 1,000 (copying the graph, or building a set of every unfinished work, shows in the
second). In a stored graph every SQL statement is answered from an index: SQLite's query plan
never scans a table.
"""

from __future__ import annotations

import gc
import sqlite3
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecyclekit.machines import WorkGraph, WorkQuery, WorkRequest, WorkResult
from lifecyclekit.store import open_store
from tests.machines.conftest import ManualClock

Operation = Callable[[WorkGraph, dict[str, Any]], object]


def grow(graph: WorkGraph, works: int) -> None:
    """``works`` more works: two-step chains, in batches, every work tagged on its own."""
    for start in range(0, works, 200):
        roots = [WorkRequest(worker="Root", tags={f"r{start + i}"}) for i in range(0, 200, 2)]
        graph.enqueue(*roots)
        for root in roots[:20]:
            graph.begin_with(WorkRequest(worker="Extra", tags={f"x{root.id}"})).enqueue()


def prepare(graph: WorkGraph) -> dict[str, Any]:
    """The works the operations act on, the same whatever the graph's size."""
    a, b = WorkRequest(worker="A", tags={"only-a"}), WorkRequest(worker="B")
    ready = WorkRequest(worker="Ready")
    graph.begin_unique_work("chain", "APPEND", a).then(b).enqueue()
    graph.enqueue(ready)
    graph.start(a.id)
    return {"a": a, "b": b, "ready": ready}


OPERATIONS: dict[str, Operation] = {
    "enqueue-chain": lambda g, w: g.begin_with(WorkRequest()).then(WorkRequest()).enqueue(),
    "append": lambda g, w: g.enqueue_unique_work("chain", "APPEND", WorkRequest()),
    "start": lambda g, w: g.start(w["ready"].id),
    "finish-with-dependent": lambda g, w: g.finish(w["a"].id, WorkResult.success()),
    "cancel-one-tag": lambda g, w: g.cancel_by_tag("only-a"),
    "cancel-unique-work": lambda g, w: g.cancel_unique_work("chain"),
    "info": lambda g, w: g.info(w["b"].id),
    "query": lambda g, w: g.work_infos(WorkQuery(tags=["only-a"], states=["RUNNING"])),
    "due": lambda g, w: g.due(limit=5),
    "set-progress": lambda g, w: g.set_progress(w["a"].id, {"p": 1}),
}


def cost(operation: Callable[[], object]) -> tuple[int, int]:
    """Python function calls made by ``operation`` (exact: no sampling, gc paused) and the
    peak of the memory it allocated, in bytes."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    gc.collect()
    gc.disable()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    sys.setprofile(profile)
    try:
        operation()
    finally:
        sys.setprofile(None)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        gc.enable()
    return count, peak


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_memory_operations_do_not_grow_with_the_graph(name: str) -> None:
    """The same operation on the same works costs as much with 1,000 works around them as
    with 100. (The sizes leave every dict and set of the graph short of a resize, so the
    peaks are equal but for a few bytes of the profiler's own.)"""
    measured = []
    for size in (0, 100, 1000):  # the first run warms python-statemachine's and pydantic's caches
        graph = WorkGraph(clock=ManualClock())
        grow(graph, size)
        works = prepare(graph)
        operation = OPERATIONS[name]
        measured.append(cost(lambda: operation(graph, works)))  # noqa: B023
    (calls_100, peak_100), (calls_1000, peak_1000) = measured[1:]
    assert calls_1000 == calls_100
    assert peak_1000 <= peak_100 + 512


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[WorkGraph, list[str], sqlite3.Connection]]:
    """A stored graph on SQLite with 600 works, and the SQL it runs from now on."""
    with open_store(f"sqlite:///{tmp_path}/graph.db") as store:
        graph = WorkGraph(store=store, clock=ManualClock())
        grow(graph, 600)
        statements: list[str] = []
        connection: sqlite3.Connection = store._backend._connection(create=False)  # type: ignore[attr-defined]
        connection.set_trace_callback(statements.append)
        yield graph, statements, connection
        connection.set_trace_callback(None)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_stored_operations_read_through_indexes(
    traced: tuple[WorkGraph, list[str], sqlite3.Connection], name: str
) -> None:
    """No statement of a stored graph's operation scans a table (SQLite's query plan says
    SCAN for that): tags, names, edges, states and due times are all indexed."""
    graph, statements, connection = traced
    works = prepare(graph)
    statements.clear()
    OPERATIONS[name](graph, works)
    queries = [s for s in statements if s.split()[0].upper() in ("SELECT", "UPDATE", "DELETE")]
    assert queries
    connection.set_trace_callback(None)
    scans = [
        (query, detail)
        for query in queries
        for *_, detail in connection.execute("EXPLAIN QUERY PLAN " + query)
        if detail.startswith("SCAN")
    ]
    assert scans == []
