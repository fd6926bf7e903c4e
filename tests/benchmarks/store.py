"""Store benchmarks, each interleaved with its baseline in one run.

- ``run_store``: ``send`` transitions per second against the raw database work, for each
  back-end and 1 or 4 processes; every process sends flips to instances of its own. The
  baseline does, through the same driver, what one transition costs the database without
  lifecyclekit: read one row, compare-and-set update it, insert one history row, in one
  write transaction (lifecyclekit also writes the change feed).
- ``run_history_cost``: one send on an instance with 10 records against one with 10,000,
  alternating batch by batch (target: at most 1.3x).
- ``run_find_scaling``: ``find`` of 100 rows from a store of 1,000 instances against one of
  100,000, alternating batch by batch (target: at most 2x).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sqlite3
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from lifecyclekit.store import UnknownInstance, open_store
from tests.store_machines import REGISTRY

INSTANCES_PER_PROCESS = 5


def _ids(worker: int) -> list[str]:
    return [f"w{worker}-{n}" for n in range(INSTANCES_PER_PROCESS)]


def _lk_worker(url: str, worker: int, sends: int) -> tuple[float, float]:
    ids = _ids(worker)
    with open_store(url, registry=REGISTRY) as store:
        begin = time.time()
        for n in range(sends):
            store.send(ids[n % len(ids)], "flip", text="x")
        return begin, time.time()


def _raw_worker(url: str, worker: int, sends: int) -> tuple[float, float]:
    ids = _ids(worker)
    if url.startswith("sqlite"):
        path, _, query = url.removeprefix("sqlite:///").partition("?")
        connection: Any = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        level = query.partition("=")[2] or "FULL"
        connection.execute(f"PRAGMA synchronous={level}")
        begin, mark = "BEGIN IMMEDIATE", "?"
    else:
        import psycopg

        connection = psycopg.connect(url, autocommit=True)
        begin, mark = "BEGIN ISOLATION LEVEL REPEATABLE READ", "%s"
    started = time.time()
    for n in range(sends):
        instance = ids[n % len(ids)]
        cursor = connection.cursor()
        cursor.execute(begin)
        cursor.execute(
            f"SELECT state, context, revision, version FROM lk_instances WHERE id = {mark}",
            (instance,),
        )
        state, context, revision, version = cursor.fetchone()
        data = json.loads(context)
        data["flips"] += 1
        target = "on" if state == "off" else "off"
        cursor.execute(
            f"UPDATE lk_instances SET state = {mark}, context = {mark}, revision = {mark},"
            f" version = {mark} WHERE id = {mark} AND version = {mark}",
            (target, json.dumps(data), revision + 1, version + 1, instance, version),
        )
        cursor.execute(
            "INSERT INTO lk_history (instance_id, seq, event, source, target, payload, at,"
            f" inferred) VALUES ({', '.join([mark] * 8)})",
            (instance, revision + 1, "flip", state, target, None, 1_767_225_600_000_000, 0),
        )
        cursor.execute("COMMIT")
    connection.close()
    return started, time.time()


def _prepare(url: str, processes: int) -> None:
    """Fresh instances (no history) for every worker."""
    with open_store(url, registry=REGISTRY, create=True) as store:
        for worker in range(processes):
            for instance in _ids(worker):
                with contextlib.suppress(UnknownInstance):
                    store.delete(instance)
                store.create("toggle", id=instance)


def _rate(target: Any, url: str, processes: int, sends: int) -> float:
    """Transitions per second over the window in which the workers were sending (process
    start-up and imports excluded)."""
    _prepare(url, processes)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        windows = pool.starmap(target, [(url, w, sends) for w in range(processes)])
    begin, end = min(w[0] for w in windows), max(w[1] for w in windows)
    return processes * sends / (end - begin)


def run_store(urls: dict[str, str], sends: int = 200, rounds: int = 3) -> dict[str, Any]:
    """Transitions per second for lifecyclekit and the raw baseline, per back-end and
    process count, measured alternately ``rounds`` times (medians), with the ratio
    lifecyclekit / raw."""
    rows = {}
    for label, url in urls.items():
        for processes in (1, 4):
            rates: dict[str, list[float]] = {"lk": [], "raw": []}
            for _ in range(rounds):
                rates["lk"].append(_rate(_lk_worker, url, processes, sends))
                rates["raw"].append(_rate(_raw_worker, url, processes, sends))
            lk, raw = statistics.median(rates["lk"]), statistics.median(rates["raw"])
            rows[f"{label}, {processes} process{'es' if processes > 1 else ''}"] = {
                "lifecyclekit send/s": lk,
                "raw db/s": raw,
                "lifecyclekit / raw": lk / raw,
            }
    return rows


def _median_send(store: Any, instance_id: str, batch: int) -> float:
    begin = time.perf_counter()
    for _ in range(batch):
        store.send(instance_id, "flip", text="x")
    return (time.perf_counter() - begin) / batch * 1e6


def run_history_cost(
    urls: dict[str, str], records: int = 10_000, batches: int = 15, batch: int = 20
) -> dict[str, Any]:
    """Median microseconds per send on an instance with 10 records and on one with
    ``records``, the two measured alternately batch by batch."""
    from tests.store_machines import Toggle

    rows = {}
    for label, url in urls.items():
        with open_store(url, registry=REGISTRY, create=True) as store:
            for instance_id in ("short", "long"):
                with contextlib.suppress(UnknownInstance):
                    store.delete(instance_id)
            for instance_id, length in (("short", 10), ("long", records)):
                toggle = Toggle()
                for n in range(length):
                    toggle.flip(text=str(n))
                store.run(lambda uow, i=instance_id, t=toggle: uow.add(i, t))
            for instance_id in ("short", "long"):  # warm up (caches, prepared plans)
                _median_send(store, instance_id, batch)
            times: dict[str, list[float]] = {"short": [], "long": []}
            for _ in range(batches):
                for instance_id in ("short", "long"):
                    times[instance_id].append(_median_send(store, instance_id, batch))
        short, long = (statistics.median(times[k]) for k in ("short", "long"))
        rows[label] = {
            "send, 10 records (us)": short,
            f"send, {records:,} records (us)": long,
            "ratio": long / short,
        }
    return rows


def _seed_instances(url: str, count: int) -> None:
    """``count`` fresh toggles written straight to the tables (what create() writes)."""
    from lifecyclekit.store._model import to_micros
    from tests.store_machines import Toggle

    with open_store(url, registry=REGISTRY, create=True) as store:
        store.find(limit=1)
    snap = Toggle().snapshot()
    context = json.dumps(snap.context)
    base = to_micros(datetime.now(UTC))
    rows = [
        (f"i{n:07}", "toggle", 1, "off" if n % 3 else "on", context, 0, 1, base + n, base + n)
        for n in range(count)
    ]
    sql = (
        "INSERT INTO lk_instances (id, machine, schema_version, state, context, revision,"
        " version, created_at, updated_at) VALUES ({})"
    )
    if url.startswith("sqlite"):
        connection: Any = sqlite3.connect(url.removeprefix("sqlite:///").partition("?")[0])
        with connection:
            connection.execute("DELETE FROM lk_instances")
            connection.executemany(sql.format(", ".join("?" * 9)), rows)
        connection.close()
        return
    import psycopg

    with psycopg.connect(url) as connection:
        connection.execute("DELETE FROM lk_instances")
        with connection.cursor() as cursor:
            cursor.executemany(sql.format(", ".join(["%s"] * 9)), rows)
        connection.execute("ANALYZE lk_instances")


def _median_find(store: Any, batch: int, **filters: Any) -> float:
    begin = time.perf_counter()
    for _ in range(batch):
        found = store.find(limit=100, **filters)
    assert len(found) == 100
    return (time.perf_counter() - begin) / batch * 1e6


def run_find_scaling(
    pairs: dict[str, tuple[str, str]],
    small: int = 1_000,
    big: int = 100_000,
    batches: int = 15,
    batch: int = 20,
) -> dict[str, Any]:
    """Median microseconds per ``find`` of 100 rows (newest first; and of one lifecycle in
    one state) from ``small`` and from ``big`` instances, measured alternately."""
    rows = {}
    for label, (small_url, big_url) in pairs.items():
        _seed_instances(small_url, small)
        _seed_instances(big_url, big)
        for query, filters in (("newest", {}), ("name+state", {"name": "toggle", "state": "off"})):
            times: dict[str, list[float]] = {"small": [], "big": []}
            with (
                open_store(small_url, registry=REGISTRY) as little,
                open_store(big_url, registry=REGISTRY) as large,
            ):
                _median_find(little, batch, **filters)  # warm up
                _median_find(large, batch, **filters)
                for _ in range(batches):
                    times["small"].append(_median_find(little, batch, **filters))
                    times["big"].append(_median_find(large, batch, **filters))
            a, b = (statistics.median(times[k]) for k in ("small", "big"))
            rows[f"{label}, {query}"] = {
                f"find, {small:,} instances (us)": a,
                f"find, {big:,} instances (us)": b,
                "ratio": b / a,
            }
    return rows
