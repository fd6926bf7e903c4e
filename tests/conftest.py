from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

from lifecyclekit._fast import ENGINE_ENV
from tests.sample_machines import FixedClock

settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def pytest_report_header(config: pytest.Config) -> str:
    engine = "python-statemachine's engine" if _on_psm_engine() else "the compiled event path"
    return f"lifecyclekit lifecycles run on {engine} ({ENGINE_ENV}={os.environ.get(ENGINE_ENV)!r})"


def _on_psm_engine() -> bool:
    return os.environ.get(ENGINE_ENV, "").lower() == "psm"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Graphviz tests skip on a laptop without `dot`, and fail in CI (which installs it).

    With LIFECYCLEKIT_ENGINE=psm (the second run of `make test`), tests marked
    ``compiled_path`` are deselected: they compare or inspect the compiled path itself."""
    if _on_psm_engine():
        kept = [item for item in items if "compiled_path" not in item.keywords]
        deselected = [item for item in items if "compiled_path" in item.keywords]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept
    if shutil.which("dot") or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="needs Graphviz's dot: apt-get install graphviz")
    for item in items:
        if "graphviz" in item.keywords:
            item.add_marker(skip)
