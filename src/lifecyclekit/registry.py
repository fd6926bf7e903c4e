"""Lifecycles by stable kebab-case name.

Names are explicit (``@registry.register("dataflow-job")``), never found by scanning
modules. Lifecycles of other distributions, and lifecyclekit's own built-ins, are found
through the entry-point group ``lifecyclekit.machines``::

    [project.entry-points."lifecyclekit.machines"]
    billing-run = "billing.lifecycles:BillingRun"

Entry points are listed by :meth:`Registry.names` without importing them, and loaded on
first use. An application's own lifecycles, registered in its modules, are known once those
modules are imported: :func:`import_apps` imports them by name or path (what the command's
``--app`` option and ``LIFECYCLEKIT_APP`` do, as Flask's and Celery's do). This registry is
separate from python-statemachine's ``module.Class`` one.
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from lifecyclekit.errors import AppImportError, DefinitionError, SnapshotError, UnknownLifecycle
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.snapshot import Snapshot, coerce_snapshot

__all__ = ["APP_ENV", "ENTRY_POINT_GROUP", "RESERVED_NAMES", "Registry", "import_apps", "registry"]

ENTRY_POINT_GROUP = "lifecyclekit.machines"

APP_ENV = "LIFECYCLEKIT_APP"
"""The environment variable naming application modules to import (comma-separated)."""

_HOW_TO_ADD = (
    "To add one: register it with @registry.register(name) in a module of your application "
    "and import that module (on the command line: lifecyclekit --app MODULE ..., or "
    f"{APP_ENV}=MODULE), or publish it from a distribution in the entry-point group "
    f"{ENTRY_POINT_GROUP!r}."
)

RESERVED_NAMES = frozenset(
    {"dataflow-job", "dataflow-job-observed", "one-time-work", "periodic-work", "chained-work"}
)
"""Names kept for lifecyclekit's built-in lifecycles (``lifecyclekit.machines``)."""

_BUILTIN_PACKAGE = "lifecyclekit.machines"
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

L = TypeVar("L", bound=type[Lifecycle])


class Registry:
    """A mapping of kebab-case names to lifecycle classes.

    Args:
        discover: also consult the ``lifecyclekit.machines`` entry points (default ``True``).
        entry_point_loader: returns the entry points to consult (tests inject their own).
    """

    def __init__(
        self,
        *,
        discover: bool = True,
        entry_point_loader: Callable[[], Iterable[EntryPoint]] | None = None,
    ) -> None:
        self._classes: dict[str, type[Lifecycle]] = {}
        self._discover = discover
        self._loader = entry_point_loader or (lambda: entry_points(group=ENTRY_POINT_GROUP))

    def _entry_points(self) -> dict[str, EntryPoint]:
        if not self._discover:
            return {}
        return {ep.name: ep for ep in self._loader()}

    def register(self, name: str) -> Callable[[L], L]:
        """Class decorator: register a lifecycle under ``name``.

        Raises:
            DefinitionError: the name is not kebab-case, is taken by another class, is
                reserved for a built-in lifecycle, or the class is not a ``Lifecycle``.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            msg = (
                f"Lifecycle name {name!r} is not kebab-case; use lowercase words joined by "
                "hyphens, like 'billing-run'."
            )
            raise DefinitionError(msg)

        def decorate(cls: L) -> L:
            self._add(name, cls)
            return cls

        return decorate

    def _add(self, name: str, cls: type[Lifecycle]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Lifecycle)):
            msg = f"registry.register({name!r}) decorates Lifecycle subclasses, not {cls!r}."
            raise DefinitionError(msg)
        if name in RESERVED_NAMES and not cls.__module__.startswith(_BUILTIN_PACKAGE):
            msg = (
                f"Lifecycle name {name!r} is reserved for lifecyclekit's built-in lifecycle; "
                f"register {cls.__name__} under a name of your own, or subclass the built-in."
            )
            raise DefinitionError(msg)
        existing = self._classes.get(name)
        if existing is not None and existing is not cls:
            msg = (
                f"Lifecycle name {name!r} is already registered to "
                f"{existing.__module__}.{existing.__qualname__}; choose another name for "
                f"{cls.__module__}.{cls.__qualname__}."
            )
            raise DefinitionError(msg)
        self._classes[name] = cls
        if cls.lifecycle_name is None:
            cls.lifecycle_name = name

    def names(self) -> list[str]:
        """Every registered or discoverable name, sorted (entry points are not imported)."""
        return sorted(set(self._classes) | set(self._entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def get(self, name: str) -> type[Lifecycle]:
        """The lifecycle class registered under ``name``, loading its entry point if needed.

        Raises:
            UnknownLifecycle: no such name; the message lists the known names and the
                closest match.
            DefinitionError: the entry point does not load a ``Lifecycle`` subclass.
        """
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        entry = self._entry_points().get(name)
        if entry is None:
            raise self._unknown(name)
        loaded = entry.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Lifecycle)):
            msg = (
                f"Entry point {name!r} ({entry.value}) in group {ENTRY_POINT_GROUP!r} loads "
                f"{loaded!r}, which is not a Lifecycle subclass."
            )
            raise DefinitionError(msg)
        registered = self._classes.get(name)
        if registered is None:
            self._add(name, loaded)
        elif registered is not loaded:
            msg = (
                f"Entry point {name!r} loads {loaded.__qualname__}, but importing it registered "
                f"{registered.__qualname__} under that name."
            )
            raise DefinitionError(msg)
        return loaded

    def _unknown(self, name: str) -> UnknownLifecycle:
        known = self.names()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else _HOW_TO_ADD
        if name in RESERVED_NAMES:
            hint = (
                f"{name!r} is reserved for a lifecyclekit built-in that this installation "
                "does not provide."
            )
        return UnknownLifecycle(str(name), known, hint=hint)

    def create(
        self,
        name: str,
        /,
        *,
        clock: Clock | None = None,
        listeners: Iterable[object] | None = None,
        context: BaseModel | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Lifecycle:
        """A new instance of the lifecycle ``name``, in its initial state.

        Args:
            name: the registry name (positional only, so a context field may be called
                ``name``).
            clock: the instance's clock.
            listeners: python-statemachine listeners.
            context: the context as a model instance or a mapping (for field names that are
                also parameters here, such as ``clock``).
            **fields: context fields. Nothing here reaches the constructor's own parameters:
                ``start_value=...`` is an unknown context field, not a starting state.

        Raises:
            UnknownLifecycle: no such name.
            PayloadError: the context does not validate.
        """
        cls = self.get(name)
        built = cls.build_context(context, **fields)
        return cls(clock=clock, listeners=listeners, context=built)

    def restore(
        self,
        snapshot: Snapshot | Mapping[str, Any] | str | bytes,
        *,
        clock: Clock | None = None,
        listeners: Iterable[object] | None = None,
    ) -> Lifecycle:
        """Rebuild an instance from a snapshot of any registered lifecycle.

        Raises:
            SnapshotError: the snapshot is malformed, names no registered lifecycle, or
                does not fit it (see :meth:`Lifecycle.restore`).
        """
        snap = coerce_snapshot(snapshot)
        try:
            cls = self.get(snap.machine)
        except UnknownLifecycle as err:
            msg = f"Cannot restore the snapshot: {err}"
            raise SnapshotError(msg) from None
        return cls.restore(snap, clock=clock, listeners=listeners)


registry = Registry()
"""The process-wide registry: ``registry.get("dataflow-job")``."""


def import_apps(modules: str | Iterable[str]) -> list[str]:
    """Import an application's modules so the lifecycles they register are known.

    Each entry is a module name (``shop`` or ``shop.lifecycles``, found from the working
    directory first, as ``python -m`` would) or a path to a ``.py`` file; a string may hold
    several, comma-separated (the form of ``LIFECYCLEKIT_APP``).

    Returns:
        The names of the modules imported, in order.

    Raises:
        AppImportError: a module cannot be found, or raised while importing (the message
            names the module and shows the error, with the line of the application's code).
    """
    names = [modules] if isinstance(modules, str) else list(modules)
    wanted = [part.strip() for entry in names for part in entry.split(",") if part.strip()]
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    return [_import_app(entry) for entry in wanted]


def _import_app(entry: str) -> str:
    module = entry
    if entry.endswith(".py") or "/" in entry:
        path = Path(entry).resolve()
        if not path.is_file():
            msg = f"Cannot import application module {entry!r}: no such file {str(path)!r}."
            raise AppImportError(msg)
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        module = path.stem
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise _app_error(entry, exc) from None
        msg = (
            f"Cannot import application module {entry!r}: no module named {exc.name!r} "
            f"(searched from {str(Path.cwd())!r}). Give a module name importable from the "
            f"working directory (--app shop) or a file path (--app ./shop.py)."
        )
        raise AppImportError(msg) from None
    except Exception as exc:  # noqa: BLE001 - the application's own error, reported in one line
        raise _app_error(entry, exc) from None
    except SystemExit as exc:  # sys.exit() at import time must not end the caller silently
        msg = (
            f"Importing application module {entry!r} failed{_where(exc)}: it called "
            f"sys.exit({exc.code!r}). An application module should only define and register "
            "lifecycles when imported; keep exits under `if __name__ == '__main__':`."
        )
        raise AppImportError(msg) from None
    return module


def _where(exc: BaseException) -> str:
    """`` at file:line`` of the application's code that raised ``exc``: a SyntaxError's own
    position, else the innermost frame outside lifecyclekit and the import machinery."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" at {exc.filename}:{exc.lineno}"
    ours = str(Path(__file__).resolve().parent)
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen ")
        and not str(Path(frame.filename).resolve()).startswith(ours)
    ]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _app_error(entry: str, exc: BaseException) -> AppImportError:
    detail = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    name = type(exc).__name__
    msg = f"Importing application module {entry!r} failed{_where(exc)}: {name}: {detail}"
    return AppImportError(msg)
