"""The store suite's fixtures: every test taking ``store`` runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecyclekit.store import Store, open_store
from tests.helpers import BACKENDS, backend_url
from tests.store_machines import REGISTRY


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, "store.db")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url, registry=REGISTRY, create=True) as opened:
        yield opened
