"""lifecyclekit: declarative, typed, persistable lifecycles for jobs and background work.

Built on python-statemachine (the state-machine engine and its class DSL) and pydantic
(event payloads, context, snapshots). The façade re-exports the public names; ``State``
and ``Event`` are python-statemachine's own.
"""

from __future__ import annotations

from statemachine import Event, HistoryState, State
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit.errors import (
    AppImportError,
    AsyncRequired,
    DefinitionError,
    DiagramError,
    LifecycleError,
    MissingDependency,
    PayloadError,
    SnapshotError,
    StoreError,
    TransitionRejected,
    UnknownInstance,
    UnknownLifecycle,
    WriteConflict,
)
from lifecyclekit.explain import Because, Candidate, Explanation, GuardVerdict
from lifecyclekit.lifecycle import Clock, Lifecycle, utc_now
from lifecyclekit.registry import Registry, registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord
from lifecyclekit.transitions import GuardRef, Provenance, TransitionInfo

__version__ = "0.1.0.dev0"

__all__ = [
    "AppImportError",
    "AsyncRequired",
    "Because",
    "Candidate",
    "Clock",
    "DefinitionError",
    "DiagramError",
    "Event",
    "Explanation",
    "GuardRef",
    "GuardVerdict",
    "HistoryState",
    "Lifecycle",
    "LifecycleError",
    "MissingDependency",
    "PayloadError",
    "Provenance",
    "Registry",
    "Snapshot",
    "SnapshotError",
    "State",
    "StoreError",
    "TransitionInfo",
    "TransitionNotAllowed",
    "TransitionRecord",
    "TransitionRejected",
    "UnknownInstance",
    "UnknownLifecycle",
    "WriteConflict",
    "registry",
    "utc_now",
]
