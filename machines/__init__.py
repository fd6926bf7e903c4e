"""lifecyclekit's ready-made lifecycles, installed as ``lifecyclekit.machines``.

One wing per upstream system: :mod:`.dataflow` (Google Cloud Dataflow jobs) and
:mod:`.workmanager` (Android WorkManager work). Each lifecycle module holds one lifecycle and
imports only lifecyclekit's public API. The registry finds them through the
``lifecyclekit.machines`` entry points declared in ``pyproject.toml``, so the framework itself
never imports this package.
"""

from __future__ import annotations

from .dataflow import DataflowJob, DataflowJobContext, JobChange, ObservedDataflowJob
from .workmanager import (
    Backoff,
    BackoffPolicy,
    ChainedWork,
    Constraints,
    ContentUriTrigger,
    DeviceConditions,
    EnqueueResult,
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    NetworkType,
    OneTimeWork,
    OutOfQuotaPolicy,
    PeriodicWork,
    PeriodicWorkRequest,
    StopReason,
    UnknownWork,
    WorkContinuation,
    WorkGraph,
    WorkGraphError,
    WorkInfo,
    WorkQuery,
    WorkRequest,
    WorkResult,
    WorkState,
)

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "ChainedWork",
    "Constraints",
    "ContentUriTrigger",
    "DataflowJob",
    "DataflowJobContext",
    "DeviceConditions",
    "EnqueueResult",
    "ExistingPeriodicWorkPolicy",
    "ExistingWorkPolicy",
    "JobChange",
    "NetworkType",
    "ObservedDataflowJob",
    "OneTimeWork",
    "OutOfQuotaPolicy",
    "PeriodicWork",
    "PeriodicWorkRequest",
    "StopReason",
    "UnknownWork",
    "WorkContinuation",
    "WorkGraph",
    "WorkGraphError",
    "WorkInfo",
    "WorkQuery",
    "WorkRequest",
    "WorkResult",
    "WorkState",
]
