"""The Dataflow specification as data: the provenance of every transition (T1-T22, P3, O1-O3, OQ1).

Rows and sentences come from the project's specification (``shared/spec/dataflow.md`` §1.5 and
its open questions); the lifecycle classes read them through ``Lifecycle.transition_table()``.
"""

from __future__ import annotations

from lifecyclekit import Provenance

from ._api import JOB_STATE_NAMES


def _row(row: str, driver: str, text: str, rule_set: str = "documented") -> Provenance:
    return Provenance(row=row, driver=driver, text=text, rule_set=rule_set)


_FIRST = (
    "JOB_STATE_UNKNOWN is the proto3 default ('The job's run state isn't specified'); the first "
    "real state observed is accepted as an initial observation (spec §1.5, §1.4)."
)
_P3_CANCEL = (
    "P3: PAUSING/PAUSED are 'not implemented yet'; CANCELLED 'may only be set via a Cloud "
    "Dataflow UpdateJob call, and only if the job has not yet reached another terminal state'."
)
_P3_DONE = (
    "P3: PAUSING/PAUSED are 'not implemented yet'; DONE 'may also be set via a Cloud Dataflow "
    "UpdateJob call, if the job has not yet reached a terminal state'."
)

_O3 = (
    "How a job leaves its created state is undocumented; observed jobs start in PENDING/QUEUED "
    "(spec §1.4)."
)

PROVENANCE: dict[tuple[str, str, str], Provenance] = {
    **{("discover", "unknown", s): _row("I0", "service", _FIRST) for s in JOB_STATE_NAMES[1:]},
    ("start", "stopped", "running"): _row(
        "T1", "user", "UpdateJob may be used to switch between the JOB_STATE_STOPPED and "
        "JOB_STATE_RUNNING states (requested_state)."
    ),
    ("stop", "running", "stopped"): _row(
        "T2", "user", "UpdateJob may be used to switch between the JOB_STATE_STOPPED and "
        "JOB_STATE_RUNNING states (requested_state)."
    ),
    ("cancel", "stopped", "cancelled"): _row(
        "T3", "user", "CANCELLED: 'only if the job has not yet reached another terminal state'."
    ),
    ("complete", "stopped", "done"): _row(
        "T4", "user", "DONE: 'may also be set via a Cloud Dataflow UpdateJob call, if the job "
        "has not yet reached a terminal state'."
    ),
    ("launch", "queued", "pending"): _row(
        "T5", "service", "'Jobs that are queued may only transition to JOB_STATE_PENDING or "
        "JOB_STATE_CANCELLED.'"
    ),
    ("cancel", "queued", "cancelled"): _row(
        "T6", "user", "'Jobs that are queued may only transition to JOB_STATE_PENDING or "
        "JOB_STATE_CANCELLED'; CANCELLED 'only ... via ... UpdateJob'."
    ),
    ("run", "pending", "running"): _row(
        "T7", "service", "'Jobs that are pending may only transition to JOB_STATE_RUNNING, or "
        "JOB_STATE_FAILED.'"
    ),
    ("fail", "pending", "failed"): _row(
        "T8", "service", "'Jobs that are pending may only transition to JOB_STATE_RUNNING, or "
        "JOB_STATE_FAILED.'"
    ),
    ("complete", "running", "done"): _row(
        "T9", "service or user", "DONE 'may be set by the Cloud Dataflow service, as a "
        "transition from JOB_STATE_RUNNING' or 'via a Cloud Dataflow UpdateJob call'."
    ),
    ("fail", "running", "failed"): _row(
        "T10", "service", "FAILED 'may only be set by the Cloud Dataflow service, and only as a "
        "transition from JOB_STATE_RUNNING'."
    ),
    ("cancel_now", "running", "cancelled"): _row(
        "T11", "user", "UpdateJob can 'change a job's state from JOB_STATE_RUNNING to "
        "JOB_STATE_CANCELLED, JOB_STATE_DONE, or JOB_STATE_DRAINED'."
    ),
    ("cancel", "running", "cancelling"): _row(
        "T12", "user→service", "CANCELLING: 'has been explicitly cancelled and is in the "
        "process of stopping' (inferred entry; jobs.list shows CANCELLING with "
        "requestedState CANCELLED)."
    ),
    ("finish_cancel", "cancelling", "cancelled"): _row(
        "T13", "service", "'Jobs that are cancelling may only transition to "
        "JOB_STATE_CANCELLED or JOB_STATE_FAILED.'"
    ),
    ("fail", "cancelling", "failed"): _row(
        "T14", "service", "'Jobs that are cancelling may only transition to "
        "JOB_STATE_CANCELLED or JOB_STATE_FAILED.'"
    ),
    ("replace", "running", "updated"): _row(
        "T15", "replacement", "UPDATED 'may only be set by the Cloud Dataflow service, and only "
        "as a transition from JOB_STATE_RUNNING' (a CreateJob with replaceJobId)."
    ),
    ("drain", "running", "draining"): _row(
        "T16", "user", "DRAINING 'may be set via a Cloud Dataflow UpdateJob call, but only as a "
        "transition from JOB_STATE_RUNNING'; drain 'applies only to streaming pipelines'."
    ),
    ("finish_drain", "draining", "drained"): _row(
        "T17", "service", "DRAINED 'may only be set by the Cloud Dataflow service, and only as "
        "a transition from JOB_STATE_DRAINING'."
    ),
    ("cancel", "draining", "cancelled"): _row(
        "T18", "user", "'Jobs that are draining may only transition to JOB_STATE_DRAINED, "
        "JOB_STATE_CANCELLED, or JOB_STATE_FAILED.'"
    ),
    ("fail", "draining", "failed"): _row(
        "T19", "service", "'Jobs that are draining may only transition to JOB_STATE_DRAINED, "
        "JOB_STATE_CANCELLED, or JOB_STATE_FAILED.'"
    ),
    ("clean_up", "running", "resource_cleaning_up"): _row(
        "T20", "service", "RESOURCE_CLEANING_UP: 'the batch job's associated resources are "
        "currently being cleaned up after a successful run' (inferred entry)."
    ),
    ("complete", "resource_cleaning_up", "done"): _row(
        "T21", "service", "The only sensible exit of 'cleaned up after a successful run' "
        "(inferred; corroborated by O1's source)."
    ),
    ("cancel", "resource_cleaning_up", "cancelled"): _row(
        "T22", "user", "P3: CANCELLED is allowed from any non-terminal state via UpdateJob."
    ),
    ("cancel", "pausing", "cancelled"): _row("P3", "user", _P3_CANCEL),
    ("complete", "pausing", "done"): _row("P3", "user", _P3_DONE),
    ("cancel", "paused", "cancelled"): _row("P3", "user", _P3_CANCEL),
    ("complete", "paused", "done"): _row("P3", "user", _P3_DONE),
    ("fail", "resource_cleaning_up", "failed"): _row(
        "O1", "service", "DataflowTemplates PR #774: 'This state will pass through even for "
        "failing jobs, so it could be either in DONE or FAILED states.'", "observed"
    ),
    ("replace", "draining", "updated"): _row(
        "O2", "replacement", "Beam PR #12789 'Support updating from a job in DRAINING state': "
        "replaceJobId may name a RUNNING or DRAINING job.", "observed"
    ),
    ("launch", "stopped", "pending"): _row("O3", "service", _O3, "observed"),
    ("queue", "stopped", "queued"): _row("O3", "service", _O3, "observed"),
    ("cancel", "pending", "cancelled"): _row(
        "OQ1", "user", "Open question 1: 'a lenient mode that also allows "
        "PENDING→CANCELLED ... may match reality better (console/Beam cancel whatever is "
        "non-terminal)'.", "observed"
    ),
}  # fmt: skip
"""Spec row and sentence for every transition, keyed (event, source id, target id)."""
