"""lifecyclekit's ready-made lifecycles, installed as ``lifecyclekit.machines``.

Each module holds one lifecycle and imports only lifecyclekit's public API. The registry
finds them through the ``lifecyclekit.machines`` entry points declared in
``pyproject.toml``, so the framework itself never imports this package.
"""

from __future__ import annotations

from .chained_work import ChainedWork
from .dataflow_job import (
    DataflowJob,
    DataflowJobContext,
    JobChange,
    ObservedDataflowJob,
)
from .one_time_work import OneTimeWork
from .periodic_work import PeriodicWork
from .work import (
    Backoff,
    BackoffPolicy,
    Constraints,
    DeviceConditions,
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    NetworkType,
    PeriodicWorkRequest,
    StopReason,
    WorkInfo,
    WorkRequest,
    WorkResult,
    WorkState,
)
from .work_graph import UnknownWork, WorkContinuation, WorkGraph, WorkGraphError

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "ChainedWork",
    "Constraints",
    "DataflowJob",
    "DataflowJobContext",
    "DeviceConditions",
    "ExistingPeriodicWorkPolicy",
    "ExistingWorkPolicy",
    "JobChange",
    "NetworkType",
    "ObservedDataflowJob",
    "OneTimeWork",
    "PeriodicWork",
    "PeriodicWorkRequest",
    "StopReason",
    "UnknownWork",
    "WorkContinuation",
    "WorkGraph",
    "WorkGraphError",
    "WorkInfo",
    "WorkRequest",
    "WorkResult",
    "WorkState",
]
