"""WorkGraph benchmark (issue 12, point 4): one operation at 10,000 works against 100.

For each operation (enqueue a chain of three, start one work, finish one work that has a
dependent, cancel a tag matching one work, read one ``WorkInfo``) and each repository (in
memory, and SQLite with ``synchronous=FULL``), the two contenders are the same operation on
a graph of 10,000 works and on one of 100: the same-round ratio is what the issue bounds
(at most 2x). A graph is built once per process and size (chains of two, each work with a
tag of its own, in a few large transactions) and kept at its size: each round's untimed
setup deletes what the previous round added and prepares the works the round acts on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from uuid import UUID

from lifecyclekit.machines import WorkGraph, WorkRequest, WorkResult
from lifecyclekit.machines.workmanager.graph import _Rules
from lifecyclekit.store import open_store
from tests.benchmarks.harness import Contender, Env, Options, Runner, Suite, register

SIZES = (10_000, 100)
QUICK_SIZES = (200, 20)

_GRAPHS: dict[tuple[str, int], tuple[WorkGraph, list[UUID]]] = {}
"""Graphs kept for the whole run (building 10,000 works takes seconds): (backend, size) ->
the graph and the ids of its works."""
_ADDED: dict[tuple[str, int], list[UUID]] = {}
"""The works the last round added to each graph, deleted by the next round's setup."""


def _build(graph: WorkGraph, size: int) -> list[UUID]:
    """``size`` works as chains of two (a -> b), each work tagged on its own, 500 chains per
    transaction; every fourth root started, so the graph holds every unfinished state."""
    ids: list[UUID] = []
    for first in range(0, size // 2, 500):
        steps = []
        for n in range(first, min(first + 500, size // 2)):
            a = WorkRequest(worker="Root", tags={f"base-{n}-a"})
            b = WorkRequest(worker="Leaf", tags={f"base-{n}-b"})
            root = graph.begin_with(a)
            steps += [root, root.then(b)]
            ids += [a.id, b.id]
        graph._write(_Rules.enqueue_steps, steps)
    for work_id in ids[::8]:
        graph.start(work_id)
    return ids


def _graph(options: Options, backend: str, size: int) -> tuple[WorkGraph, list[UUID]]:
    key = (backend, size)
    if key not in _GRAPHS:
        if backend == "memory":
            graph = WorkGraph()
            _GRAPHS[key] = (graph, _build(graph, size))
        else:
            path = options.workdir / f"graph-{size}.db"
            with open_store(f"sqlite:///{path}?synchronous=off") as store:  # building only
                ids = _build(WorkGraph(store=store), size)
            _GRAPHS[key] = (WorkGraph(store=open_store(f"sqlite:///{path}")), ids)
    return _GRAPHS[key]


def _forget(graph: WorkGraph, key: tuple[str, int]) -> None:
    """Delete the works the previous round added, so the graph keeps its size."""
    added = _ADDED.pop(key, [])
    if added:
        graph._repo.write(lambda tx: tx.delete(added))


class _Round:
    """What one round's setup makes: new requests, remembered for the next round."""

    def __init__(self, key: tuple[str, int], env: Env) -> None:
        self.key = key
        self.env = env

    def requests(self, count: int, **fields: Any) -> list[WorkRequest]:
        made = [WorkRequest(worker="Bench", **fields) for _ in range(count)]
        _ADDED.setdefault(self.key, []).extend(r.id for r in made)
        return made


Prepare = Callable[[WorkGraph, list[UUID], _Round], Runner]


def enqueue_chain(graph: WorkGraph, ids: list[UUID], round_: _Round) -> Runner:
    chains = [round_.requests(3) for _ in range(round_.env.operations)]

    def run() -> None:
        for a, b, c in chains:
            graph.begin_with(a).then(b).then(c).enqueue()

    return run


def start_one(graph: WorkGraph, ids: list[UUID], round_: _Round) -> Runner:
    works = round_.requests(round_.env.operations)
    graph.enqueue(*works)

    def run() -> None:
        for work in works:
            graph.start(work.id)

    return run


def finish_with_dependent(graph: WorkGraph, ids: list[UUID], round_: _Round) -> Runner:
    roots = []
    for _ in range(round_.env.operations):
        a, b = round_.requests(2)
        graph.begin_with(a).then(b).enqueue()
        graph.start(a.id)
        roots.append(a.id)
    done = WorkResult.success({"n": 1})

    def run() -> None:
        for root in roots:
            graph.finish(root, done)

    return run


def cancel_one_tag(graph: WorkGraph, ids: list[UUID], round_: _Round) -> Runner:
    tags = [f"round-{round_.env.round}-{n}" for n in range(round_.env.operations)]
    works = [round_.requests(1, tags={tag})[0] for tag in tags]
    graph.enqueue(*works)

    def run() -> None:
        for tag in tags:
            graph.cancel_by_tag(tag)

    return run


def read_info(graph: WorkGraph, ids: list[UUID], round_: _Round) -> Runner:
    chosen = random.Random(round_.env.round).choices(ids, k=round_.env.operations)

    def run() -> None:
        for work_id in chosen:
            graph.info(work_id)

    return run


OPERATIONS: dict[str, tuple[str, Prepare]] = {
    "enqueue-chain": ("enqueue a chain of 3", enqueue_chain),
    "start": ("start one work", start_one),
    "finish": ("finish one work (its dependent unblocked)", finish_with_dependent),
    "cancel-tag": ("cancel a tag matching one work", cancel_one_tag),
    "info": ("read one WorkInfo", read_info),
}


def setup(options: Options, backend: str, size: int, prepare: Prepare, env: Env) -> Runner:
    graph, ids = _graph(options, backend, size)
    _forget(graph, (backend, size))
    return prepare(graph, ids, _Round((backend, size), env))


@register("graph")
def graph_suites(options: Options) -> Iterator[Suite]:
    """Each graph operation at 10,000 works against 100, in memory and on SQLite."""
    large, small = QUICK_SIZES if options.quick else SIZES
    for backend, label in (("memory", "in memory"), ("sqlite", "SQLite FULL")):
        for name, (title, prepare) in OPERATIONS.items():
            yield Suite(
                name=f"graph.{backend}-{name}",
                title=f"{title}, {label}",
                unit="operation",
                contenders=tuple(
                    Contender(f"{size:,} works", partial(setup, options, backend, size, prepare))
                    for size in (large, small)
                ),
                operations=40 if backend == "memory" else 15,
                rounds=7,
                quick_operations=2,
                call_operations=4,
                table="graph",
                note=(
                    "The same operation on a graph of 10,000 works and of 100 (chains of two, "
                    "a tag per work); setup, untimed, keeps each graph at its size."
                ),
            )
