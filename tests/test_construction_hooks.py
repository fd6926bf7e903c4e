"""Construction hooks (issue 15 point 4, ARCHITECTURE move 4): ``initial_state_for``,
``when_created`` and ``when_restored``, on both engines and through a store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from lifecyclekit import DefinitionError, Lifecycle, Registry, State
from lifecyclekit.store import open_store

REGISTRY = Registry(discover=False)


class JobContext(BaseModel):
    priority: int = 0
    urgent: bool = False


EVENTS: list[tuple[str, ...]] = []
"""What the hooks and entry actions of :class:`Job` saw, in order (cleared per test)."""


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


@REGISTRY.register("hooked-job")
class Job(Lifecycle[JobContext]):
    """queued -start-> running -finish-> done; urgent jobs start running."""

    queued = State(initial=True)
    running = State()
    done = State(final=True)

    start = queued.to(running)
    finish = running.to(done)

    @classmethod
    def initial_state_for(cls, context: JobContext) -> str | None:
        EVENTS.append(("initial_state_for", str(context.urgent)))
        return "running" if context.urgent else None

    def on_enter_state(self, target: State) -> None:
        EVENTS.append(("enter", target.id))

    def when_created(self) -> None:
        EVENTS.append(("created", self.state, str(self.revision)))
        self.context.priority += 1

    def when_restored(self) -> None:
        EVENTS.append(("restored", self.state, str(self.revision), str(len(self.history))))


class EngineJob(Job):
    """The same lifecycle on python-statemachine's engine."""

    fast_path = False


class AsyncJob(Job):
    """The same lifecycle on python-statemachine's async engine."""

    async def on_exit_state(self) -> None:
        await asyncio.sleep(0)


KINDS = [
    pytest.param(Job, id="compiled"),
    pytest.param(EngineJob, id="engine"),
    pytest.param(AsyncJob, id="async"),
]


@pytest.mark.compiled_path
def test_the_three_classes_run_on_the_paths_they_name() -> None:
    """The hooks do not move a class off the compiled path."""
    assert Job().on_fast_path
    assert not EngineJob().on_fast_path
    assert AsyncJob().is_async


@pytest.mark.parametrize("cls", KINDS)
def test_when_created_runs_once_after_the_initial_entry(cls: type[Job]) -> None:
    """A new instance: initial_state_for, then the entry actions, then when_created once."""
    job = cls()
    assert EVENTS == [
        ("initial_state_for", "False"),
        ("enter", "queued"),
        ("created", "queued", "0"),
    ]
    assert job.context.priority == 1


@pytest.mark.parametrize("cls", KINDS)
def test_initial_state_for_picks_the_starting_state_from_the_context(cls: type[Job]) -> None:
    """The chosen state is entered (its entry actions run) instead of the initial one."""
    job = cls(urgent=True)
    assert job.state == "running"
    assert EVENTS == [
        ("initial_state_for", "True"),
        ("enter", "running"),
        ("created", "running", "0"),
    ]
    job.finish()
    assert [(r.source, r.target) for r in job.history] == [("running", "done")]


@pytest.mark.parametrize("cls", KINDS)
def test_restore_calls_only_when_restored(cls: type[Job]) -> None:
    """Restore: no initial_state_for, no entry action, no when_created; when_restored once,
    with history and revision already set."""
    job = cls()
    job.start()
    snapshot = job.snapshot()
    EVENTS.clear()
    restored = cls.restore(snapshot)
    assert EVENTS == [("restored", "running", "1", "1")]
    assert restored.context.priority == 1  # when_created did not run again


@pytest.mark.parametrize("cls", KINDS)
def test_from_stored_calls_only_when_restored(cls: type[Job]) -> None:
    """from_stored (how stores load) is a restore too."""
    job = cls(urgent=True)
    EVENTS.clear()
    cls.from_stored("running", job.context.model_dump_json(), revision=0)
    assert EVENTS == [("restored", "running", "0", "0")]


@pytest.mark.parametrize("cls", KINDS)
def test_explicit_start_value_wins_over_initial_state_for(cls: type[Job]) -> None:
    """Given start_value, the constructor does not ask initial_state_for."""
    job = cls(urgent=True, start_value="done")
    assert job.state == "done"
    assert EVENTS == [("enter", "done"), ("created", "done", "0")]


def test_initial_state_for_may_return_a_state_or_none() -> None:
    """A State attribute of the class works; None means the declared initial state."""

    class ByState(Job):
        @classmethod
        def initial_state_for(cls, context: JobContext) -> State | None:
            return cls.running if context.urgent else None

    assert (ByState(urgent=True).state, ByState().state) == ("running", "queued")


@pytest.mark.parametrize(
    "chosen",
    [pytest.param("nowhere", id="unknown-id"), pytest.param("RUNNING", id="a-value-not-an-id")],
)
def test_initial_state_for_naming_no_state_is_a_definition_error(chosen: Any) -> None:
    """A bad answer names itself, the states and the fix; no when_created runs."""

    class Lost(Job):
        @classmethod
        def initial_state_for(cls, context: JobContext) -> str:
            return chosen

    with pytest.raises(DefinitionError) as caught:
        Lost()
    assert str(caught.value) == (
        f"Lost.initial_state_for returned {chosen!r}, which is not a state of Lost. Return a "
        "state id (queued, running, done), one of the class's State attributes, or None for "
        "the initial state."
    )
    assert ("created", "queued", "0") not in EVENTS


def test_a_state_of_another_class_is_refused() -> None:
    """A State of another lifecycle with the same id is not this class's state."""

    class Other(Lifecycle):
        running = State(initial=True)
        stopped = State(final=True)
        stop = running.to(stopped)

    class Foreign(Job):
        @classmethod
        def initial_state_for(cls, context: JobContext) -> State:
            return Other.running

    with pytest.raises(DefinitionError, match="not a state of Foreign"):
        Foreign()


def test_when_created_failing_fails_the_construction() -> None:
    """An exception from when_created reaches the caller: no half-made instance."""

    class Picky(Job):
        def when_created(self) -> None:
            msg = "priority too low"
            raise ValueError(msg)

    with pytest.raises(ValueError, match="priority too low"):
        Picky()


def test_a_store_creates_with_when_created_and_loads_with_when_restored(tmp_path: Path) -> None:
    """store.create runs initial_state_for and when_created once; store.load and send
    restore (when_restored) and never re-create."""
    with open_store(f"sqlite:///{tmp_path / 's.db'}", registry=REGISTRY, create=True) as store:
        created = store.create("hooked-job", id="j", urgent=True)
        assert (created.state, created.context["priority"]) == ("running", 1)
        assert [e[0] for e in EVENTS] == ["initial_state_for", "enter", "created"]
        EVENTS.clear()
        store.send("j", "finish")
        loaded = store.load("j")
        assert loaded.context.priority == 1
        assert [e[0] for e in EVENTS] == ["restored", "enter", "restored"]
