"""Core suites: one small flat lifecycle, four ways, doing the same work.

The lifecycle: ``idle -start-> running``, ``running -pause-> paused -resume-> running``,
``running -report-> running`` (an external self-transition carrying a ``Progress`` payload)
and ``running -finish-> done`` (final); ``start`` and ``pause`` are guarded by
``has_capacity``, which reads the pydantic context ``Ctx``. The contenders:

- ``lifecyclekit``: a ``Lifecycle`` through the public API only (``LkJob(job_id=...)``,
  ``job.pause()``, ``job.report(percent=50)``, ``job.snapshot()``, ``LkJob.restore(...)``), so
  it keeps measuring whatever engine lifecyclekit runs on. It also records history (one
  ``TransitionRecord`` per event) and reads its clock, as applications get them.
- ``python-statemachine``: a raw ``StateMachine`` with the same states, guard and context; the
  payload is validated around the call (``job.report(payload=Progress(percent=50))``).
- ``transitions``: a ``transitions.Machine`` per instance (the library's documented
  ``Machine(model=self, ...)`` shape), same guard, payload validated around the call.
- ``dict table``: the floor; a ``{(state, event): (target, guard, payload model)}`` table and
  a ``send`` that validates the payload, checks the guard and sets the state.

Baselines have no history; their snapshot is ``{state, context}`` as a JSON-ready dict and
their restore validates the context and the state. lifecyclekit's snapshot is its public
``Snapshot`` (with its history) dumped to a JSON-ready dict, and restore validates it.

Another contender (a lifecyclekit variant, another library) is one more :class:`Impl` in
:data:`IMPLS`; every core suite then runs it. Keep the subject first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import BaseModel, Field
from statemachine import State, StateMachine
from transitions import Machine

from lifecyclekit import Lifecycle
from lifecyclekit import State as LState
from tests.benchmarks.harness import Contender, Env, Options, Runner, Suite, each, register


class Ctx(BaseModel):
    job_id: str
    capacity: int = 1


class Progress(BaseModel):
    percent: int = Field(ge=0, le=100)


# -- lifecyclekit ----------------------------------------------------------------------------


class LkJob(Lifecycle):
    Context = Ctx
    payloads = {"report": Progress}

    idle = LState(initial=True)
    running = LState()
    paused = LState()
    done = LState(final=True)

    start = idle.to(running, cond="has_capacity")
    pause = running.to(paused, cond="has_capacity")
    resume = paused.to(running)
    report = running.to.itself()
    finish = running.to(done)

    def has_capacity(self) -> bool:
        return bool(self.context.capacity > 0)


# -- raw python-statemachine -----------------------------------------------------------------


class PsmJob(StateMachine):
    idle = State(initial=True)
    running = State()
    paused = State()
    done = State(final=True)

    start = idle.to(running, cond="has_capacity")
    pause = running.to(paused, cond="has_capacity")
    resume = paused.to(running)
    report = running.to.itself()
    finish = running.to(done)

    def __init__(self, context: Ctx, **kwargs: Any) -> None:
        self.context = context
        super().__init__(**kwargs)

    def has_capacity(self) -> bool:
        return bool(self.context.capacity > 0)


class _PsmModel:
    """The model a restored raw machine reads its state from."""

    def __init__(self, state: str) -> None:
        self.state = state


def _psm_restore(data: dict[str, Any]) -> PsmJob:
    return PsmJob(Ctx.model_validate(data["context"]), model=_PsmModel(data["state"]))


# -- transitions -----------------------------------------------------------------------------

STATES = ("idle", "running", "paused", "done")


class TrJob:
    def __init__(self, context: Ctx, initial: str = "idle") -> None:
        self.context = context
        self.machine = Machine(
            model=self,
            states=list(STATES),
            transitions=[
                {"trigger": "start", "source": "idle", "dest": "running", "conditions": "cap"},
                {"trigger": "pause", "source": "running", "dest": "paused", "conditions": "cap"},
                {"trigger": "resume", "source": "paused", "dest": "running"},
                {"trigger": "report", "source": "running", "dest": "running"},
                {"trigger": "finish", "source": "running", "dest": "done"},
            ],
            initial=initial,
            auto_transitions=False,
        )

    def cap(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self.context.capacity > 0)


def _tr_restore(data: dict[str, Any]) -> TrJob:
    return TrJob(Ctx.model_validate(data["context"]), initial=data["state"])


# -- the dict-table floor --------------------------------------------------------------------


def _has_capacity(job: DictJob) -> bool:
    return bool(job.context.capacity > 0)


TABLE: dict[tuple[str, str], tuple[str, Callable[[DictJob], bool] | None, Any]] = {
    ("idle", "start"): ("running", _has_capacity, None),
    ("running", "pause"): ("paused", _has_capacity, None),
    ("paused", "resume"): ("running", None, None),
    ("running", "report"): ("running", None, Progress),
    ("running", "finish"): ("done", None, None),
}


class DictJob:
    __slots__ = ("context", "state")

    def __init__(self, context: Ctx, state: str = "idle") -> None:
        if state not in STATES:
            msg = f"Unknown state {state!r}; states: {', '.join(STATES)}."
            raise ValueError(msg)
        self.context = context
        self.state = state

    def send(self, event: str, **data: Any) -> BaseModel | None:
        try:
            target, guard, model = TABLE[self.state, event]
        except KeyError:
            msg = f"{event!r} is not allowed in {self.state!r}."
            raise ValueError(msg) from None
        if model is not None:
            payload = model.model_validate(data)
        elif data:
            msg = f"{event!r} takes no payload, got {sorted(data)}."
            raise ValueError(msg)
        else:
            payload = None
        if guard is not None and not guard(self):
            msg = f"{event!r} is not allowed now: guard {guard.__name__} is false."
            raise ValueError(msg)
        self.state = target
        return payload


def _dict_snapshot(job: DictJob | TrJob) -> dict[str, Any]:
    return {"state": job.state, "context": job.context.model_dump(mode="json")}  # type: ignore[union-attr]


def _dict_restore(data: dict[str, Any]) -> DictJob:
    return DictJob(Ctx.model_validate(data["context"]), state=data["state"])


# -- the contenders, operation by operation --------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """One contender's way of doing each operation, written as its users would."""

    name: str
    create: Callable[[], Any]
    start: Callable[[Any], object]
    pause: Callable[[Any], object]
    resume: Callable[[Any], object]
    report: Callable[[Any], object]
    snapshot: Callable[[Any], dict[str, Any]]
    restore: Callable[[dict[str, Any]], Any]

    def started(self) -> Any:
        job = self.create()
        self.start(job)
        return job


IMPLS = (
    Impl(
        "lifecyclekit",
        create=lambda: LkJob(job_id="j"),
        start=lambda job: job.start(),
        pause=lambda job: job.pause(),
        resume=lambda job: job.resume(),
        report=lambda job: job.report(percent=50),
        snapshot=lambda job: job.snapshot().model_dump(mode="json"),
        restore=LkJob.restore,
    ),
    Impl(
        "python-statemachine",
        create=lambda: PsmJob(Ctx(job_id="j")),
        start=lambda job: job.start(),
        pause=lambda job: job.pause(),
        resume=lambda job: job.resume(),
        report=lambda job: job.report(payload=Progress(percent=50)),
        snapshot=lambda job: {
            "state": job.current_state_value,
            "context": job.context.model_dump(mode="json"),
        },
        restore=_psm_restore,
    ),
    Impl(
        "transitions",
        create=lambda: TrJob(Ctx(job_id="j")),
        start=lambda job: job.start(),
        pause=lambda job: job.pause(),
        resume=lambda job: job.resume(),
        report=lambda job: job.report(payload=Progress(percent=50)),
        snapshot=_dict_snapshot,
        restore=_tr_restore,
    ),
    Impl(
        "dict table",
        create=lambda: DictJob(Ctx(job_id="j")),
        start=lambda job: job.send("start"),
        pause=lambda job: job.send("pause"),
        resume=lambda job: job.send("resume"),
        report=lambda job: job.send("report", percent=50),
        snapshot=_dict_snapshot,
        restore=_dict_restore,
    ),
)


def setup_event(impl: Impl, env: Env) -> Runner:
    """``env.operations`` events on a running instance, alternating pause (guarded) and
    resume."""
    job = impl.started()
    pause, resume = impl.pause, impl.resume

    def run() -> None:
        for _ in range(env.operations // 2):
            pause(job)
            resume(job)
        if env.operations % 2:
            pause(job)

    return run


def setup_report(impl: Impl, env: Env) -> Runner:
    job = impl.started()
    return each(partial(impl.report, job), env.operations)


def setup_create(impl: Impl, env: Env) -> Runner:
    return each(impl.create, env.operations)


def setup_snapshot(impl: Impl, env: Env) -> Runner:
    job = impl.started()
    return each(partial(impl.snapshot, job), env.operations)


def setup_restore(impl: Impl, env: Env) -> Runner:
    data = impl.snapshot(impl.started())
    return each(partial(impl.restore, data), env.operations)


def setup_instance(impl: Impl, env: Env) -> Runner:
    """For ``measure="memory"``: one live instance that has taken its first transition."""
    return impl.started


OPERATIONS: tuple[tuple[str, str, str, Callable[[Impl, Env], Runner]], ...] = (
    ("event", "event", "event", setup_event),
    ("event-payload", "event", "event with a validated payload", setup_report),
    ("create", "instance", "create", setup_create),
    ("restore", "instance", "restore from a JSON dict", setup_restore),
    ("snapshot", "instance", "snapshot to a JSON dict", setup_snapshot),
)
"""Each core suite: key, unit, title, setup. ``event`` alternates a guarded ``pause`` and a
``resume`` on a running instance; ``event with a validated payload`` is ``report(percent=50)``,
an external self-transition; ``create`` validates the context and does not start; restore and
snapshot round-trip a started instance through a JSON-ready dict."""


@register("core")
def core_suites(options: Options) -> Iterator[Suite]:
    """One suite per operation, plus bytes per live instance."""
    for key, unit, title, setup in OPERATIONS:
        yield Suite(
            name=f"core.{key}",
            title=title,
            unit=unit,
            contenders=tuple(Contender(i.name, partial(setup, i)) for i in IMPLS),
            operations=400,
            rounds=15,
        )
    yield Suite(
        name="core.memory",
        title="bytes per live instance",
        unit="instance",
        measure="memory",
        contenders=tuple(Contender(i.name, partial(setup_instance, i)) for i in IMPLS),
        operations=2_000,
        rounds=5,
        quick_operations=50,
        quick_rounds=1,
        note="Bytes per live instance: tracemalloc over many started instances, after a warm-up.",
    )
