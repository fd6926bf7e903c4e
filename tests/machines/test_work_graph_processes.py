"""Several OS processes driving one stored WorkGraph (issue 12, point 2), on every back-end.

Afterwards every acknowledged work exists, the chain invariants hold, the graph's indexes
agree with its works, and the histories count exactly the acknowledged starts and finishes;
with a driver killed by SIGKILL at a random moment, every acknowledged work still exists and
the histories hold at least what was acknowledged.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lifecyclekit.machines import WorkGraph, WorkQuery, WorkState
from lifecyclekit.machines.workmanager.continuation import JOIN_WORKER
from lifecyclekit.store import open_store
from tests.helpers import BACKENDS, backend_url
from tests.machines import graph_drivers

pytestmark = pytest.mark.slow

FINISHED = {WorkState.SUCCEEDED, WorkState.FAILED, WorkState.CANCELLED}
UNFINISHED = {WorkState.ENQUEUED, WorkState.RUNNING, WorkState.BLOCKED}


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, "graph.db")


def acknowledged(folder: Path) -> list[list[str]]:
    lines = []
    for path in sorted(folder.glob("acks-*.txt")):
        lines += [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    return lines


def check_graph(url: str, acks: list[list[str]], *, exact: bool) -> None:
    """The graph after the drivers: acknowledged works exist, chains are consistent."""
    with open_store(url) as store:
        graph = WorkGraph(store=store)
        snapshot = graph.snapshot()
        states = {UUID(str(s.context["id"])): _state(s) for s in snapshot.works}
        assert states, "the drivers enqueued nothing"

        kept = {
            UUID(i)
            for what, kind, *ids in acks
            if what == "enqueue" and kind == "kept"
            for i in ids
        }
        missing = sorted(str(i) for i in kept - set(states))
        assert missing == [], f"acknowledged works lost: {missing}"

        for work_id, state in states.items():
            prerequisites = [states[p] for p in snapshot.prerequisites.get(work_id, ())]
            if state in (WorkState.ENQUEUED, WorkState.RUNNING, WorkState.SUCCEEDED):
                assert all(p is WorkState.SUCCEEDED for p in prerequisites), (work_id, state)
            if state is WorkState.BLOCKED:
                assert any(p in UNFINISHED for p in prerequisites), (work_id, prerequisites)
            if {WorkState.FAILED, WorkState.CANCELLED} & set(prerequisites):
                assert state in (WorkState.FAILED, WorkState.CANCELLED), (work_id, state)

        check_indexes(graph, states)
        check_counts(graph, snapshot, acks, exact=exact)


def _state(snap: Any) -> WorkState:
    return WorkState(snap.state.upper())


def check_indexes(graph: WorkGraph, states: dict[UUID, WorkState]) -> None:
    """The graph's state, tag and due-time indexes agree with the works themselves."""
    for state in WorkState:
        selected = {i.id for i in graph.work_infos(WorkQuery(states=[state]))}
        assert selected == {i for i, s in states.items() if s is state}, state
    for tag in graph_drivers.TAGS:
        tagged = {i.id for i in graph.infos_by_tag(tag)}
        assert tagged == {i for i in states if tag in graph.work(i).context.tags}
    now = graph.now()
    due = set(graph.due(now))
    expected = set()
    for work_id, state in states.items():
        info = graph.info(work_id)
        assert info is not None
        if state is WorkState.ENQUEUED and info.next_schedule_time <= now:  # type: ignore[operator]
            expected.add(work_id)
    assert due == expected


def check_counts(graph: WorkGraph, snapshot: Any, acks: list[list[str]], *, exact: bool) -> None:
    """Starts and finishes in the histories of works never deleted match the acknowledged
    ones: exactly, or (after a kill) at least."""
    deletable = {UUID(i) for what, kind, *ids in acks if kind == "deletable" for i in ids}
    recorded: Counter[str] = Counter()
    for snap in snapshot.works:
        if UUID(str(snap.context["id"])) in deletable or snap.context["worker"] == JOIN_WORKER:
            continue
        history = graph.work(UUID(str(snap.context["id"]))).history
        recorded.update(r.event for r in history if r.event in ("start", "finish", "stop"))
    acked: Counter[str] = Counter()
    for what, _kind, *ids in acks:
        if what in ("start", "finish", "stop") and UUID(ids[0]) not in deletable:
            acked[what] += 1
    for event in ("start", "finish", "stop"):
        if exact:
            assert recorded[event] == acked[event], event
        else:
            assert recorded[event] >= acked[event], event


def run_drivers(url: str, folder: Path, operations: list[int]) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=graph_drivers.drive,
            args=(url, seed, count, str(folder / f"acks-{seed}.txt")),
        )
        for seed, count in enumerate(operations)
    ]
    for process in processes:
        process.start()
    return processes


def test_four_processes_drive_one_graph(url: str, tmp_path: Path) -> None:
    """4 drivers x 70 operations: nothing acknowledged is lost, chains stay consistent."""
    with open_store(url) as store:
        WorkGraph(store=store)  # the graph's tables exist before the drivers race
    processes = run_drivers(url, tmp_path, [70] * 4)
    for process in processes:
        process.join(timeout=300)
        assert process.exitcode == 0
    check_graph(url, acknowledged(tmp_path), exact=True)


def test_a_driver_killed_at_a_random_moment(url: str, tmp_path: Path) -> None:
    """SIGKILL to one of three drivers mid-run: the graph is still whole and consistent."""
    with open_store(url) as store:
        WorkGraph(store=store)
    processes = run_drivers(url, tmp_path, [-1, 60, 60])
    time.sleep(random.uniform(1.5, 4.0))  # random: whatever the victim is doing then
    processes[0].kill()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes[1:]] == [0, 0]
    check_graph(url, acknowledged(tmp_path), exact=False)
