from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.sample_machines import FixedClock

settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()
