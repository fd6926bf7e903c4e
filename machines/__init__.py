"""lifecyclekit's ready-made lifecycles, installed as ``lifecyclekit.machines``.

Each module holds one lifecycle and imports only lifecyclekit's public API. The registry
finds them through the ``lifecyclekit.machines`` entry points declared in
``pyproject.toml``, so the framework itself never imports this package.
"""

from __future__ import annotations

from .dataflow_job import (
    DataflowJob,
    DataflowJobContext,
    JobChange,
    ObservedDataflowJob,
)

__all__ = ["DataflowJob", "DataflowJobContext", "JobChange", "ObservedDataflowJob"]
