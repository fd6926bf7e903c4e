"""Dataflow API names as data: state and job-type names, reading ``Job`` messages, the client.

Everything here works without ``google-cloud-dataflow-client``; members of its enums and its
``Job`` messages are read by duck typing (``.name``, ``"field" in message``), and the client
itself is imported only by :func:`dataflow_client`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from lifecyclekit import MissingDependency, PayloadError

JOB_STATE_NAMES = (
    "unknown",
    "stopped",
    "running",
    "done",
    "failed",
    "cancelled",
    "updated",
    "draining",
    "drained",
    "pending",
    "cancelling",
    "queued",
    "resource_cleaning_up",
    "pausing",
    "paused",
)
"""State ids in ``JobState`` number order (0-14)."""

JOB_TYPE_NAMES = {0: "JOB_TYPE_UNKNOWN", 1: "JOB_TYPE_BATCH", 2: "JOB_TYPE_STREAMING"}

REQUESTABLE = frozenset(
    {
        "JOB_STATE_RUNNING",
        "JOB_STATE_STOPPED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_DONE",
        "JOB_STATE_DRAINED",
        "JOB_STATE_DRAINING",
    }
)
"""What an ``UpdateJob`` may ask for (spec §2.1); DRAINED and DRAINING both mean drain."""

FORCE_CANCEL_LABEL = ("force_cancel_job", "true")
"""The label a force cancel adds to the ``Job`` of its ``UpdateJob`` (spec §2.1: gcloud
``Cancel(force=True)``)."""

_BY_API_NAME = {f"JOB_STATE_{s.upper()}": s for s in JOB_STATE_NAMES}
_TIME = TypeAdapter(AwareDatetime)


JobTypeName = Literal["JOB_TYPE_UNKNOWN", "JOB_TYPE_BATCH", "JOB_TYPE_STREAMING"]
JobStateName = Literal[
    "JOB_STATE_UNKNOWN",
    "JOB_STATE_STOPPED",
    "JOB_STATE_RUNNING",
    "JOB_STATE_DONE",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_UPDATED",
    "JOB_STATE_DRAINING",
    "JOB_STATE_DRAINED",
    "JOB_STATE_PENDING",
    "JOB_STATE_CANCELLING",
    "JOB_STATE_QUEUED",
    "JOB_STATE_RESOURCE_CLEANING_UP",
    "JOB_STATE_PAUSING",
    "JOB_STATE_PAUSED",
]


def api_name(state_id: str) -> JobStateName:
    """``"running"`` -> ``"JOB_STATE_RUNNING"``."""
    return cast("JobStateName", f"JOB_STATE_{state_id.upper()}")


def _bad(machine: str, action: str, field: str, message: str, value: Any) -> PayloadError:
    return PayloadError(
        machine,
        action,
        [(field, message, value)],
        hint=f"JobState names: {', '.join(_BY_API_NAME)} (or their numbers 0-14).",
    )


def parse_state(value: Any, machine: str, action: str, field: str = "state") -> str:
    """A state id from an API name, a number, a client ``JobState`` member or a state id.

    Raises:
        PayloadError: an unknown name, or a number that is not a JobState (unrecognized).
    """
    if isinstance(value, enum.Enum):
        value = value.name
    if isinstance(value, bool):
        raise _bad(machine, action, field, "not a JobState", value)
    if isinstance(value, int):
        if 0 <= value < len(JOB_STATE_NAMES):
            return JOB_STATE_NAMES[value]
        raise _bad(machine, action, field, f"unrecognized JobState number {value}", value)
    if isinstance(value, str):
        if value in _BY_API_NAME:
            return _BY_API_NAME[value]
        if value in JOB_STATE_NAMES:
            return value
    raise _bad(machine, action, field, "unknown JobState", value)


def parse_job_type(value: Any) -> JobTypeName | None:
    """``"JOB_TYPE_BATCH"``, 1 or ``JobType.JOB_TYPE_BATCH`` -> ``"JOB_TYPE_BATCH"``;
    ``None`` for anything else (the caller's validation then reports it)."""
    if isinstance(value, enum.Enum):
        value = value.name
    if isinstance(value, int) and not isinstance(value, bool):
        value = JOB_TYPE_NAMES.get(value)
    if isinstance(value, str) and value in JOB_TYPE_NAMES.values():
        return cast("JobTypeName", value)
    return None


@dataclass(frozen=True)
class JobFields:
    """The lifecycle-relevant fields of one ``Job`` response; ``None`` means absent."""

    id: str | None = None
    name: str | None = None
    project_id: str | None = None
    location: str | None = None
    job_type: JobTypeName | None = None
    current_state: str | None = None
    current_state_time: datetime | None = None
    requested_state: JobStateName | None = None
    replace_job_id: str | None = None
    replaced_by_job_id: str | None = None


# (REST camelCase key, proto-plus attribute) per JobFields field.
_KEYS = {
    "id": ("id", "id"),
    "name": ("name", "name"),
    "project_id": ("projectId", "project_id"),
    "location": ("location", "location"),
    "job_type": ("type", "type_"),
    "current_state": ("currentState", "current_state"),
    "current_state_time": ("currentStateTime", "current_state_time"),
    "requested_state": ("requestedState", "requested_state"),
    "replace_job_id": ("replaceJobId", "replace_job_id"),
    "replaced_by_job_id": ("replacedByJobId", "replaced_by_job_id"),
}


def _raw_fields(job: Any, machine: str, action: str) -> dict[str, Any]:
    if isinstance(job, str | bytes):
        try:
            job = json.loads(job)
        except json.JSONDecodeError as exc:
            raise PayloadError(machine, action, [("job", f"not JSON: {exc}", job)]) from None
    job = _unwrap_launch_answer(job, machine, action)
    if isinstance(job, dict):
        raw = {}
        for field, (camel, snake) in _KEYS.items():
            for key in (camel, snake):
                if job.get(key) not in (None, ""):
                    raw[field] = job[key]
                    break
        return raw
    if _is_message(job) and hasattr(job, "current_state"):
        # A proto-plus message: `"field" in message` is False for unset (default) fields.
        return {field: getattr(job, attr) for field, (_, attr) in _KEYS.items() if attr in job}
    msg = (
        f"expected a dataflow_v1beta3.Job message, a REST Job dict or its JSON text, "
        f"got {type(job).__name__}"
    )
    raise PayloadError(machine, action, [("job", msg, job)])


def _is_message(value: Any) -> bool:
    return hasattr(type(value), "pb") and hasattr(type(value), "meta")


def _unwrap_launch_answer(job: Any, machine: str, action: str) -> Any:
    """The ``job`` of a ``LaunchTemplateResponse`` / ``LaunchFlexTemplateResponse`` (a client
    message or its REST JSON ``{"job": {...}}``); anything else is returned as it is.

    Decision (spec §6.2, "Reading such an answer either unwraps ``job`` or refuses it
    clearly"): a dict is a launch answer when it has a ``job`` key and no ``Job`` field of its
    own (a ``Job`` has no ``job`` field); its ``job`` is unwrapped. A dict with both is
    refused (which job is meant is unclear). An answer without a job (a dry run launches
    none) is refused, so it never yields a tracker with no id.
    """
    if isinstance(job, dict):
        if "job" not in job:
            return job
        if any(key in job for keys in _KEYS.values() for key in keys):
            own = sorted({key for keys in _KEYS.values() for key in keys if key in job})
            msg = (
                f"has both a 'job' key and Job fields ({', '.join(own)}): a Job has no 'job' "
                "field and a launch answer has nothing but its job, so which job is meant is "
                "unclear"
            )
            raise PayloadError(
                machine,
                action,
                [("job", msg, job)],
                hint="Pass the Job itself, or a launch answer {'job': {...}} alone.",
            )
        inner = job["job"]
    elif _is_message(job) and not hasattr(job, "current_state") and hasattr(job, "job"):
        inner = job.job if "job" in job else None
    else:
        return job
    if inner is None or (isinstance(inner, dict) and not inner):
        msg = "a launch answer without a job (a dry run launches none): there is no job to track"
        raise PayloadError(
            machine,
            action,
            [("job", msg, job)],
            hint="Track the job of a launch that was not a dry run (validateOnly unset).",
        )
    if isinstance(inner, dict) or (_is_message(inner) and hasattr(inner, "current_state")):
        return inner
    msg = "the launch answer's job is not a Job (a REST Job dict or a dataflow_v1beta3.Job)"
    raise PayloadError(machine, action, [("job.job", msg, inner)])


def read_job(job: Any, machine: str, action: str = "sync") -> JobFields:
    """Read a ``Job`` message or REST JSON into :class:`JobFields`, validating every value.

    A launch answer (``LaunchTemplateResponse`` / ``LaunchFlexTemplateResponse``, or its REST
    JSON ``{"job": {...}}``) is read as the job it carries (spec §6.2).

    State names are read from the raw JSON, never through ``Job.from_json(...,
    ignore_unknown_fields=True)``, which silently turns an unknown name into UNKNOWN.

    Raises:
        PayloadError: an unknown state or job type, a malformed time or id, or a launch
            answer without a job.
    """
    raw = _raw_fields(job, machine, action)
    values: dict[str, Any] = {}
    for field, value in raw.items():
        camel = _KEYS[field][0]
        if field in ("current_state", "requested_state"):
            state = parse_state(value, machine, action, camel)
            if state != "unknown":  # 0 / UNKNOWN carries no information.
                values[field] = state if field == "current_state" else api_name(state)
        elif field == "job_type":
            job_type = parse_job_type(value)
            if job_type is None:
                msg = f"unknown job type; expected one of {', '.join(JOB_TYPE_NAMES.values())}"
                raise PayloadError(machine, action, [("type", msg, value)])
            values[field] = job_type
        elif field == "current_state_time":
            try:
                values[field] = _TIME.validate_python(value)
            except ValidationError:
                msg = "not an RFC 3339 timestamp with a zone"
                raise PayloadError(machine, action, [(camel, msg, value)]) from None
        elif isinstance(value, str):
            values[field] = value
        else:
            raise PayloadError(machine, action, [(camel, "must be a string", value)])
    return JobFields(**values)


def dataflow_client() -> Any:
    """The ``google.cloud.dataflow_v1beta3`` module, or an ImportError saying how to get it."""
    try:
        from google.cloud import dataflow_v1beta3
    except ImportError:
        feature = "Building Dataflow API requests"
        raise MissingDependency(feature, "google-cloud-dataflow-client", "dataflow") from None
    return dataflow_v1beta3
