"""Faults: a PostgreSQL server stopped and restarted under a live store, connections killed
mid-transaction and mid-commit, and many processes opening an empty database at once.

The server-stop test runs against a cluster of its own (``LIFECYCLEKIT_TEST_POSTGRES_FAULTS``,
made and started by ``.ci/run``), never the shared one: it stops it with
``pg_ctlcluster VERSION NAME stop -m immediate`` and starts it again.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from lifecyclekit.store import (
    ConnectionLost,
    OutcomeUnknown,
    StoreError,
    UnitOfWork,
    open_async_store,
    open_store,
)
from tests.helpers import POSTGRES_ENV, postgres_url, raw_sql, reset_postgres
from tests.store import workers
from tests.store.blocking import BlockingStore, Portal
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY

pytestmark = pytest.mark.slow

FAULTS_ENV = "LIFECYCLEKIT_TEST_POSTGRES_FAULTS"


def _cluster(url: str) -> tuple[str, str]:
    """The (version, name) of the local cluster listening on ``url``'s port; never the
    cluster the other tests share."""
    port = str(urlsplit(url).port or 5432)
    shared = os.environ.get(POSTGRES_ENV)
    if shared and str(urlsplit(shared).port or 5432) == port:
        pytest.fail(f"{FAULTS_ENV} must name a cluster of its own, not the shared one")
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        version, name, cluster_port = line.split()[:3]
        if cluster_port == port:
            if name == "main":
                pytest.fail(f"{FAULTS_ENV} points at cluster {version}/main; use its own cluster")
            return version, name
    pytest.fail(f"no local PostgreSQL cluster listens on port {port} ({FAULTS_ENV})")


@pytest.fixture
def faults_url() -> Iterator[str]:
    url = os.environ.get(FAULTS_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the fault tests: {FAULTS_ENV} is not set (see .ci/run)")
        pytest.skip(f"no fault-test PostgreSQL cluster: set {FAULTS_ENV}")
    version, name = _cluster(url)
    reset_postgres(url)
    yield url
    _start(version, name, url)  # whatever happened, leave it running


def _start(version: str, name: str, url: str) -> None:
    subprocess.run(["pg_ctlcluster", version, name, "start"], capture_output=True, check=False)
    port = str(urlsplit(url).port or 5432)
    for _ in range(120):
        ready = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", port], check=False)
        if ready.returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"cluster {version}/{name} did not come back")


@pytest.mark.postgres
def test_server_stop_and_restart_under_live_stores(faults_url: str) -> None:
    """With the server stopped, calls fail with ConnectionLost (a StoreError) and apply
    nothing; once it is back, the same store object works again and nothing acknowledged
    is lost. One stop and restart serves both stores, the synchronous and the asynchronous
    (whose pool and reconnection are its own)."""
    version, name = _cluster(faults_url)
    portal = Portal()
    stores: dict[str, Any] = {}
    try:
        stores["sync"] = open_store(faults_url, registry=REGISTRY, create=True, timeout=2)
        stores["async"] = BlockingStore(
            open_async_store(faults_url, registry=REGISTRY, timeout=2), portal
        )
        acknowledged = {}
        for key, store in stores.items():
            store.create("toggle", id=key)
            acknowledged[key] = [store.send(key, "flip", text=str(n)) for n in range(5)]
        subprocess.run(
            ["pg_ctlcluster", version, name, "stop", "-m", "immediate"],
            capture_output=True,
            check=True,
        )
        for key, store in stores.items():
            for method, args, kwargs in (
                ("send", (key, "flip"), {"text": "down"}),
                ("get", (key,), {}),
                ("find", (), {}),
            ):
                with pytest.raises(ConnectionLost, match="cannot be reached") as caught:
                    getattr(store, method)(*args, **kwargs)
                assert isinstance(caught.value, StoreError)
                assert "lifecyclekit:lifecyclekit" not in str(caught.value)
        _start(version, name, faults_url)
        for key, store in stores.items():
            after = store.send(key, "flip", text="back")
            assert after.revision == len(acknowledged[key]) + 1
            assert [r.payload["text"] for r in store.history(key)] == [  # type: ignore[index]
                "0", "1", "2", "3", "4", "back",
            ]  # fmt: skip
    finally:
        for store in stores.values():
            store.close()
        portal.close()


@pytest.mark.postgres
def test_a_connection_killed_before_commit_is_retried(opener: Opener) -> None:
    """The connection of a unit of work is terminated mid-transaction: nothing of that
    attempt is applied, the store re-runs it on a fresh connection, and it commits once."""
    url = postgres_url()
    reset_postgres(url)
    attempts: list[int] = []
    with opener(url, registry=REGISTRY, create=True) as store:
        store.create("toggle", id="t")

        def operation(uow: UnitOfWork) -> None:
            attempts.append(1)
            toggle = uow.load("t")
            toggle.flip(text="x")
            uow.save("t", toggle)
            if len(attempts) == 1:
                ((pid,),) = uow._execute("SELECT pg_backend_pid()", ()).rows
                raw_sql(url, "SELECT pg_terminate_backend(?)", (pid,))
                uow._execute("SELECT 1", ())

        store.run(operation)
        assert len(attempts) == 2
        assert [r.seq for r in store.history("t")] == [1]
        assert len(store.changes()) == 1


@pytest.mark.postgres
def test_a_connection_killed_during_commit_says_the_outcome_is_unknown(opener: Opener) -> None:
    """When the connection breaks at COMMIT, the error is OutcomeUnknown (a ConnectionLost)
    saying the operation may or may not have been applied; the store keeps working."""
    url = postgres_url()
    reset_postgres(url)
    with opener(url, registry=REGISTRY, create=True) as store:
        store.create("toggle", id="t")
        with pytest.raises(OutcomeUnknown, match="may or may not have been applied"):  # noqa: PT012
            with store.unit_of_work() as uow:
                toggle = uow.load("t")
                toggle.flip(text="x")
                uow.save("t", toggle)
                ((pid,),) = uow._execute("SELECT pg_backend_pid()", ()).rows
                raw_sql(url, "SELECT pg_terminate_backend(?)", (pid,))
        assert isinstance(OutcomeUnknown("x"), ConnectionLost)
        assert store.send("t", "flip", text="next").revision == 1  # it was not applied


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_many_processes_open_an_empty_database_at_once(backend: str, tmp_path: object) -> None:
    """12 processes open the same empty database at the same instant, create the store's
    tables and the work graph's, and write: every one succeeds."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/fresh.db"
    else:
        url = postgres_url()
        reset_postgres(url)
    processes = 12
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    started = [
        context.Process(target=workers.open_fresh, args=(url, n, barrier, results))
        for n in range(processes)
    ]
    for process in started:
        process.start()
    outcomes = sorted(results.get(timeout=120) for _ in started)
    for process in started:
        process.join()
    assert outcomes == sorted(f"ok {n}" for n in range(processes))
    with open_store(url, registry=REGISTRY) as store:
        assert store.count() == processes
