"""The lifecycle of a Google Cloud Dataflow job (``JobState``, ``dataflow.googleapis.com/v1b3``).

Upstream state model: the ``JobState`` enum of ``google/dataflow/v1beta3/jobs.proto`` and
``google-cloud-dataflow-client`` 0.14.1 (states 0-14), with the transition table T1-T22 of
the project's specification (``shared/spec/dataflow.md`` §1.5), whose contradictions are
resolved by its rules P1-P3:

- P1: no edge leaves a terminal state (DONE, FAILED, CANCELLED, UPDATED, DRAINED).
- P2: a source state's closed list ("may only transition to ...") is exact.
- P3: for other sources the target's comment decides.

``JOB_STATE_UNKNOWN`` means "not yet observed": the first observation accepts any real state.
PAUSING and PAUSED are "not implemented yet" upstream: no service-driven edge into or out of
them is invented; they are reachable only as a first observation and left only by what P3
allows from any unfinished state (an ``UpdateJob`` to CANCELLED or DONE). So every state is
reachable and can reach a final state, and python-statemachine's class-wide definition checks
stay on with no exemption.

Two rule sets: ``DataflowJob`` (``dataflow-job``) enforces exactly T1-T22; the observed rule
set (``ObservedDataflowJob``, ``dataflow-job-observed``) adds the edges seen in practice
(O1-O3, and PENDING -> CANCELLED from open question 1). The extra edges are declared once,
guarded by ``observed_rules``, so both classes share one transition table.

The second revision of the specification (§6) adds three rules, kept here:

- §6.1 one rule for requests: :meth:`DataflowJob.request`, :meth:`DataflowJob.update_request`
  (the client's ``UpdateJobRequest``) and :meth:`DataflowJob.update_body` (the REST body)
  refuse the same requests with the same message, through one check; a force cancel is
  allowed only after a regular cancel.
- §6.2 which polls belong to the job: a ``Job`` with another id is refused, launch answers
  are unwrapped, a poll older than the recorded ``currentStateTime`` is stale and ignored.
- §6.3 following a replacement: :meth:`DataflowJob.replaced_by`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from lifecyclekit import Clock, Lifecycle, PayloadError, State, TransitionRejected, registry

from ._api import (
    FORCE_CANCEL_LABEL,
    JOB_STATE_NAMES,
    REQUESTABLE,
    JobFields,
    JobStateName,
    JobTypeName,
    api_name,
    dataflow_client,
    parse_job_type,
    parse_state,
    read_job,
)
from ._spec import PROVENANCE

__all__ = ["DataflowJob", "DataflowJobContext", "JobChange", "ObservedDataflowJob"]

# Requests that name what is already true or already under way: recorded, nothing fires.
_ALREADY = {
    ("running", "JOB_STATE_RUNNING"),
    ("stopped", "JOB_STATE_STOPPED"),
    ("cancelling", "JOB_STATE_CANCELLED"),
    ("draining", "JOB_STATE_DRAINED"),
    ("draining", "JOB_STATE_DRAINING"),
}
_REQUEST_EVENT = {
    "JOB_STATE_RUNNING": "start",
    "JOB_STATE_STOPPED": "stop",
    "JOB_STATE_CANCELLED": "cancel",
    "JOB_STATE_DONE": "complete",
    "JOB_STATE_DRAINED": "drain",
    "JOB_STATE_DRAINING": "drain",
}
# For inference: the request that must be on record to cross a user-driven edge.
_EVENT_REQUESTS = {
    "start": {"JOB_STATE_RUNNING"},
    "stop": {"JOB_STATE_STOPPED"},
    "cancel": {"JOB_STATE_CANCELLED"},
    "cancel_now": {"JOB_STATE_CANCELLED"},
    "complete": {"JOB_STATE_DONE"},
    "drain": {"JOB_STATE_DRAINED", "JOB_STATE_DRAINING"},
}
_INITIAL_STATES = ("unknown", "stopped", "pending", "queued")
# Beam 2.77 `api_jobstate_to_pipeline_state`: QUEUED is missing from its map.
_PIPELINE_STATE = {state: state.upper() for state in JOB_STATE_NAMES} | {"queued": "UNRECOGNIZED"}


class DataflowJobContext(BaseModel):
    """What a tracker knows about its job (field names pinned for applications and stores)."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    job_id: str | None = None
    name: str | None = None
    project_id: str | None = None
    location: str | None = None
    job_type: JobTypeName = "JOB_TYPE_UNKNOWN"
    """A name, its number or a ``JobType`` member is accepted and normalised to the name."""
    requested_state: JobStateName | None = None
    """The last request on record (from :meth:`DataflowJob.request` or learned by ``sync``)."""
    current_state_time: AwareDatetime | None = None
    replace_job_id: str | None = None
    replaced_by_job_id: str | None = None

    @field_validator("job_type", mode="before")
    @classmethod
    def _job_type(cls, value: Any) -> Any:
        return parse_job_type(value) or value


class JobChange(BaseModel):
    """The payload of every Dataflow event: how the change arrived."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    via: Literal["observe", "request", "replace", "event"] = "event"
    """``observe`` (the service reported it), ``request`` (an UpdateJob), ``replace``
    (a replacement job), or ``event`` (the application called the event directly)."""
    value: JobStateName | None = None
    """The JobState name observed or requested."""
    replaced_by_job_id: str | None = Field(default=None, min_length=1)


def _first_observations(unknown: State, *targets: State) -> Any:
    transitions = unknown.to(targets[0], cond="is_observed_state")
    for target in targets[1:]:
        transitions = transitions | unknown.to(target, cond="is_observed_state")
    return transitions


@registry.register("dataflow-job")
class DataflowJob(Lifecycle[DataflowJobContext]):
    """A Dataflow job, as its monitor sees it: service-reported changes and user requests.

    Drive it with :meth:`observe` (a state the service reports), :meth:`request` (an
    ``UpdateJob`` ``requestedState``), :meth:`replace_with` (an update by replacement job)
    and :meth:`sync` (a ``Job`` message or REST JSON). Each dispatches to a fine-grained event
    (``run``, ``drain``, ``finish_cancel``...), so ``on_enter_draining`` or ``after_cancel``
    fire whichever entry point was used.
    """

    Context = DataflowJobContext
    rule_set: ClassVar[Literal["documented", "observed"]] = "documented"
    """``documented``: exactly T1-T22. ``observed``: plus O1-O3 and PENDING -> CANCELLED."""

    unknown = State(value="JOB_STATE_UNKNOWN", initial=True)
    stopped = State(value="JOB_STATE_STOPPED")
    running = State(value="JOB_STATE_RUNNING")
    done = State(value="JOB_STATE_DONE", final=True)
    failed = State(value="JOB_STATE_FAILED", final=True)
    cancelled = State(value="JOB_STATE_CANCELLED", final=True)
    updated = State(value="JOB_STATE_UPDATED", final=True)
    draining = State(value="JOB_STATE_DRAINING")
    drained = State(value="JOB_STATE_DRAINED", final=True)
    pending = State(value="JOB_STATE_PENDING")
    cancelling = State(value="JOB_STATE_CANCELLING")
    queued = State(value="JOB_STATE_QUEUED")
    resource_cleaning_up = State(value="JOB_STATE_RESOURCE_CLEANING_UP")
    pausing = State(value="JOB_STATE_PAUSING")
    paused = State(value="JOB_STATE_PAUSED")

    discover = _first_observations(
        unknown, stopped, running, done, failed, cancelled, updated, draining, drained,
        pending, cancelling, queued, resource_cleaning_up, pausing, paused,
    )  # fmt: skip
    start = stopped.to(running)
    stop = running.to(stopped)
    launch = queued.to(pending) | stopped.to(pending, cond="observed_rules")
    queue = stopped.to(queued, cond="observed_rules")
    run = pending.to(running)
    clean_up = running.to(resource_cleaning_up)
    complete = (
        running.to(done)
        | stopped.to(done)
        | resource_cleaning_up.to(done)
        | pausing.to(done)
        | paused.to(done)
    )
    fail = (
        pending.to(failed)
        | running.to(failed)
        | cancelling.to(failed)
        | draining.to(failed)
        | resource_cleaning_up.to(failed, cond="observed_rules")
    )
    cancel = (
        stopped.to(cancelled)
        | queued.to(cancelled)
        | running.to(cancelling)
        | draining.to(cancelled)
        | resource_cleaning_up.to(cancelled)
        | pausing.to(cancelled)
        | paused.to(cancelled)
        | pending.to(cancelled, cond="observed_rules")
    )
    cancel_now = running.to(cancelled)
    finish_cancel = cancelling.to(cancelled)
    drain = running.to(draining, cond="is_streaming")
    finish_drain = draining.to(drained)
    replace = running.to(updated, cond="is_streaming") | draining.to(
        updated, cond=["observed_rules", "is_streaming"]
    )

    payloads = dict.fromkeys(
        (
            "discover", "start", "stop", "launch", "queue", "run", "clean_up", "complete",
            "fail", "cancel", "cancel_now", "finish_cancel", "drain", "finish_drain", "replace",
        ),
        JobChange,
    )  # fmt: skip
    provenance = PROVENANCE
    commands = frozenset({"observe", "request", "replace_with", "sync"})

    def __init__(self, *, initial_state: Any = None, **kwargs: Any) -> None:
        """Args:
        initial_state: ``None`` (``unknown``: not yet observed), or STOPPED, PENDING or
            QUEUED in any spelling ``observe`` accepts.
        **kwargs: ``clock``, ``listeners`` and the context fields (see
            :class:`DataflowJobContext`).
        """
        start_value = None
        if initial_state is not None:
            state_id = parse_state(initial_state, type(self).__name__, "initial_state")
            if state_id not in _INITIAL_STATES:
                allowed = ", ".join(api_name(s) for s in _INITIAL_STATES[1:])
                problem = f"a job is not created in {api_name(state_id)}"
                raise PayloadError(
                    type(self).__name__,
                    "initial_state",
                    [("initial_state", problem, initial_state)],
                    hint=f"Jobs are created in {allowed} (or left unobserved: None).",
                )
            start_value = api_name(state_id)
        super().__init__(start_value=start_value, **kwargs)

    # -- guards ------------------------------------------------------------------------------

    def is_observed_state(self, target: State, value: str | None = None) -> bool:
        """The first observation names this target."""
        return bool(target.value == value)

    def observed_rules(self) -> bool:
        """This tracker uses the observed rule set (the edge is not in T1-T22)."""
        return self.rule_set == "observed"

    def is_streaming(self, via: str = "event") -> bool:
        """The job is known to be streaming (drain and update apply to streaming jobs only).

        A change the service itself reports is accepted whatever the recorded type."""
        return via == "observe" or self.context.job_type == "JOB_TYPE_STREAMING"

    # -- reading -----------------------------------------------------------------------------

    @property
    def pipeline_state(self) -> str:
        """The Apache Beam ``PipelineState`` name Beam 2.77 maps this state to."""
        return _PIPELINE_STATE[self.state]

    # -- service-reported changes ------------------------------------------------------------

    @classmethod
    def _dispatch(cls) -> dict[tuple[str, str], str]:
        """(source, target) -> event for this class's rule set (first observations aside)."""
        table: dict[tuple[str, str], str] = {}
        for row in cls.transition_table():
            if row.event == "discover" or row.provenance is None:
                continue
            if row.provenance.rule_set == "observed" and cls.rule_set != "observed":
                continue
            table.setdefault((row.source, row.target), row.event)
        return table

    def observe(self, state: Any, at: datetime | None = None, *, infer: bool = False) -> None:
        """Apply a state the Dataflow service reports.

        Args:
            state: an API name (``"JOB_STATE_RUNNING"``), its number (2), a
                ``google.cloud.dataflow_v1beta3.JobState`` member, or a state id.
            at: when the service says the state began (``currentStateTime``); recorded as the
                history record's time and as ``context.current_state_time``.
            infer: accept a state reachable only through missed service-driven transitions
                (and user-driven ones whose request is on record), recording the missed ones
                with ``inferred=True``.

        Observing the current state again fires nothing; a newer ``at`` is recorded as its
        time (after ``request("JOB_STATE_DRAINED")`` the service's DRAINING time replaces
        the RUNNING one).

        A report older than the recorded ``current_state_time`` is stale and ignored: nothing
        changes (:meth:`sync` says so with its return value). Decision (spec §6.2: a stale
        poll "is ignored or refused, never applied, and the recorded time never moves
        backwards"): ignored, not refused, because Beam Java documents the service returning
        stale state after cancels, so a poll loop (or out-of-order job events) meets it in
        normal operation. Equal times are not stale ("Equal times are not stale"); a report
        without a time cannot be judged and is applied.

        Raises:
            PayloadError: the state is not a JobState (unknown name or number).
            TransitionNotAllowed: the rule set has no such change (state left unchanged).
        """
        name = type(self).__name__
        target = parse_state(state, name, "observe")
        when = _aware(at, name, "observe")
        if self._is_stale(when):
            return
        if target == self.state:
            if when is not None:
                self.context.current_state_time = when
            return
        path = self._path_to(target, infer)
        with self.atomic():
            for event, inferred in path:
                with self.recording(at=when, inferred=inferred):
                    self.send(event, via="observe", value=api_name(target))
            if when is not None:
                self.context.current_state_time = when

    def _is_stale(self, when: datetime | None) -> bool:
        """The service time ``when`` is strictly older than the one on record (spec §6.2)."""
        recorded = self.context.current_state_time
        return when is not None and recorded is not None and when < recorded

    def _path_to(self, target: str, infer: bool) -> list[tuple[str, bool]]:
        current = self.state
        action = f"observe {api_name(target)} on"
        if self.is_finished:
            reason = f"the job has terminated in state {api_name(current)}."
            raise self.rejection(action, reason)
        if current == "unknown":
            return [("discover", False)]
        dispatch = self._dispatch()
        event = dispatch.get((current, target))
        if event is not None:
            return [(event, False)]
        inferred = self._infer(current, target, dispatch) if infer else None
        if inferred:
            return [(e, True) for e in inferred[:-1]] + [(inferred[-1], False)]
        reachable = sorted(api_name(t) for (s, t) in dispatch if s == current)
        how = (
            "no path of service-driven transitions (or requested ones) leads there"
            if infer
            else f"the {self.rule_set} rule set has no such transition"
        )
        reason = (
            f"{how}. From {api_name(current)} the job may go to: {', '.join(reachable) or 'none'}"
            + ("." if infer else "; pass infer=True to accept a jump over missed states.")
        )
        raise self.rejection(action, reason)

    def _infer(
        self, current: str, target: str, dispatch: dict[tuple[str, str], str]
    ) -> list[str] | None:
        """Shortest path of crossable edges (breadth-first), as the events to fire."""
        crossable = {key: event for key, event in dispatch.items() if self._crossable(*key, event)}
        previous: dict[str, tuple[str, str]] = {}
        queue = deque([current])
        while queue:
            node = queue.popleft()
            if node == target:
                events: list[str] = []
                while node != current:
                    node, event = previous[node]
                    events.append(event)
                return events[::-1]
            for (source, nxt), event in crossable.items():
                if source == node and nxt not in previous and nxt != current:
                    previous[nxt] = (node, event)
                    queue.append(nxt)
        return None

    def _crossable(self, source: str, target: str, event: str) -> bool:
        provenance = self._provenance.get((event, source, target))
        driver = provenance.driver if provenance else ""
        if driver.startswith("service"):
            return True
        if driver == "replacement":
            return self.context.replaced_by_job_id is not None
        return self.context.requested_state in _EVENT_REQUESTS.get(event, set())

    # -- user requests -----------------------------------------------------------------------

    def request(self, requested_state: Any) -> None:
        """Apply an ``UpdateJob`` request (``requestedState``) and record it.

        RUNNING + CANCELLED -> ``cancelling``; QUEUED, STOPPED, DRAINING,
        RESOURCE_CLEANING_UP (and PAUSING/PAUSED) + CANCELLED -> ``cancelled``; RUNNING +
        DRAINED/DRAINING -> ``draining`` (streaming jobs only); RUNNING or STOPPED + DONE ->
        ``done``; STOPPED <-> RUNNING. Asking for what is already true or under way records
        the request and changes no state.

        :meth:`update_request` and :meth:`update_body` refuse exactly what this refuses,
        with the same message (spec §6.1): the three share one check.

        Raises:
            PayloadError: not a requestable value (FAILED, UPDATED, PENDING ... are
                service-only), or not a JobState at all.
            TransitionNotAllowed: the job has terminated (the message says "has terminated
                in state JOB_STATE_<X>"), is not yet observed, or the request does not apply
                in its state (a drain of a batch job, say).
        """
        value, event = self._check_request(requested_state)
        if event is None:
            self.context.requested_state = value
            return
        with self.atomic():
            self.send(event, via="request", value=value)
            self.context.requested_state = value

    def _check_request(
        self, requested_state: Any, force: Any = False
    ) -> tuple[JobStateName, str | None]:
        """The one rule for requests (spec §6.1), shared by :meth:`request`,
        :meth:`update_request` and :meth:`update_body`; it changes nothing.

        Returns:
            The requested JobState name, and the event the request fires (``None`` when it
            names what is already true or under way).
        """
        name = type(self).__name__
        value = api_name(parse_state(requested_state, name, "request"))
        if value not in REQUESTABLE:
            raise PayloadError(
                name,
                "request",
                [("requested_state", f"{value} can only be set by the Dataflow service", value)],
                hint=f"Requestable states: {', '.join(sorted(REQUESTABLE))}.",
            )
        if not isinstance(force, bool):
            raise PayloadError(name, "request", [("force", "must be True or False", force)])
        if force and value != "JOB_STATE_CANCELLED":
            problem = f"only a cancel can be forced, not a request for {value}"
            raise PayloadError(
                name,
                "request",
                [("force", problem, force)],
                hint="Pass force=True with JOB_STATE_CANCELLED only.",
            )
        action = f"request {value} for"
        if self.is_finished:
            reason = (
                f"the job has terminated in state {self.state_value}; no further state updates "
                "may be made."
            )
            raise self.rejection(action, reason)
        if self.state == "unknown":
            reason = "the job's state is not known yet; observe or sync the job first."
            raise self.rejection(action, reason)
        if force and not self._regular_cancel_requested():
            reason = (
                "no regular cancel was requested ('Before force canceling, you must first "
                "attempt a regular cancel'). Request JOB_STATE_CANCELLED without force first; "
                "force only a cancel that is stuck."
            )
            action = "force-cancel"
            raise self.rejection(action, reason)
        if (self.state, value) in _ALREADY:
            return value, None
        event = _REQUEST_EVENT[value]
        explanation = self.explain(event, via="request", value=value)
        if not explanation.allowed:
            raise TransitionRejected(explanation, set(self.configuration))
        return value, event

    def _regular_cancel_requested(self) -> bool:
        """A regular cancel is on record, the condition of a force cancel (spec §6.1).

        Decision ("allowed only after a regular cancel was requested"; [stop-doc] "Before
        force canceling, you must first attempt a regular cancel"): the last request on
        record is ``JOB_STATE_CANCELLED`` (from :meth:`request`, or a ``requestedState``
        learned by :meth:`sync`), or the job is in CANCELLING, which the service enters only
        for a job that "has been explicitly cancelled" (T12).
        """
        return self.context.requested_state == "JOB_STATE_CANCELLED" or self.state == "cancelling"

    def replace_with(self, new_job_id: str) -> None:
        """Record that a replacement job (a CreateJob with ``replaceJobId``) took over.

        Only a RUNNING streaming job can be updated (the observed rule set also accepts a
        DRAINING one, as Beam does).

        Raises:
            PayloadError: ``new_job_id`` is empty or not a string.
            TransitionNotAllowed: a batch job, or a job in another state.
        """
        name = type(self).__name__
        if not isinstance(new_job_id, str) or not new_job_id:
            raise PayloadError(
                name, "replace_with", [("new_job_id", "must be a non-empty job id", new_job_id)]
            )
        if new_job_id == self.context.job_id:
            problem = "is this job's own id; a replacement job has an id of its own"
            raise PayloadError(name, "replace_with", [("new_job_id", problem, new_job_id)])
        if self.is_finished:
            reason = f"the job has terminated in state {self.state_value}."
            raise self.rejection(action="replace", reason=reason)
        with self.atomic():
            self.send("replace", via="replace", value="JOB_STATE_UPDATED",
                      replaced_by_job_id=new_job_id)  # fmt: skip
            self.context.replaced_by_job_id = new_job_id

    def replaced_by(
        self, *, clock: Clock | None = None, listeners: Iterable[object] | None = None
    ) -> Self:
        """A new tracker for the job that replaced this one (spec §6.3).

        Like Beam Java's ``DataflowPipelineJob.getReplacedByJob()``: only a job in
        JOB_STATE_UPDATED has a successor, named by ``replacedByJobId``. The new tracker is of
        this tracker's class, not yet observed (``unknown``), with ``job_id`` the successor's
        id, ``replace_job_id`` this job's id (linked both ways), and this job's type, name,
        project and location ([update-doc]: the replacement "launches ... while retaining the
        same job name"; updating applies to streaming jobs only).

        Args:
            clock: the new tracker's clock (default: the system clock).
            listeners: python-statemachine listeners for the new tracker.

        Raises:
            TransitionNotAllowed: the job is not in JOB_STATE_UPDATED, or its successor's id
                (or its own, to point back to) is not known; nothing changes.
        """
        action = "follow the replacement of"
        context = self.context
        if self.state != "updated":
            reason = (
                "only a job in JOB_STATE_UPDATED has been replaced. Call replace_with(new_job_id) "
                "or sync a Job reporting JOB_STATE_UPDATED first."
            )
            raise self.rejection(action, reason)
        if context.replaced_by_job_id is None:
            reason = "the successor's id is not known; sync a Job carrying replacedByJobId first."
            raise self.rejection(action, reason)
        if context.job_id is None:
            reason = (
                "this job's own id is not known, so the successor's replace_job_id could not "
                "point back to it; build the tracker with job_id=... or from_job(...)."
            )
            raise self.rejection(action, reason)
        fields = {
            "job_id": context.replaced_by_job_id,
            "replace_job_id": context.job_id,
            "job_type": context.job_type,
            "name": context.name,
            "project_id": context.project_id,
            "location": context.location,
        }
        return type(self)(clock=clock, listeners=listeners, **fields)

    # -- the Google client -------------------------------------------------------------------

    @classmethod
    def from_job(cls, job: Any, *, infer: bool = False, **kwargs: Any) -> Self:
        """A tracker for a ``dataflow_v1beta3.Job`` message or a REST JSON ``Job`` (a dict in
        camelCase, or its JSON text), synced to its current state.

        A launch answer (``LaunchTemplateResponse`` / ``LaunchFlexTemplateResponse`` or its
        JSON ``{"job": {...}}``) is read as the job it carries. Decision (spec §6.2: a launch
        answer "never yields a tracker with no id"): a ``Job`` without an id is refused
        unless ``job_id=`` is given, since the service sets the id on every job it creates.

        Args:
            job: the ``Job`` (or launch answer).
            infer: passed to :meth:`sync`.
            **kwargs: ``clock``, ``listeners`` and context fields; a ``job_id`` must agree
                with the job's id. Fields the job carries fill in those not given.

        Raises:
            PayloadError: an unknown state name or number in the job, a launch answer
                without a job, no id at all, or a ``job_id=`` that is not the job's.
        """
        fields = read_job(job, cls.__name__, "from_job")
        if fields.id is None and kwargs.get("job_id") is None:
            msg = "the Job has no id, so its tracker could not tell its polls from another job's"
            raise PayloadError(
                cls.__name__,
                "from_job",
                [("id", msg, job)],
                hint="Pass the Job the service returned (it always carries its id), or give "
                "job_id=... .",
            )
        tracker = cls(**kwargs)
        tracker._apply(fields, infer, "from_job")
        return tracker

    def sync(self, job: Any, infer: bool = False) -> bool:
        """Observe what a ``Job`` message or REST JSON says: ``currentState`` (at
        ``currentStateTime``), ``requestedState``, ``replacedByJobId`` and, while still
        unknown, ``type`` and the job's id, name, project and location. A missing field is no
        information and changes nothing. A launch answer is read as the job it carries.

        Which polls belong to the job (spec §6.2): one with another job's id is refused
        (``Job.id`` "is immutable for the life of the job"); one whose ``currentStateTime``
        is older than the recorded time is stale and ignored as a whole, its
        ``requestedState`` included (see :meth:`observe` for why it is ignored, not refused),
        and the return value says so.

        Returns:
            ``False`` when the poll was stale and ignored (nothing changed), else ``True``.

        Raises:
            PayloadError: an unknown state name or number (reported before any state check),
                another job's id, or a launch answer without a job.
            TransitionNotAllowed: the reported state is not a legal change; nothing changes.
        """
        return self._apply(read_job(job, type(self).__name__), infer, "sync")

    def _apply(self, fields: JobFields, infer: bool, action: str) -> bool:
        context = self.context
        if fields.id is not None and context.job_id is not None and fields.id != context.job_id:
            problem = (
                f"this Job is job {fields.id!r}, but this tracker follows job "
                f"{context.job_id!r}; a job's id never changes"
            )
            raise PayloadError(
                type(self).__name__,
                action,
                [("id", problem, fields.id)],
                hint="Give each job its own tracker (a replacement job's: replaced_by()).",
            )
        own_id = fields.id if fields.id is not None else context.job_id
        if fields.replaced_by_job_id is not None and fields.replaced_by_job_id == own_id:
            problem = (
                "is this job's own id; a replacement job has an id of its own (replace_with "
                "refuses it too)"
            )
            raise PayloadError(
                type(self).__name__,
                action,
                [("replacedByJobId", problem, fields.replaced_by_job_id)],
                hint="Pass the Job as the service returned it; its replacedByJobId names "
                "another job.",
            )
        if self._is_stale(fields.current_state_time):
            return False
        with self.atomic():
            learned = {
                "job_id": fields.id,
                "name": fields.name,
                "project_id": fields.project_id,
                "location": fields.location,
                "replace_job_id": fields.replace_job_id,
            }
            for field, value in learned.items():
                if value is not None and getattr(context, field) is None:
                    setattr(context, field, value)
            if fields.job_type not in (None, "JOB_TYPE_UNKNOWN") and (
                context.job_type == "JOB_TYPE_UNKNOWN"
            ):
                context.job_type = fields.job_type
            if fields.requested_state is not None:
                context.requested_state = fields.requested_state
            if fields.replaced_by_job_id is not None:
                context.replaced_by_job_id = fields.replaced_by_job_id
            if fields.current_state is not None:
                self.observe(fields.current_state, at=fields.current_state_time, infer=infer)
        return True

    def update_body(self, requested_state: Any, *, force: bool = False) -> dict[str, Any]:
        """The REST body (a ``Job``) of the ``UpdateJob`` call asking for ``requested_state``:
        ``PUT https://dataflow.googleapis.com/v1b3/projects/{projectId}/locations/{location}/
        jobs/{jobId}``. Needs no client library. It does not change this tracker: call
        :meth:`request` once the service accepted it.

        Args:
            requested_state: the ``requestedState``, in any spelling :meth:`request` accepts.
            force: a force cancel (``JOB_STATE_CANCELLED`` only): adds the label
                ``force_cancel_job=true`` to the body's ``labels``, as ``gcloud dataflow jobs
                cancel --force`` does (spec §2.1, §6.1).

        Raises:
            PayloadError: as :meth:`request`, or ``force`` with another state.
            TransitionNotAllowed: as :meth:`request` (same message), or ``force`` before a
                regular cancel was requested.
        """
        value, _ = self._check_request(requested_state, force)
        body: dict[str, Any] = {"requestedState": value}
        if force:
            body["labels"] = dict([FORCE_CANCEL_LABEL])
        return body

    def update_request(self, requested_state: Any, *, force: bool = False) -> Any:
        """A ``dataflow_v1beta3.UpdateJobRequest`` asking the service for ``requested_state``
        (needs ``pip install 'lifecyclekit[dataflow]'``). It does not change this tracker:
        call :meth:`request` once the service accepted it.

        The request's ``job`` carries ``requested_state`` and, for a force cancel, the label
        ``force_cancel_job=true`` in its ``labels``; ``update_mask`` stays empty, as in
        gcloud's ``Cancel(force=True)`` (spec §2.1, §6.1).

        Args:
            requested_state: the ``requestedState``, in any spelling :meth:`request` accepts.
            force: a force cancel, allowed only after a regular cancel was requested.

        Raises:
            MissingDependency: ``google-cloud-dataflow-client`` is not installed.
            PayloadError: as :meth:`request`, ``force`` with another state, or the tracker
                does not know its job's ``job_id`` or ``project_id`` (the request's path).
            TransitionNotAllowed: as :meth:`request` (same message), or ``force`` before a
                regular cancel was requested.
        """
        client = dataflow_client()
        value, _ = self._check_request(requested_state, force)
        context = self.context
        missing = [
            (field, "not known, so the request could not name its job", None)
            for field in ("job_id", "project_id")
            if getattr(context, field) is None
        ]
        if missing:
            raise PayloadError(
                type(self).__name__,
                "update_request",
                missing,
                hint="Build the tracker with from_job(...) or job_id=..., project_id=... .",
            )
        return client.UpdateJobRequest(
            project_id=context.project_id,
            location=context.location or "",
            job_id=context.job_id,
            job=client.Job(
                requested_state=client.JobState[value],
                labels=dict([FORCE_CANCEL_LABEL]) if force else {},
            ),
        )


@registry.register("dataflow-job-observed")
class ObservedDataflowJob(DataflowJob):
    """A Dataflow job under the observed rule set: T1-T22 plus O1-O3 and PENDING -> CANCELLED."""

    rule_set = "observed"


def _aware(at: Any, machine: str, action: str) -> datetime | None:
    if at is None:
        return None
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise PayloadError(machine, action, [("at", "must be an aware datetime", at)])
    return at
