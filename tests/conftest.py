from __future__ import annotations

import os
import shutil

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Graphviz tests skip on a laptop without `dot`, and fail in CI (which installs it)."""
    if shutil.which("dot") or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="needs Graphviz's dot: apt-get install graphviz")
    for item in items:
        if "graphviz" in item.keywords:
            item.add_marker(skip)
