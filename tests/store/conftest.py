from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lifecyclekit.store import open_store
from lifecyclekit.store._core import BaseStore
from tests.store_machines import REGISTRY

POSTGRES_ENV = "LIFECYCLEKIT_TEST_POSTGRES"


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {POSTGRES_ENV} is not set")
    pytest.skip(f"no PostgreSQL: set {POSTGRES_ENV}=postgresql://user:pw@host/db to run these")


def reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename LIKE 'lk\\_%'"
        ).fetchall()
        for (table,) in tables:
            connection.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    url = postgres_url()
    reset_postgres(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[BaseStore]:
    with open_store(store_url, registry=REGISTRY) as opened:
        yield opened
