"""Checks of the arguments callers pass to the store's public API: each bad one is a
:class:`~lifecyclekit.errors.StoreError` saying what was given, what is valid and how to fix
it, raised before anything is opened or written."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from lifecyclekit.errors import StoreError
from lifecyclekit.registry import Registry
from lifecyclekit.store._model import shown

__all__ = ["check_callback", "check_open", "check_seconds"]


def check_seconds(what: str, value: Any, *, allow_none: bool, allow_zero: bool) -> float | None:
    """``value`` as seconds: a finite number (> 0, or >= 0 with ``allow_zero``), or None."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and math.isfinite(value) and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    low = ">= 0" if allow_zero else "> 0"
    forever = " or None (for ever)" if allow_none else ""
    msg = f"{what} takes a finite number of seconds {low}{forever}, got {shown(value)}."
    raise StoreError(msg)


def check_open(
    *,
    registry: Any,
    clock: Any,
    retry: Any,
    key_retention: Any,
    extensions: Any,
    create: Any,
    pool_size: Any,
    timeout: Any,
    opener: str = "open_store",
) -> None:
    """The options of ``open_store`` (or of ``opener``, named in the message)."""
    from lifecyclekit.store._core import RetryPolicy
    from lifecyclekit.store._schema import Extension

    problems: list[str] = []
    if registry is not None and not isinstance(registry, Registry):
        problems.append(f"registry= takes a lifecyclekit.Registry or None, not {shown(registry)}")
    if clock is not None and not callable(clock):
        problems.append(
            f"clock= takes a callable returning an aware datetime, or None, not {shown(clock)}"
        )
    if retry is not None and not isinstance(retry, RetryPolicy):
        problems.append(f"retry= takes a RetryPolicy(...) or None, not {shown(retry)}")
    if key_retention is not None and (
        not isinstance(key_retention, timedelta) or key_retention < timedelta(0)
    ):
        problems.append(
            "key_retention= takes a timedelta >= 0 (like timedelta(days=7)) or None (for "
            f"ever), not {shown(key_retention)}"
        )
    if not isinstance(extensions, Sequence) or not all(
        isinstance(e, Extension) for e in extensions
    ):
        problems.append(f"extensions= takes a sequence of Extension, not {shown(extensions)}")
    if not isinstance(create, bool):
        problems.append(f"create= takes True or False, not {shown(create)}")
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 1 <= pool_size:
        problems.append(f"pool_size= takes an int >= 1, not {shown(pool_size)}")
    try:
        check_seconds("timeout=", timeout, allow_none=False, allow_zero=False)
    except StoreError as exc:
        problems.append(str(exc).rstrip("."))
    if problems:
        msg = f"{opener}(): {'; '.join(problems)}."
        raise StoreError(msg)


def check_callback(callback: Any) -> Callable[..., object]:
    """A callable for ``on_commit``."""
    if not callable(callback):
        msg = (
            f"on_commit() takes a callable called with each committed Change, not "
            f"{shown(callback)}; use it as @store.on_commit on a function."
        )
        raise StoreError(msg)
    return callback  # type: ignore[no-any-return]
