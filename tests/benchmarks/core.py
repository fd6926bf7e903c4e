"""Core benchmark: lifecyclekit against raw python-statemachine and `transitions`.

The same small flat lifecycle is built three ways:

- ``lifecyclekit``: a ``Lifecycle`` with a pydantic context, a guard, and a payload model on
  ``report`` (validation, history and clock included, as applications get them).
- ``psm``: a raw python-statemachine ``StateMachine`` with the same states, guard and
  callbacks; the payload is validated by calling the same pydantic model by hand, and a
  "snapshot" is ``{state, context}`` built by hand (raw psm has neither history nor snapshots).
- ``transitions``: the same with the ``transitions`` library.

Every operation is timed in batches; a figure is the median per-operation time over the
batches. Memory is what ``tracemalloc`` sees allocated per live instance, for 10,000
instances that each took one transition.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from statemachine import State, StateMachine
from transitions import Machine

from lifecyclekit import Lifecycle
from lifecyclekit import State as LState


class Ctx(BaseModel):
    job_id: str
    capacity: int = 1


class Progress(BaseModel):
    percent: int = Field(ge=0, le=100)


class LkJob(Lifecycle):
    Context = Ctx
    payloads = {"report": Progress}

    idle = LState(initial=True)
    running = LState()
    paused = LState()
    done = LState(final=True)

    start = idle.to(running, cond="has_capacity")
    pause = running.to(paused)
    resume = paused.to(running)
    report = running.to.itself()
    finish = running.to(done)

    def has_capacity(self) -> bool:
        return bool(self.context.capacity > 0)


class PsmJob(StateMachine):
    idle = State(initial=True)
    running = State()
    paused = State()
    done = State(final=True)

    start = idle.to(running, cond="has_capacity")
    pause = running.to(paused)
    resume = paused.to(running)
    report = running.to.itself()
    finish = running.to(done)

    def __init__(self, context: Ctx, **kwargs: Any) -> None:
        self.context = context
        super().__init__(**kwargs)

    def has_capacity(self) -> bool:
        return bool(self.context.capacity > 0)


class TrJob:
    def __init__(self, context: Ctx, initial: str = "idle") -> None:
        self.context = context
        self.machine = Machine(
            model=self,
            states=["idle", "running", "paused", "done"],
            transitions=[
                {"trigger": "start", "source": "idle", "dest": "running", "conditions": "cap"},
                {"trigger": "pause", "source": "running", "dest": "paused"},
                {"trigger": "resume", "source": "paused", "dest": "running"},
                {"trigger": "report", "source": "running", "dest": "running"},
                {"trigger": "finish", "source": "running", "dest": "done"},
            ],
            initial=initial,
            auto_transitions=False,
        )

    def cap(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self.context.capacity > 0)


@dataclass
class Contender:
    create: Callable[[], Any]
    fire: Callable[[Any], None]
    fire_payload: Callable[[Any], None]
    snapshot: Callable[[Any], Any]
    restore: Callable[[Any], Any]


def _lk_snapshot(job: LkJob) -> Any:
    return job.snapshot()


def _psm_snapshot(job: PsmJob) -> dict[str, Any]:
    return {"state": job.current_state_value, "context": job.context.model_dump(mode="json")}


def _psm_restore(data: dict[str, Any]) -> PsmJob:
    from statemachine.model import Model

    model = Model()
    model.state = data["state"]
    return PsmJob(Ctx.model_validate(data["context"]), model=model)


def _tr_snapshot(job: TrJob) -> dict[str, Any]:
    return {"state": job.state, "context": job.context.model_dump(mode="json")}  # type: ignore[attr-defined]


CONTENDERS: dict[str, Contender] = {
    "lifecyclekit": Contender(
        create=lambda: LkJob(job_id="j"),
        fire=lambda job: (job.pause(), job.resume()),
        fire_payload=lambda job: job.report(percent=50),
        snapshot=_lk_snapshot,
        restore=LkJob.restore,
    ),
    "python-statemachine": Contender(
        create=lambda: PsmJob(Ctx(job_id="j")),
        fire=lambda job: (job.pause(), job.resume()),
        fire_payload=lambda job: job.report(payload=Progress.model_validate({"percent": 50})),
        snapshot=_psm_snapshot,
        restore=_psm_restore,
    ),
    "transitions": Contender(
        create=lambda: TrJob(Ctx(job_id="j")),
        fire=lambda job: (job.pause(), job.resume()),
        fire_payload=lambda job: job.report(payload=Progress.model_validate({"percent": 50})),
        snapshot=_tr_snapshot,
        restore=lambda data: TrJob(Ctx.model_validate(data["context"]), initial=data["state"]),
    ),
}

OPERATIONS = ("create", "event", "event+payload", "snapshot", "restore")


def _started(contender: Contender) -> Any:
    job = contender.create()
    job.start()
    return job


def _time_batches(op: Callable[[], None], per_batch: int, batches: int) -> float:
    samples = []
    for _ in range(batches):
        gc.collect()
        begin = time.perf_counter_ns()
        for _ in range(per_batch):
            op()
        samples.append((time.perf_counter_ns() - begin) / per_batch)
    return statistics.median(samples)


def _time_operation(contender: Contender, operation: str, per_batch: int, batches: int) -> float:
    job = _started(contender)
    if operation == "create":
        return _time_batches(contender.create, per_batch, batches)
    if operation == "event":
        # One pause + one resume per call: two events.
        return _time_batches(lambda: contender.fire(job), per_batch, batches) / 2
    if operation == "event+payload":
        return _time_batches(lambda: contender.fire_payload(job), per_batch, batches)
    snap = contender.snapshot(job)
    if operation == "snapshot":
        return _time_batches(lambda: contender.snapshot(job), per_batch, batches)
    return _time_batches(lambda: contender.restore(snap), per_batch, batches)


def bytes_per_instance(contender: Contender, count: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    jobs = [_started(contender) for _ in range(count)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del jobs
    return (after - before) / count


def run(per_batch: int = 2_000, batches: int = 7, instances: int = 10_000) -> dict[str, Any]:
    """Measure every operation for every contender; return figures and ratios."""
    results: dict[str, dict[str, float]] = {}
    for name, contender in CONTENDERS.items():
        figures = {
            f"{op} (us)": _time_operation(contender, op, per_batch, batches) / 1_000
            for op in OPERATIONS
        }
        figures["bytes/instance"] = bytes_per_instance(contender, instances)
        results[name] = figures
    baseline = results["python-statemachine"]
    ratios = {
        metric: results["lifecyclekit"][metric] / baseline[metric]
        for metric in baseline
        if baseline[metric]
    }
    return {
        "per_batch": per_batch,
        "batches": batches,
        "instances": instances,
        "results": results,
        "ratio_vs_psm": ratios,
    }
