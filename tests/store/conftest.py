"""The store suite's fixtures: every test taking ``store`` (or ``opener``) runs on SQLite and
PostgreSQL, each with the synchronous store and with the asynchronous one (through
:mod:`tests.store.blocking`, so the suite is written once)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecyclekit.store import Store, open_async_store, open_store
from tests.helpers import BACKENDS, backend_url
from tests.store.blocking import BlockingStore, Portal
from tests.store_machines import REGISTRY

Opener = Callable[..., Store]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, "store.db")


@pytest.fixture(params=["sync", "async"])
def opener(request: pytest.FixtureRequest) -> Iterator[Opener]:
    """``open_store``, or ``open_async_store`` seen through blocking calls."""
    if request.param == "sync":
        yield open_store
        return
    portal = Portal()
    opened: list[BlockingStore] = []

    def open_blocking(url: str = "sqlite:///lifecyclekit.db", **options: Any) -> Store:
        store = BlockingStore(open_async_store(url, **options), portal)
        portal.call(store._target)  # connect now, as open_store does
        opened.append(store)
        return store  # type: ignore[return-value]

    try:
        yield open_blocking
    finally:
        for store in opened:
            store.close()
        portal.close()


@pytest.fixture
def store(store_url: str, opener: Opener) -> Iterator[Store]:
    with opener(store_url, registry=REGISTRY, create=True) as opened:
        yield opened
