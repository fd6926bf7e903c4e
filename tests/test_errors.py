"""The error tree: one root, the documented parents, pickle-safe refusals."""

from __future__ import annotations

import pickle

import pytest
from statemachine.exceptions import InvalidDefinition, TransitionNotAllowed

import lifecyclekit.errors as errors_module
from lifecyclekit import (
    AppImportError,
    DefinitionError,
    DiagramError,
    LifecycleError,
    MissingDependency,
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
        (MissingDependency, (LifecycleError, ImportError)),
        (DiagramError, (LifecycleError,)),
        (AppImportError, (LifecycleError, ImportError)),
    ],
)
def test_error_parents(error: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    """Each error is catchable as lifecyclekit's root and as the documented standard parent."""
    assert all(issubclass(error, parent) for parent in parents)


def test_tree_is_drawn_in_the_module_docstring() -> None:
    """Every public error class appears in the drawn tree."""
    doc = errors_module.__doc__ or ""
    classes = [
        name for name in errors_module.__all__ if isinstance(getattr(errors_module, name), type)
    ]
    assert len(classes) >= 11
    for name in classes:
        assert name in doc


def test_transition_rejected_pickles() -> None:
    """A refusal survives pickling (multiprocessing workers re-raise it in the parent)."""
    ticket = Ticket(ticket_id="t", capacity=0)
    with pytest.raises(TransitionRejected) as info:
        ticket.start()
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)
    assert copy.reasons == info.value.reasons


def test_optional_import_names_the_extra() -> None:
    """A missing optional module is a MissingDependency (an ImportError) quoting the fix."""
    with pytest.raises(MissingDependency) as info:
        errors_module.optional_import(
            "lifecyclekit_no_such_module", extra="postgres", feature="PostgreSQL stores"
        )
    assert str(info.value) == (
        "PostgreSQL stores: lifecyclekit_no_such_module is not installed; "
        "pip install 'lifecyclekit[postgres]'"
    )
    assert (info.value.module, info.value.extra) == ("lifecyclekit_no_such_module", "postgres")
    assert errors_module.optional_import("json", extra="x", feature="y").__name__ == "json"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "'short'"),
        ("x" * 5000, "a str of 5,000 characters"),
        (b"y" * 100, "a bytes of 100 bytes"),
        (list(range(100)), "a list of 100 items"),
        (10**200, "a value of type int whose repr is 201 characters"),
    ],
)
def test_an_oversize_value_is_described_not_echoed(value: object, expected: str) -> None:
    """Messages show short values and describe long ones by type and size."""
    error = PayloadError("Ticket", "finish", [("outcome", "bad", value)])
    assert f"(got {expected})" in str(error)
    assert len(str(error)) < 200
