"""Helpers shared by the test modules: the PostgreSQL test database and raw SQL access.

PostgreSQL tests read the server from ``LIFECYCLEKIT_TEST_POSTGRES``; they skip without it on a
laptop and fail without it in CI (``CI`` set), which starts the server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Parameters for a fixture that runs a test on each back-end."""

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


def backend_url(kind: str, folder: Path, filename: str) -> str:
    """A fresh store URL on back-end ``kind``: a new SQLite file in ``folder``, or the
    PostgreSQL test database emptied of lifecyclekit's tables."""
    if kind == "sqlite":
        return f"sqlite:///{folder}/{filename}"
    url = postgres_url()
    reset_postgres(url)
    return url
