"""Every private part of python-statemachine that lifecyclekit uses, in one place.

Read from python-statemachine 3.2.2 (``pyproject.toml`` pins ``>=3.2.2,<3.3``);
``tests/test_engine_hooks.py`` checks each name below against the installed release, so a
release that moves one fails there first. Nothing else in lifecyclekit imports
``statemachine.{engines,factory,callbacks,event_data,...}`` or reads a private attribute of a
machine; this module imports nothing of lifecyclekit.

What lives here:

- :class:`HookedStateMachine`: psm's two engine entry points (``_put_nonblocking``, where an
  event is queued, and ``_processing_loop``, where the queue runs) turned into three plain
  hooks a subclass implements: ``_admit_event`` (validate or drop an event before it is
  queued), ``_refusal`` (the exception for a refused event) and ``_is_refusal``.
- The engine's ``running`` flag (:func:`engine_running`, :func:`set_engine_running`) and the
  guard wrappers' resolved callables (:func:`guard_calls`), for explanations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import statemachine
from statemachine import StateMachine
from statemachine.exceptions import TransitionNotAllowed
from statemachine.factory import StateMachineMetaclass

if TYPE_CHECKING:
    from statemachine.event import Event
    from statemachine.event_data import TriggerData
    from statemachine.transition import Transition

__all__ = [
    "PSM_VERSION",
    "HookedStateMachine",
    "StateMachineMetaclass",
    "engine_running",
    "guard_calls",
    "set_engine_running",
]

PSM_VERSION = "3.2.2"
"""The python-statemachine release whose internals this module was written against."""

INSTALLED_VERSION: str = statemachine.__version__
"""The installed release (``tests/test_engine_hooks.py`` checks it is ``3.2.x``)."""


class HookedStateMachine(StateMachine):
    """A ``StateMachine`` whose engine entry points call lifecyclekit's hooks.

    Every way of sending an event (``m.<event>(...)``, ``send``, ``raise_``) reaches
    ``_put_nonblocking`` before the event is queued, then ``_processing_loop``. Here the
    first asks :meth:`_admit_event` (which may validate the data or drop the event), and a
    refusal of the caller's own event is turned into :meth:`_refusal`'s exception; a refusal
    of an event queued from a callback stays psm's plain ``TransitionNotAllowed``.
    """

    _pending: TriggerData | None = None

    def _admit_event(
        self, event_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The arguments the event is queued with, or ``None`` to drop it unqueued."""
        return args, kwargs

    def _refusal(self, event: Event | None, kwargs: dict[str, Any]) -> Exception:
        """The exception raised for a refused event (psm's own, by default)."""
        return TransitionNotAllowed(event, self.configuration)

    def _is_refusal(self, error: Exception) -> bool:
        """Whether ``error`` already is one of :meth:`_refusal`'s exceptions."""
        return False

    def _put_nonblocking(self, trigger_data: TriggerData, internal: bool = False) -> None:
        event = trigger_data.event
        if event is not None:
            admitted = self._admit_event(event.id, trigger_data.args, trigger_data.kwargs)
            if admitted is None:
                return  # nothing queued: the caller's processing loop finds nothing to do.
            trigger_data.args, trigger_data.kwargs = admitted
        if self._pending is None:
            self._pending = trigger_data
        try:
            super()._put_nonblocking(trigger_data, internal=internal)
        except TransitionNotAllowed:
            # The engine stopped in a final state and refuses before selecting transitions.
            self._pending = None
            raise self._refusal(event, trigger_data.kwargs) from None

    def _processing_loop(self, caller_future: Any = None) -> Any:
        pending = self._pending
        try:
            return super()._processing_loop(caller_future)
        except TransitionNotAllowed as err:
            if self._is_refusal(err) or pending is None:
                raise
            if err.event is not pending.event:
                raise
            raise self._refusal(pending.event, pending.kwargs) from None
        finally:
            if pending is self._pending:
                self._pending = None


def engine_running(machine: StateMachine) -> bool:
    """Whether the machine's engine still accepts events (``False`` once a top-level final
    state was entered)."""
    return bool(machine._engine.running)


def set_engine_running(machine: StateMachine, running: bool) -> None:
    """Set the engine's ``running`` flag (after rolling a final state back, say)."""
    machine._engine.running = running


def guard_calls(
    machine: StateMachine, transition: Transition
) -> list[tuple[str, bool, Callable[..., Any]]]:
    """The guards of ``transition`` as resolved for ``machine``: ``(name, expected value,
    callable)`` in evaluation order.

    The callable is the wrapper's resolved callable, not the wrapper itself (whose ``call``
    reduces the answer to a bool), so a :class:`~lifecyclekit.Because` keeps its reason.
    """
    key = transition.cond.key
    if key not in machine._callbacks:
        return []
    return [
        (str(guard.meta.attr_name), guard.meta.expected_value is not False, guard._callback)
        for guard in machine._callbacks[key]
    ]
