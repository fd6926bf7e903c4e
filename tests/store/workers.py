"""Functions child processes run against a shared store (importable by name for spawn)."""

from __future__ import annotations

import random
from typing import Any

from lifecyclekit import LifecycleError
from lifecyclekit.store import open_store
from tests.store_machines import REGISTRY


def flip_many(url: str, seed: int, sends: int, ids: list[str]) -> int:
    """Send ``sends`` flips to random instances; return how many succeeded."""
    rng = random.Random(seed)
    done = 0
    with open_store(url, registry=REGISTRY) as store:
        for n in range(sends):
            try:
                store.send(rng.choice(ids), "flip", text=f"{seed}-{n}")
            except LifecycleError:
                continue
            done += 1
    return done


def flip_with_keys(url: str, keys: list[str]) -> int:
    """Send one flip per key (to instance key % 10), keyed for idempotency."""
    with open_store(url, registry=REGISTRY) as store:
        for key in keys:
            store.send(f"i{int(key) % 10}", "flip", text=key, idempotency_key=key)
    return len(keys)


def flip_forever(url: str, ids: list[str]) -> None:
    """Flip until killed."""
    with open_store(url, registry=REGISTRY) as store:
        n = 0
        while True:
            store.send(ids[n % len(ids)], "flip", text=str(n))
            n += 1


def drain_graph(url: str, deadline: float) -> int:
    """Start and finish whatever is runnable in the shared graph until nothing is left."""
    import time

    from lifecyclekit.machines import WorkGraph, WorkResult

    done = 0
    with open_store(url) as store:
        graph = WorkGraph(store=store)
        while time.time() < deadline:
            ready = graph.runnable()
            if not ready:
                if all(i.state.is_finished for i in graph.infos_by_tag("Step")):
                    return done
                continue
            work_id = random.choice(ready)
            try:
                graph.start(work_id)
            except LifecycleError:
                continue  # another process started it first
            graph.finish(work_id, WorkResult.success({"by": 1}))
            done += 1
    return done


def open_fresh(url: str, number: int, barrier: Any, results: Any) -> None:
    """Open a store on a (maybe) empty database together with others, create its tables and
    the work graph's, and write; report "ok N" or the error."""
    from lifecyclekit.machines import WorkGraph

    try:
        barrier.wait()
        with open_store(url, registry=REGISTRY) as store:
            store.create("toggle", id=f"p{number}")
            WorkGraph(store=store)
        results.put(f"ok {number}")
    except BaseException as exc:
        results.put(f"failed {number}: {exc!r}")


def flip_alerts(url: str, ids: list[str], sends: int, seed: int) -> int:
    """Flip alert-toggles chosen at random; return how many sends were acknowledged."""
    rng = random.Random(seed)
    with open_store(url, registry=REGISTRY) as store:
        for _ in range(sends):
            store.send(rng.choice(ids), "flip", text="x")
    return sends
