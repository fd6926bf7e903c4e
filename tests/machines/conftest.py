from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


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
