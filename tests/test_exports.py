"""The façade's export list is pinned, sorted and complete."""

from __future__ import annotations

import lifecyclekit


def test_all_is_sorted_and_matches_public_names() -> None:
    """__all__ lists exactly the public names of the package, in sorted order."""
    public = {
        name
        for name in vars(lifecyclekit)
        if not name.startswith("_")
        and not isinstance(getattr(lifecyclekit, name), type(lifecyclekit))
        and name != "annotations"
    }
    assert lifecyclekit.__all__ == sorted(lifecyclekit.__all__)
    assert set(lifecyclekit.__all__) == public


def test_pinned_export_list() -> None:
    """Changing the public surface is a deliberate act: update this list and the changelog."""
    assert lifecyclekit.__all__ == [
        "AppImportError",
        "AsyncRequired",
        "Because",
        "Candidate",
        "Clock",
        "DefinitionError",
        "DiagramError",
        "Event",
        "Explanation",
        "GuardRef",
        "GuardVerdict",
        "HistoryState",
        "Lifecycle",
        "LifecycleError",
        "MissingDependency",
        "PayloadError",
        "Provenance",
        "Registry",
        "Snapshot",
        "SnapshotError",
        "State",
        "StoreError",
        "TransitionInfo",
        "TransitionNotAllowed",
        "TransitionRecord",
        "TransitionRejected",
        "UnknownInstance",
        "UnknownLifecycle",
        "WriteConflict",
        "registry",
        "utc_now",
    ]
