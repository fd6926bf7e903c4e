"""The differential suite bites: each deviation planted in the compiled path is caught.

Each test changes one rule of ``lifecyclekit._fast`` (by editing the source of one function,
so the plant fails loudly if that code changes) and runs the differential checks of
``tests/test_differential.py`` against it; they must report a difference.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import lifecyclekit._fast as _fast
from tests import test_differential as suite
from tests import test_generated_machines as generated
from tests.differential import Twin
from tests.differential_machines import MACHINES

pytestmark = pytest.mark.compiled_path


@pytest.fixture(autouse=True)
def _fresh_plans() -> Iterator[None]:
    """Plans compiled while a deviation is planted must not outlive the test."""
    _fast.invalidate()
    yield
    _fast.invalidate()


def _edited(function: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    """``function`` rebuilt from its source with ``old`` replaced by ``new``."""
    source = textwrap.dedent(inspect.getsource(function))
    assert old in source, f"the code planted into changed: {old!r} not in {function.__name__}"
    namespace = dict(vars(_fast))
    exec(source.replace(old, new), namespace)  # noqa: S102 - test plants a known edit
    return namespace[function.__name__]  # type: ignore[no-any-return]


SEARCH = settings(
    max_examples=150,
    database=None,
    derandomize=True,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
    deadline=None,
)


@SEARCH
@given(steps=st.lists(suite.STEPS, min_size=4, max_size=30))
def _random_sequences(steps: list[Any]) -> None:
    for machine in MACHINES:
        twin = Twin(machine)
        twin.create()
        for step in steps:
            suite.apply(twin, step)


@settings(SEARCH, max_examples=60)
@given(data=st.data())
def _walks(data: Any) -> None:
    walk = suite.test_walks_through_allowed_events_behave_alike.hypothesis.inner_test  # type: ignore[attr-defined]
    for machine in MACHINES:
        walk(machine, data)


@SEARCH
@given(spec=generated.machine_specs(), sequence=st.lists(generated.steps, max_size=20))
def _generated_machines(spec: dict[str, Any], sequence: list[Any]) -> None:
    generated.test_generated_machines_behave_alike.hypothesis.inner_test(spec, sequence)  # type: ignore[attr-defined]


def _scenario(knobs: Any, events: Any, history: Any) -> Callable[[], None]:
    return lambda: suite.test_run_to_completion_rules_hold_on_both_paths(knobs, events, history)


def _suite_finds_a_difference() -> bool:
    """Run the differential checks; whether any reported a difference."""
    checks: list[Callable[[], None]] = [
        suite.test_every_callback_phase_can_raise_and_roll_back,
        *(_scenario(*params.values) for params in suite.QUEUE_SCENARIOS),
        _random_sequences,
        _walks,
        _generated_machines,
    ]
    for check in checks:
        try:
            check()
        except AssertionError as error:
            if "differs" in str(error):
                return True
            raise
        except BaseExceptionGroup:
            return True
    return False


def test_the_unchanged_compiled_path_passes() -> None:
    """The control: with nothing planted, the checks find no difference."""
    assert not _suite_finds_a_difference()


def test_wrong_callback_order_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Callbacks of each phase run in reverse order."""
    phase = _fast.Plan._phase

    def reversed_phase(plan: _fast.Plan, group: str, owner: object, ctx: Any) -> Any:
        return tuple(reversed(phase(plan, group, owner, ctx)))

    monkeypatch.setattr(_fast.Plan, "_phase", reversed_phase)
    assert _suite_finds_a_difference()


def test_missing_rollback_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error in before/exit/on/enter leaves the state where it got to."""
    planted = _edited(_fast._microstep, "        holder.state = previous\n", "        pass\n")
    monkeypatch.setattr(_fast, "_microstep", planted)
    assert _suite_finds_a_difference()


def test_guards_without_short_circuit_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every guard of a candidate is evaluated even after one failed."""
    planted = _edited(
        _fast._take,
        "        for guard, expected in c.guards:\n"
        "            if (not guard(machine, trigger, d0)) is expected:\n"
        "                break\n"
        "        else:\n",
        "        failed = [\n"
        "            (not guard(machine, trigger, d0)) is expected\n"
        "            for guard, expected in c.guards\n"
        "        ]\n"
        "        if not any(failed):\n",
    )
    monkeypatch.setattr(_fast, "_take", planted)
    assert _suite_finds_a_difference()


def test_a_final_state_that_does_not_stop_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entering a final state leaves the machine running."""
    planted = _edited(
        _fast._microstep,
        "                machine._set_running(False)\n",
        "                pass\n",
    )
    monkeypatch.setattr(_fast, "_microstep", planted)
    assert _suite_finds_a_difference()
