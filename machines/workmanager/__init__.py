"""Android WorkManager work: ``OneTimeWork``, ``PeriodicWork``, ``ChainedWork`` and the
``WorkGraph`` that coordinates chains and unique work.

``model.py`` holds the requests, constraints, backoff, data and ``WorkInfo``; one module per
lifecycle (``one_time.py``, ``periodic.py``, ``chained.py``) over their shared pieces
(``_lifecycle.py``); ``continuation.py``, ``merge.py`` and ``graph.py`` build and drive chains,
over the repositories ``_repo.py`` (memory) and ``_repo_sql.py`` (a store).
"""

from __future__ import annotations

from .chained import ChainedWork
from .graph import (
    EnqueueResult,
    UnknownWork,
    WorkContinuation,
    WorkGraph,
    WorkGraphError,
    WorkQuery,
)
from .model import (
    Backoff,
    BackoffPolicy,
    Constraints,
    ContentUriTrigger,
    DeviceConditions,
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    NetworkType,
    OutOfQuotaPolicy,
    PeriodicWorkRequest,
    StopReason,
    WorkInfo,
    WorkRequest,
    WorkResult,
    WorkState,
)
from .one_time import OneTimeWork
from .periodic import PeriodicWork

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "ChainedWork",
    "Constraints",
    "ContentUriTrigger",
    "DeviceConditions",
    "EnqueueResult",
    "ExistingPeriodicWorkPolicy",
    "ExistingWorkPolicy",
    "NetworkType",
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
