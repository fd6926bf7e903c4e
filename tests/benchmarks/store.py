"""Store benchmark: ``send`` transitions per second against the raw database work.

For each back-end and 1 or 4 processes, every process sends ``per_process`` flips to
instances of its own. The baseline does, in the same run and through the same driver, what
one transition costs the database without lifecyclekit: read one row, compare-and-set update
it, insert one history row, in one write transaction.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sqlite3
import time
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
            (instance, revision + 1, "flip", state, target, None, "2026-01-01T00:00:00Z", 0),
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


def run_store(urls: dict[str, str], sends: int = 200) -> dict[str, Any]:
    """Transitions per second for lifecyclekit and the raw baseline, per back-end and
    process count, with the ratio lifecyclekit / raw."""
    rows = {}
    for label, url in urls.items():
        for processes in (1, 4):
            lk = _rate(_lk_worker, url, processes, sends)
            raw = _rate(_raw_worker, url, processes, sends)
            rows[f"{label}, {processes} process{'es' if processes > 1 else ''}"] = {
                "lifecyclekit send/s": lk,
                "raw db/s": raw,
                "lifecyclekit / raw": lk / raw,
            }
    return rows
