"""DataflowJob.observe: the full 15x15 matrix per rule set (spec dataflow.md §1.5)."""

from __future__ import annotations

import pytest
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit.machines import DataflowJob, ObservedDataflowJob

STATES = (
    "unknown stopped running done failed cancelled updated draining drained pending "
    "cancelling queued resource_cleaning_up pausing paused"
).split()
FINAL = {"done", "failed", "cancelled", "updated", "drained"}

# The documented table, row by row (spec §1.5), plus the PAUSING/PAUSED exits of rule P3.
DOCUMENTED = {
    ("stopped", "running"): "T1",
    ("running", "stopped"): "T2",
    ("stopped", "cancelled"): "T3",
    ("stopped", "done"): "T4",
    ("queued", "pending"): "T5",
    ("queued", "cancelled"): "T6",
    ("pending", "running"): "T7",
    ("pending", "failed"): "T8",
    ("running", "done"): "T9",
    ("running", "failed"): "T10",
    ("running", "cancelled"): "T11",
    ("running", "cancelling"): "T12",
    ("cancelling", "cancelled"): "T13",
    ("cancelling", "failed"): "T14",
    ("running", "updated"): "T15",
    ("running", "draining"): "T16",
    ("draining", "drained"): "T17",
    ("draining", "cancelled"): "T18",
    ("draining", "failed"): "T19",
    ("running", "resource_cleaning_up"): "T20",
    ("resource_cleaning_up", "done"): "T21",
    ("resource_cleaning_up", "cancelled"): "T22",
    ("pausing", "cancelled"): "P3",
    ("pausing", "done"): "P3",
    ("paused", "cancelled"): "P3",
    ("paused", "done"): "P3",
}
OBSERVED = DOCUMENTED | {
    ("resource_cleaning_up", "failed"): "O1",
    ("draining", "updated"): "O2",
    ("stopped", "pending"): "O3",
    ("stopped", "queued"): "O3",
    ("pending", "cancelled"): "OQ1",
}


def job_in(cls: type[DataflowJob], state: str) -> DataflowJob:
    job = cls(job_id="j", job_type="JOB_TYPE_BATCH")
    if state != "unknown":
        job.observe(state)
    return job


def matrix(cls: type[DataflowJob], table: dict[tuple[str, str], str]) -> list[object]:
    cases = []
    for source in STATES:
        for target in STATES:
            if source == target:
                expected, row = "no-op", "same"
            elif source == "unknown":
                expected, row = "fires", "I0"
            elif (source, target) in table:
                expected, row = "fires", table[(source, target)]
            else:
                expected, row = "refused", "illegal"
            rule_set = cls.rule_set
            cases.append(
                pytest.param(
                    cls, source, target, expected, id=f"{rule_set}-{row}-{source}-{target}"
                )
            )
    return cases


@pytest.mark.parametrize(
    ("cls", "source", "target", "expected"),
    matrix(DataflowJob, DOCUMENTED) + matrix(ObservedDataflowJob, OBSERVED),
)
def test_observe_matrix(cls: type[DataflowJob], source: str, target: str, expected: str) -> None:
    """Legal observations fire; the current state again is a no-op; all else is refused."""
    job = job_in(cls, source)
    before = job.snapshot()
    if expected == "refused":
        with pytest.raises(TransitionNotAllowed):
            job.observe(f"JOB_STATE_{target.upper()}")
        assert job.snapshot() == before
    elif expected == "no-op":
        job.observe(target)
        assert job.snapshot() == before
    else:
        job.observe(f"JOB_STATE_{target.upper()}")
        assert job.state == target
        assert job.history[-1].source == source
        assert job.history[-1].target == target
        assert job.history[-1].payload == {
            "via": "observe",
            "value": f"JOB_STATE_{target.upper()}",
            "replaced_by_job_id": None,
        }


def test_every_final_state_is_final_and_only_those() -> None:
    """DONE, FAILED, CANCELLED, UPDATED, DRAINED are final (spec §1.3); no other state is."""
    assert {s.id for s in DataflowJob.final_states} == FINAL


def test_states_carry_api_names_as_values() -> None:
    """Each state id maps to its JobState API name, numbers 0-14 in enum order."""
    assert [s.id for s in DataflowJob.states] == STATES
    assert all(s.value == f"JOB_STATE_{s.id.upper()}" for s in DataflowJob.states)


def test_refusal_says_what_is_possible() -> None:
    """An illegal observation names the rule set and the states reachable from here."""
    job = job_in(DataflowJob, "pending")
    with pytest.raises(TransitionNotAllowed) as info:
        job.observe("JOB_STATE_DONE")
    assert str(info.value) == (
        "Can't observe JOB_STATE_DONE on DataflowJob in JOB_STATE_PENDING: the documented rule "
        "set has no such transition. From JOB_STATE_PENDING the job may go to: "
        "JOB_STATE_FAILED, JOB_STATE_RUNNING; pass infer=True to accept a jump over missed "
        "states."
    )


def test_observing_a_finished_job_says_it_has_terminated() -> None:
    """After a terminal state, the message quotes the service's wording."""
    job = job_in(DataflowJob, "done")
    with pytest.raises(TransitionNotAllowed, match="has terminated in state JOB_STATE_DONE"):
        job.observe("JOB_STATE_RUNNING")


def test_observing_unknown_after_a_real_state_is_refused() -> None:
    """X -> UNKNOWN is never a transition (spec §1.5: UNKNOWN has no edges in)."""
    job = job_in(DataflowJob, "running")
    with pytest.raises(TransitionNotAllowed):
        job.observe(0)
    assert job.state == "running"
