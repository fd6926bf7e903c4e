"""Pins every private python-statemachine name lifecyclekit relies on (all in ``_psm.py``).

If a python-statemachine release renames, moves or bypasses one, these fail first and say where.
"""

from __future__ import annotations

import statemachine
from statemachine import StateChart

from lifecyclekit import Lifecycle, _psm
from tests.sample_machines import Ticket


def test_installed_release_is_the_one_psm_py_was_read_from() -> None:
    """pyproject pins python-statemachine >=3.2.2,<3.3; _psm.py was read from 3.2.2."""
    major, minor, patch = (int(p) for p in statemachine.__version__.split(".")[:3])
    assert (major, minor) == (3, 2)
    assert patch >= 2
    assert _psm.PSM_VERSION == "3.2.2"


def test_hooks_exist_on_psm() -> None:
    """StateChart still has _put_nonblocking and _processing_loop; _psm overrides both."""
    assert callable(StateChart._put_nonblocking)
    assert callable(StateChart._processing_loop)
    assert "_put_nonblocking" in vars(_psm.HookedStateMachine)
    assert "_processing_loop" in vars(_psm.HookedStateMachine)
    assert issubclass(Lifecycle, _psm.HookedStateMachine)


def test_every_event_entry_point_goes_through_put_nonblocking() -> None:
    """Event methods, send() and raise_() all reach _put_nonblocking (where payloads validate)."""
    seen: list[str] = []

    class Spy(Ticket):
        def _put_nonblocking(self, trigger_data, internal=False):  # type: ignore[no-untyped-def]
            seen.append(trigger_data.event.id)
            return super()._put_nonblocking(trigger_data, internal=internal)

    spy = Spy(ticket_id="t")
    spy.start()
    spy.send("retry")
    spy.raise_("cancel")
    assert seen == ["start", "retry", "cancel"]


def test_guard_wrappers_keep_the_resolved_callable() -> None:
    """Explanations read a guard's raw answer from psm's CallbackWrapper._callback."""
    ticket = Ticket(ticket_id="t")
    transition = next(t for t in Ticket.queued.transitions if t.match("start"))
    guards = _psm.guard_calls(ticket, transition)
    assert [(name, expected) for name, expected, _ in guards] == [
        ("has_capacity", True),
        ("is_due", True),
    ]
    assert [call() for _, _, call in guards] == [True, True]


def test_engine_running_flag_tracks_final_states() -> None:
    """Lifecycle.atomic() restores psm's _engine.running after rolling back a final state."""
    ticket = Ticket(ticket_id="t")
    assert _psm.engine_running(ticket) is True
    ticket.cancel()
    assert _psm.engine_running(ticket) is False
    _psm.set_engine_running(ticket, True)
    assert ticket.is_terminated is False


def test_the_private_parts_the_resolution_reads_are_there() -> None:
    """resolve_flat reads psm's registry, listeners, specs and wrappers by these names."""
    from statemachine.callbacks import CallbackSpec, CallbacksRegistry, CallbackWrapper
    from statemachine.dispatcher import Listener, Listeners
    from statemachine.engines.base import BaseEngine, _running_engine
    from statemachine.event import Event

    for owner, names in [
        (Lifecycle, ["_protected_attrs", "_class_listeners", "_specs", "_events", "prepare"]),
        (Listener, ["from_obj", "build_key"]),
        (Listeners, ["from_listeners", "resolve", "search_name"]),
        (CallbacksRegistry, ["check", "async_or_sync", "call", "all"]),
        (Event, ["is_same_event", "build_trigger"]),
    ]:
        assert all(hasattr(owner, name) for name in names), owner
    assert "_callback" in CallbackWrapper.__init__.__code__.co_names
    assert {"may_contain_boolean_expression", "lookup_name", "is_convention"} <= set(
        vars(CallbackSpec("x", group=next(iter(_psm._GROUP.values())))).keys()
    )
    assert _running_engine.get() is None
    assert "_processing" in BaseEngine.__init__.__code__.co_names


def test_a_resolution_of_a_known_class_has_the_expected_shape() -> None:
    """Ticket resolves to psm's order: the guards, the naming convention, the recorder."""
    from lifecyclekit.lifecycle import _RECORDER, _StateHolder

    definition = _psm.resolve_flat(Ticket, _StateHolder(), [_RECORDER])
    assert isinstance(definition, _psm.FlatDefinition)
    start = next(t for t in Ticket.queued.transitions if t.match("start"))
    guards = definition.callbacks[("cond", id(start))]
    assert [(g.name, g.kind, g.expected) for g in guards] == [
        ("has_capacity", "expression", True),
        ("is_due", "expression", True),
    ]
    finish = next(t for t in Ticket.running.transitions if t.match("finish"))
    on = definition.callbacks[("on", id(finish))]
    assert [(c.name, c.kind, c.event) for c in on] == [("on_finish", "method", "finish")]
    after = definition.callbacks[("after", id(finish))]
    assert [(c.kind, c.target) for c in after] == [("listener", (0, "after_transition"))]


def test_psm_runs_async_machines_from_sync_code_on_the_thread_loop_we_close() -> None:
    """psm's run_async_from_sync caches its loop in utils._cached_loop.loop; _psm.thread_loop
    puts one there that is closed when its thread ends (no unclosed-loop ResourceWarning)."""
    import asyncio
    import gc
    import threading

    from statemachine import utils

    seen: list[asyncio.AbstractEventLoop] = []

    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def worker() -> None:
        _psm.thread_loop()
        seen.append(utils._cached_loop.loop)
        seen.append(utils.run_async_from_sync(running_loop()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    gc.collect()
    assert seen[0] is seen[1]
    assert seen[0].is_closed()
