"""The error tree: one root, the documented parents, pickle-safe refusals."""

from __future__ import annotations

import pickle

import pytest
from statemachine.exceptions import InvalidDefinition, TransitionNotAllowed

import lifecyclekit.errors as errors_module
from lifecyclekit import (
    DefinitionError,
    LifecycleError,
    PayloadError,
    SnapshotError,
    StoreError,
    TransitionRejected,
    UnknownInstance,
    UnknownLifecycle,
    WriteConflict,
)
from tests.sample_machines import Ticket


@pytest.mark.parametrize(
    ("error", "parents"),
    [
        (DefinitionError, (LifecycleError, InvalidDefinition)),
        (UnknownLifecycle, (LifecycleError, LookupError)),
        (PayloadError, (LifecycleError, ValueError)),
        (SnapshotError, (LifecycleError, ValueError)),
        (TransitionRejected, (LifecycleError, TransitionNotAllowed)),
        (StoreError, (LifecycleError,)),
        (UnknownInstance, (StoreError, LookupError)),
        (WriteConflict, (StoreError,)),
    ],
)
def test_error_parents(error: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    """Each error is catchable as lifecyclekit's root and as the documented standard parent."""
    assert all(issubclass(error, parent) for parent in parents)


def test_tree_is_drawn_in_the_module_docstring() -> None:
    """Every public error appears in the drawn tree."""
    doc = errors_module.__doc__ or ""
    for name in errors_module.__all__:
        assert name in doc


def test_transition_rejected_pickles() -> None:
    """A refusal survives pickling (multiprocessing workers re-raise it in the parent)."""
    ticket = Ticket(ticket_id="t", capacity=0)
    with pytest.raises(TransitionRejected) as info:
        ticket.start()
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)
    assert copy.reasons == info.value.reasons
