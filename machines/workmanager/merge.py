"""WorkManager's input mergers (spec §5.4, [merge]).

Inputs arrive as ``[own input, output of each direct prerequisite...]``.
``OverwritingInputMerger`` puts them in order, later keys winning (a parent's output overrides
the work's own input). ``ArrayCreatingInputMerger`` turns every key into an array: a new key's
primitive becomes a one-element array; a repeated key concatenates values of the same type; a
value of another type is an error (WorkManager's ``IllegalArgumentException``). ``None`` counts
as a string.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["merge_inputs"]


def _kind(value: Any) -> type | None:
    items = value if isinstance(value, list) else [value]
    kinds = {str if item is None else type(item) for item in items}
    return kinds.pop() if kinds else None  # an empty array matches any type


def merge_inputs(
    merger: Literal["overwriting", "array"], inputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """Merge ``inputs`` as the named WorkManager merger does.

    Raises:
        ValueError: (array merger) a key holds values of different types.
    """
    if merger == "overwriting":
        merged: dict[str, Any] = {}
        for data in inputs:
            merged.update(data)
        return merged
    arrays: dict[str, list[Any]] = {}
    kinds: dict[str, type | None] = {}
    for data in inputs:
        for key, value in data.items():
            items = list(value) if isinstance(value, list) else [value]
            kind = _kind(value)
            if key not in arrays:
                arrays[key], kinds[key] = items, kind
                continue
            if kind is not None and kinds[key] is not None and kind is not kinds[key]:
                known = kinds[key].__name__  # type: ignore[union-attr]
                msg = (
                    f"ArrayCreatingInputMerger: key {key!r} holds {known} values and "
                    f"{kind.__name__} values; the types don't match"
                )
                raise ValueError(msg)
            arrays[key] = arrays[key] + items
            kinds[key] = kinds[key] or kind
    return arrays
