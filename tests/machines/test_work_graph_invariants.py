"""Hypothesis invariants of a WorkGraph driven by random operations (spec §5, §8.4)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecyclekit import LifecycleError
from lifecyclekit.machines import WorkContinuation, WorkGraph, WorkRequest, WorkResult, WorkState
from lifecyclekit.store import open_store
from tests.machines.conftest import ManualClock

RESULTS = [WorkResult.success({"v": 1}), WorkResult.failure(), WorkResult.retry()]
operations = st.lists(
    st.tuples(
        st.sampled_from(["start", "finish", "cancel", "stop", "instantiation_failed"]),
        st.integers(min_value=0, max_value=7),
        st.sampled_from(RESULTS),
    ),
    max_size=40,
)


def diamond(graph: WorkGraph) -> list[WorkRequest]:
    """0 -> {1, 2} -> 3 -> 4, plus 5 combined with 4 into a join -> 6, and a lone 7."""
    w = [WorkRequest(worker=f"W{i}") for i in range(8)]
    top = graph.begin_with(w[0]).then(w[1], w[2]).then(w[3]).then(w[4])
    WorkContinuation.combine(top, graph.begin_with(w[5])).then(w[6]).enqueue()
    graph.enqueue(w[7])
    return w


def apply(graph: WorkGraph, op: str, work: WorkRequest, result: WorkResult) -> None:
    if op == "finish":
        graph.finish(work.id, result)
    elif op == "stop":
        graph.stop(work.id, 7)
    else:
        getattr(graph, op)(work.id)


def descendants(graph: WorkGraph, ids: list[Any]) -> dict[Any, set[Any]]:
    children: dict[Any, set[Any]] = {i: set() for i in ids}
    for work_id in ids:
        for prerequisite in graph.prerequisites(work_id):
            children.setdefault(prerequisite, set()).add(work_id)
    result = {}
    for work_id in children:
        seen, stack = set(), list(children[work_id])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(children.get(node, ()))
        result[work_id] = seen
    return result


def check_invariants(graph: WorkGraph, works: list[WorkRequest], finished: dict[Any, str]) -> None:
    infos = {r.id: graph.info(r.id) for r in works}
    assert all(info is not None for info in infos.values())
    for work_id, info in infos.items():
        state = info.state  # type: ignore[union-attr]
        if work_id in finished:
            assert state.value == finished[work_id], "a finished work changed state"
        elif state.is_finished:
            finished[work_id] = state.value
        if state is WorkState.RUNNING:
            assert all(
                infos[p].state is WorkState.SUCCEEDED  # type: ignore[union-attr]
                for p in graph.prerequisites(work_id)
            ), "running while a prerequisite is unfinished"
    below = descendants(graph, list(infos))
    for work_id, info in infos.items():
        if info.state in (WorkState.FAILED, WorkState.CANCELLED):  # type: ignore[union-attr]
            assert all(
                infos[child].state is not WorkState.SUCCEEDED  # type: ignore[union-attr]
                for child in below[work_id]
            ), "a descendant of a failed or cancelled work succeeded"


@pytest.mark.parametrize("stored", [False, True], ids=["memory", "stored"])
@settings(max_examples=40)
@given(ops=operations)
def test_graph_invariants(stored: bool, ops: list[tuple[str, int, WorkResult]]) -> None:
    """Finished works stay finished; BLOCKED is never left for RUNNING with an unfinished
    prerequisite; a failed or cancelled work's descendants never succeed; refusals change
    nothing; snapshot -> restore is the identity."""
    clock = ManualClock()
    store = open_store("sqlite:///:memory:") if stored else None
    graph = WorkGraph(clock=clock, store=store)
    works = diamond(graph)
    finished: dict[Any, str] = {}
    for op, index, result in ops:
        clock.advance(hours=6)
        before = graph.snapshot()
        try:
            apply(graph, op, works[index], result)
        except LifecycleError:
            assert graph.snapshot() == before
        check_invariants(graph, works, finished)
        snap = graph.snapshot()
        assert WorkGraph.restore(snap.model_dump_json(), clock=clock).snapshot() == snap
    if store is not None:
        reopened = WorkGraph(clock=clock, store=store)
        assert reopened.snapshot() == graph.snapshot()
        store.close()
