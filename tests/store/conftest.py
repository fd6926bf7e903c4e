from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lifecyclekit.store import Store, open_store
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
    """Drop every lifecyclekit table and sequence of the test database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename LIKE 'lk\\_%'"
        ).fetchall()
        for (table,) in tables:
            connection.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        connection.execute("DROP SEQUENCE IF EXISTS lk_changes_position_seq")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    url = postgres_url()
    reset_postgres(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url, registry=REGISTRY, create=True) as opened:
        yield opened


def raw_sql(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL on the store's database directly, behind the store's back (for damage)."""
    if url.startswith("sqlite:///"):
        import sqlite3
        from urllib.parse import unquote

        connection = sqlite3.connect(unquote(url.removeprefix("sqlite:///").partition("?")[0]))
        try:
            with connection:
                cursor = connection.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(sql.replace("?", "%s"), params or None)
        return cursor.fetchall() if cursor.description else []
