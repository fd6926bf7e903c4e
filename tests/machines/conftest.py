from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecyclekit.machines import WorkGraph
from lifecyclekit.store import open_store


class ManualClock:
    """A clock the test moves by hand: ``clock.advance(seconds=30)``."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(
    params=["memory", "stored", pytest.param("stored-postgres", marks=pytest.mark.postgres)]
)
def graph(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[WorkGraph]:
    """The graph suite runs on the in-memory WorkGraph and on WorkGraph(store=...) over
    SQLite and PostgreSQL."""
    if request.param == "memory":
        yield WorkGraph(clock=clock)
        return
    url = f"sqlite:///{tmp_path}/graph.db"
    if request.param == "stored-postgres":
        from tests.helpers import postgres_url, reset_postgres

        url = postgres_url()
        reset_postgres(url)
    with open_store(url) as store:
        yield WorkGraph(clock=clock, store=store)
