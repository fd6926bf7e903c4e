"""The store's own tables and the coordinators' extension tables: created once, versioned.

Steps in the style of :mod:`lifecyclekit.store._core` (they yield statements and hold no
I/O), run in a schema transaction, which a back-end serialises between processes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lifecyclekit.errors import StoreError
from lifecyclekit.store._core import SCHEMA_VERSION
from lifecyclekit.store._model import Statement, Step, shown
from lifecyclekit.store._rows import CONFIGURATIONS_DDL

__all__ = [
    "Extension",
    "check_scope",
    "check_version",
    "create_extension",
    "create_store",
    "execute",
    "pending",
    "probe",
    "query",
    "setup",
]

_STORE_TABLES = frozenset(
    {"meta", "instances", "history", "keys", "changes", "consumers", "extensions"}
)
_EXTENSION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_TABLE = re.compile(r"\blk_[A-Za-z0-9_]+", re.IGNORECASE)


@dataclass(frozen=True)
class Extension:
    """Tables of a coordinator's own, versioned, created once per database.

    An extension named ``graph`` owns the tables ``lk_graph`` and ``lk_graph_*``; its SQL may
    touch no other lifecyclekit table. Declare it with :meth:`Store.extension` (or
    ``open_store(..., extensions=[...])``): the first process to need it creates the tables,
    serialised with every other, and later versions run their ``upgrades``.

    Args:
        name: lowercase letters, digits and ``_``; not one of the store's own tables.
        version: the schema version ``statements`` create (from 1).
        statements: portable DDL (``CREATE TABLE IF NOT EXISTS ...``) creating the latest
            schema from nothing.
        upgrades: ``{n: statements}`` taking the tables from version ``n - 1`` to ``n``.

    Example::

        GRAPH = Extension("graph", 1, ("CREATE TABLE IF NOT EXISTS lk_graph (...)",))
    """

    name: str
    version: int
    statements: tuple[str, ...]
    upgrades: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _EXTENSION_NAME.match(self.name):
            msg = (
                f"Extension name {self.name!r} is not valid; use lowercase letters, digits "
                "and _ (at most 31), like 'graph'."
            )
            raise StoreError(msg)
        if self.name in _STORE_TABLES:
            msg = f"Extension name {self.name!r} is the store's own; choose another."
            raise StoreError(msg)
        if not isinstance(self.version, int) or self.version < 1:
            msg = f"Extension {self.name!r}: version must be an int >= 1, got {self.version!r}."
            raise StoreError(msg)
        for sql in (*self.statements, *(s for ss in self.upgrades.values() for s in ss)):
            check_scope(self.name, sql)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.statements))


@lru_cache(maxsize=1024)
def check_scope(name: str, sql: str) -> None:
    """Refuse SQL of extension ``name`` that names another lifecyclekit table."""
    own = f"lk_{name}"
    for table in _TABLE.findall(sql):
        table = table.lower()
        if table != own and not table.startswith(own + "_"):
            msg = (
                f"Extension {name!r} may use only its own tables ({own}, {own}_*), but its "
                f"SQL names {table}: {shown(sql)}"
            )
            raise StoreError(msg)


def check_version(rows: Sequence[tuple[Any, ...]], url: str) -> None:
    """The store schema recorded in ``lk_meta`` (``rows``) is the one this code reads.

    Raises:
        StoreError: unreadable, newer, or written by a development version.
    """
    if not rows:
        return
    raw = rows[0][0]
    try:
        version = int(raw)
    except (TypeError, ValueError):
        msg = f"The store {url} has unreadable metadata: schema_version = {shown(raw)}."
        raise StoreError(msg) from None
    if version > SCHEMA_VERSION:
        msg = (
            f"The store {url} was written by a newer lifecyclekit (store schema "
            f"{version}; this version reads schema {SCHEMA_VERSION}). Upgrade lifecyclekit."
        )
        raise StoreError(msg)
    if version < SCHEMA_VERSION:
        msg = (
            f"The store {url} has store schema {version}, written by a development "
            f"version of lifecyclekit; this version reads schema {SCHEMA_VERSION}. "
            "Create a new store."
        )
        raise StoreError(msg)


META_SQL = "SELECT value FROM lk_meta WHERE key = 'schema_version'"


def probe(url: str) -> Step[bool]:
    """Whether the store's tables exist (a newer or unreadable schema is an error)."""
    rows = yield Statement(META_SQL)
    check_version(rows.rows, url)
    return bool(rows.rows)


def add_configurations() -> Step[None]:
    """Create the statecharts' table in a store from before it existed (idempotent)."""
    yield Statement(CONFIGURATIONS_DDL)


def query(name: str, sql: str, params: Sequence[Any]) -> Step[list[tuple[Any, ...]]]:
    """The rows of extension ``name``'s statement (refused if it names another table)."""
    check_scope(name, sql)
    rows = yield Statement(sql, tuple(params))
    return list(rows.rows)


def execute(name: str, sql: str, params: Sequence[Any]) -> Step[int]:
    """Run extension ``name``'s write; the number of rows it changed."""
    check_scope(name, sql)
    rows = yield Statement(sql, tuple(params))
    return int(rows.rowcount)


def create_store(ddl: Sequence[str], url: str) -> Step[None]:
    """Create the store's tables (``ddl[0]`` is ``lk_meta``) unless they exist."""
    yield Statement(ddl[0])
    rows = yield Statement(META_SQL)
    check_version(rows.rows, url)
    yield Statement(CONFIGURATIONS_DDL)
    if rows.rows:
        return
    for statement in ddl[1:]:
        yield Statement(statement)
    yield Statement(
        "INSERT INTO lk_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
    )


def create_extension(ext: Extension, url: str) -> Step[None]:
    """Create ``ext``'s tables, or upgrade them to its version.

    Raises:
        StoreError: the stored tables are newer, or an upgrade step is missing.
    """
    rows = yield Statement("SELECT version FROM lk_extensions WHERE name = ?", (ext.name,))
    if not rows.rows:
        for statement in ext.statements:
            yield Statement(statement)
        yield Statement(
            "INSERT INTO lk_extensions (name, version) VALUES (?, ?)", (ext.name, ext.version)
        )
        return
    stored = rows.rows[0][0]
    if not isinstance(stored, int) or stored > ext.version:
        msg = (
            f"Extension {ext.name!r} in {url} is at version {shown(stored)}, newer "
            f"than this code's {ext.version}; upgrade the code that declares it."
        )
        raise StoreError(msg)
    for version in range(stored + 1, ext.version + 1):
        if version not in ext.upgrades:
            msg = (
                f"Extension {ext.name!r} in {url} is at version {stored}; this code "
                f"is at {ext.version} but declares no upgrade to {version}."
            )
            raise StoreError(msg)
        for statement in ext.upgrades[version]:
            yield Statement(statement)
    if stored != ext.version:
        yield Statement(
            "UPDATE lk_extensions SET version = ? WHERE name = ?", (ext.version, ext.name)
        )


def pending(extensions: Sequence[Extension], known: Mapping[str, Extension]) -> list[Extension]:
    """The ``extensions`` a store that has set up ``known`` still has to create.

    Raises:
        StoreError: one is declared at two versions.
    """
    todo = [e for e in extensions if known.get(e.name) != e]
    for ext in todo:
        other = known.get(ext.name)
        if other is not None:
            msg = (
                f"Extension {ext.name!r} is declared twice, at versions {other.version} "
                f"and {ext.version}."
            )
            raise StoreError(msg)
    return todo


def setup(
    ddl: Sequence[str], ready: bool, extensions: Sequence[Extension], url: str
) -> Step[None]:
    """In one schema transaction: the store's tables (unless ``ready``), then each of
    ``extensions``."""
    if not ready:
        yield from create_store(ddl, url)
    for ext in extensions:
        yield from create_extension(ext, url)
