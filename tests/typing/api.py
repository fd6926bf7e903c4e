"""Type-checks the documented API under mypy (``make test`` runs mypy on this directory).

Nothing here runs as a test: mypy proves that ``self.context`` has the model's type in
guards and callbacks of a ``Lifecycle[Model]``, and that an unparameterised ``Lifecycle``
stays usable (its context is ``Any``).
"""

from __future__ import annotations

from typing import Any, assert_type

from pydantic import BaseModel

from lifecyclekit import Lifecycle, State, registry


class BuildContext(BaseModel):
    build_id: str
    workers: int = 0


class Build(Lifecycle[BuildContext]):
    queued = State(initial=True)
    done = State(final=True)
    start = queued.to(done, cond="has_workers")

    def has_workers(self) -> bool:
        assert_type(self.context, BuildContext)
        return self.context.workers > 0

    def on_start(self) -> None:
        assert_type(self.context.build_id, str)


class Rebuild(Lifecycle[BuildContext]):
    """The construction hooks, overridden with the context's own type."""

    queued = State(initial=True)
    running = State()
    done = State(final=True)
    start = queued.to(running)
    finish = running.to(done)

    @classmethod
    def initial_state_for(cls, context: BuildContext) -> State | None:
        assert_type(context.workers, int)
        return cls.running if context.workers else None

    def when_created(self) -> None:
        assert_type(self.context, BuildContext)

    def when_restored(self) -> None:
        assert_type(self.context.build_id, str)


def construction_hooks(build: Build, context: BuildContext) -> None:
    assert_type(Build.initial_state_for(context), str | State | None)
    assert_type(Rebuild.initial_state_for(context), State | None)
    assert_type(build.when_created(), None)
    assert_type(build.when_restored(), None)


async def async_api(build: Build) -> None:
    from lifecyclekit import Explanation

    assert_type(await build.aexplain("start"), Explanation)
    assert_type(await build.acall("start"), Any)
    assert_type(await build.asend("start"), Any)
    assert_type(build.is_async, bool)


def typed_context(build: Build) -> None:
    assert_type(build.context, BuildContext)
    assert_type(Build.restore(build.snapshot()), Build)
    build.context = BuildContext(build_id="b")


def untyped_lifecycles_stay_usable(cls: type[Lifecycle], name: str) -> Any:
    instance = cls()
    assert_type(instance.context, Any)
    assert_type(registry.get(name), type[Lifecycle])
    return instance.context


def builtin_lifecycles_declare_their_context() -> None:
    # mypy checks machines/ as the package ``machines`` (it cannot follow the installed
    # mapping to lifecyclekit.machines), so the built-ins are imported from there here.
    from machines.dataflow import DataflowJob, DataflowJobContext
    from machines.dataflow._api import JobTypeName

    job = DataflowJob(job_type="JOB_TYPE_STREAMING")
    assert_type(job.context, DataflowJobContext)
    assert_type(job.context.job_type, JobTypeName)
