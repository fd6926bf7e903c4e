"""open_store URLs and SQLite options."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lifecyclekit.store import StoreError, open_store
from tests.store_machines import REGISTRY


@pytest.mark.parametrize(
    ("url", "pattern"),
    [
        ("mysql://x/y", "has an unknown scheme; accepted forms: sqlite:///relative"),
        ("sqlite://", "is not a SQLite file URL"),
        ("sqlite:///x.db?journal=off", "unknown option"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous='sometimes'"),
    ],
)
def test_bad_urls(url: str, pattern: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad URLs and options are StoreErrors saying what is accepted."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=pattern):
        open_store(url)


@pytest.mark.parametrize("level", ["full", "normal"])
def test_sqlite_options(tmp_path: Path, level: str) -> None:
    """WAL mode, a busy timeout, and synchronous as the URL says."""
    with open_store(f"sqlite:///{tmp_path}/s.db?synchronous={level}", registry=REGISTRY) as store:
        store.create("toggle", id="t")
        connection = store._backend._connection(create=False)  # type: ignore[attr-defined]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (
            connection.execute("PRAGMA synchronous").fetchone()[0]
            == {"full": 2, "normal": 1}[level]
        )
        assert connection.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_memory_store(tmp_path: Path) -> None:
    """sqlite:///:memory: works for the store's lifetime."""
    with open_store("sqlite:///:memory:", registry=REGISTRY) as store:
        store.create("toggle", id="t")
        assert store.get("t").state == "off"


def test_postgres_without_psycopg_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg the error names the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"pip install 'lifecyclekit\[postgres\]'"):
        open_store("postgresql://nobody@127.0.0.1/none")
