"""What a child process does to a shared stored WorkGraph (importable by name for spawn).

A driver picks random operations: enqueue chains (plain, or uniquely named with APPEND, KEEP
or REPLACE), start a due work, finish a running one with every outcome, stop it, cancel by
id, tag or unique name. After each operation the graph acknowledged (returned normally), it
appends one line to its acknowledgement file and flushes it, so a driver killed with SIGKILL
leaves exactly the operations it saw acknowledged.
"""

from __future__ import annotations

import random
from typing import Any, TextIO

from lifecyclekit import LifecycleError
from lifecyclekit.machines import WorkGraph, WorkRequest, WorkResult
from lifecyclekit.store import open_store

TAGS = [f"t{n}" for n in range(8)]
KEPT_NAMES = ["append-0", "append-1"]
"""Only ever APPENDed to: their works are never deleted."""
REPLACED_NAMES = ["replace-0", "replace-1"]
"""KEEP and REPLACE: their works may be deleted by a later enqueue."""
RESULTS = {
    "success": WorkResult.success({"ok": True}),
    "failure": WorkResult.failure({"why": "test"}),
    "retry": WorkResult.retry(),
}


def requests(rng: random.Random, count: int) -> list[WorkRequest]:
    return [WorkRequest(worker="Step", tags={rng.choice(TAGS)}) for _ in range(count)]


def _chain(graph: WorkGraph, rng: random.Random, acks: TextIO) -> None:
    kind = rng.choice(["plain", "plain", "append", "keep", "replace"])
    steps = [requests(rng, rng.randint(1, 2)) for _ in range(rng.randint(1, 3))]
    if kind == "plain":
        continuation = graph.begin_with(*steps[0])
    elif kind == "append":
        continuation = graph.begin_unique_work(rng.choice(KEPT_NAMES), "APPEND", *steps[0])
    else:
        policy = "KEEP" if kind == "keep" else "REPLACE"
        continuation = graph.begin_unique_work(rng.choice(REPLACED_NAMES), policy, *steps[0])
    for step in steps[1:]:
        continuation = continuation.then(*step)
    result = continuation.enqueue()
    # Acknowledged: every request the caller handed over that the result does not say was
    # left out (KEEP, or a prerequisite deleted meanwhile).
    left_out = getattr(result, "not_enqueued", ())
    stored = [r.id for step in steps for r in step if r.id not in left_out]
    ack(acks, "enqueue", *stored, deletable=kind in ("keep", "replace"))


def _pick(graph: WorkGraph, rng: random.Random, state: str) -> Any:
    infos = [i for i in graph.infos_by_tag(rng.choice(TAGS)) if i.state.value == state]
    return rng.choice(infos).id if infos else None


def _start(graph: WorkGraph, rng: random.Random, acks: TextIO) -> None:
    due = graph.runnable()
    if due:
        work_id = rng.choice(due)
        graph.start(work_id)
        ack(acks, "start", work_id)


def _finish(graph: WorkGraph, rng: random.Random, acks: TextIO) -> None:
    work_id = _pick(graph, rng, "RUNNING")
    if work_id is not None:
        outcome = rng.choice(list(RESULTS))
        graph.finish(work_id, RESULTS[outcome])
        ack(acks, "finish", work_id)


def _stop(graph: WorkGraph, rng: random.Random, acks: TextIO) -> None:
    work_id = _pick(graph, rng, "RUNNING")
    if work_id is not None:
        graph.stop(work_id, 7)
        ack(acks, "stop", work_id)


def _cancel(graph: WorkGraph, rng: random.Random, acks: TextIO) -> None:
    how = rng.choice(["id", "tag", "name"])
    if how == "id":
        work_id = _pick(graph, rng, rng.choice(["ENQUEUED", "BLOCKED", "RUNNING"]))
        if work_id is not None:
            graph.cancel(work_id)
    elif how == "tag":
        graph.cancel_by_tag(rng.choice(TAGS))
    else:
        graph.cancel_unique_work(rng.choice(KEPT_NAMES + REPLACED_NAMES))
    ack(acks, f"cancel-{how}")


OPERATIONS = [_chain, _chain, _start, _start, _start, _finish, _finish, _finish, _stop, _cancel]


def ack(acks: TextIO, what: str, *ids: Any, deletable: bool = False) -> None:
    acks.write(" ".join([what, "deletable" if deletable else "kept", *map(str, ids)]) + "\n")
    acks.flush()


def drive(url: str, seed: int, operations: int, acks_path: str) -> None:
    """Run ``operations`` random operations (forever when negative) against the graph."""
    rng = random.Random(seed)
    with open_store(url) as store, open(acks_path, "a", encoding="utf-8") as acks:
        graph = WorkGraph(store=store)
        done = 0
        while operations < 0 or done < operations:
            operation = rng.choice(OPERATIONS)
            try:
                operation(graph, rng, acks)
            except LifecycleError:
                pass  # another driver got there first (started, finished, cancelled it)
            done += 1
