"""Durable lifecycles: one concrete :class:`Store` over SQLite (embedded) or PostgreSQL.

``open_store(url)`` picks the back-end from the URL:

- ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (percent-escapes
  decoded; ``?synchronous=normal`` to trade the last commits on power loss for speed);
- ``sqlite:///:memory:`` (private to the store object);
- ``postgresql://user:password@host:port/db`` (``pip install 'lifecyclekit[postgres]'``).

Opening creates nothing unless asked (``create=True``): the tables appear with the first
write (``create``, a unit of work, an extension), so reading a store that is not there is
:class:`NoSuchStore`, and a typo in a URL never leaves an empty database behind.

The store::

    store = open_store("sqlite:///jobs.db")
    store.create("dataflow-job", id="orders", context={"job_name": "orders"})
    result = store.send("orders", "observe", "JOB_STATE_RUNNING", actor="poller")
    result.state, result.records        # the state after, the records this send added
    store.history("orders", after=0, limit=50)
    store.find("dataflow-job", state="running", where={"job_name": "orders"})

Effects once per committed transition: a lifecycle's ``after_commit(record)``,
``store.on_commit(callback)``, and the change feed (``store.changes(after=...)``,
``store.watch(...)``, ``store.consumer(name)``).

The unit of work, for coordinators that change several instances and their own tables in
one transaction (the stored ``WorkGraph``)::

    GRAPH = Extension("graph", 1, (
        "CREATE TABLE IF NOT EXISTS lk_graph (graph TEXT PRIMARY KEY, version INTEGER)",
    ))
    store.extension(GRAPH)                   # created once, safely, by whoever comes first

    def enqueue(uow: UnitOfWork) -> int:
        work = uow.load("w1")                # live instance; its row version is remembered
        work.cancel()
        uow.save("w1", work)                 # compare-and-set; its records go to the feed
        uow.add("w2", OneTimeWork(worker="Next"))
        graph = uow.extension(GRAPH)         # SQL on the extension's own tables only
        graph.execute("UPDATE lk_graph SET version = version + 1 WHERE graph = ?", ("g",))
        (version,) = graph.query_one("SELECT version FROM lk_graph WHERE graph = ?", ("g",))
        uow.after_commit(lambda: print("committed"))   # never for an attempt that lost
        return version

    store.run(enqueue)    # one transaction; re-run from the start when another writer won

``store.run`` re-runs the whole function under the store's :class:`RetryPolicy` (also
``send``'s), so the function may run more than once: mutate objects the caller sees in
``uow.after_commit``. ``store.unit_of_work()`` is the same as a context manager, one attempt
(a lost race raises :class:`WriteConflict`). ``uow.version(id)`` is the row version an
instance was loaded at; ``uow.remove(id)`` deletes one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from lifecyclekit.errors import (
    AfterCommitError,
    ConnectionLost,
    IdempotencyConflict,
    NoSuchStore,
    OutcomeUnknown,
    StoreError,
    UnknownInstance,
    WriteConflict,
)
from lifecyclekit.lifecycle import Clock
from lifecyclekit.registry import Registry
from lifecyclekit.store import _core as core
from lifecyclekit.store._astore import AsyncStore
from lifecyclekit.store._auow import AsyncConsumer, AsyncExtensionSQL, AsyncUnitOfWork, Watch
from lifecyclekit.store._backend import AsyncBackend, Backend, BackendError
from lifecyclekit.store._checks import check_open
from lifecyclekit.store._core import SCHEMA_VERSION, RetryPolicy
from lifecyclekit.store._model import (
    Change,
    InstanceSummary,
    Page,
    SendResult,
    Skipped,
)
from lifecyclekit.store._store import (
    Consumer,
    Extension,
    ExtensionSQL,
    Store,
    UnitOfWork,
)

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "AfterCommitError",
    "AsyncConsumer",
    "AsyncExtensionSQL",
    "AsyncStore",
    "AsyncUnitOfWork",
    "Change",
    "ConnectionLost",
    "Consumer",
    "Extension",
    "ExtensionSQL",
    "IdempotencyConflict",
    "InstanceSummary",
    "NoSuchStore",
    "OutcomeUnknown",
    "Page",
    "RetryPolicy",
    "SendResult",
    "Skipped",
    "Store",
    "StoreError",
    "UnitOfWork",
    "UnknownInstance",
    "Watch",
    "WriteConflict",
    "display_url",
    "open_async_store",
    "open_store",
]

DEFAULT_URL = "sqlite:///lifecyclekit.db"

_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:, "
    "postgresql://user:password@host:port/dbname"
)


def display_url(url: str) -> str:
    """``url`` as it may appear in messages: any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None and "password" not in parts.query:
            return url
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        query = "&".join(
            "password=***" if item.startswith("password=") else item
            for item in parts.query.split("&")
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<an unparsable URL>"


def _refuse(url: str, problem: str) -> StoreError:
    return StoreError(f"Store URL {display_url(url)!r} {problem}; accepted forms: {_FORMS}.")


def open_store(
    url: str = DEFAULT_URL,
    *,
    registry: Registry | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    key_retention: timedelta | None = timedelta(days=7),
    extensions: Sequence[Extension] = (),
    create: bool = False,
    pool_size: int = 10,
    timeout: float = 10.0,
) -> Store:
    """Open the store at ``url`` (see the module docstring for the URL forms).

    Args:
        url: where the store is.
        registry: resolves lifecycle names (default: the process-wide registry).
        clock: the store's clock and the default clock of the instances it loads.
        retry: the retry policy of every operation (default: :class:`RetryPolicy`).
        key_retention: how long idempotency keys are remembered (``None``: for ever).
        extensions: extension tables to create with the store.
        create: create the store's tables now rather than at the first write.
        pool_size: PostgreSQL: the most pooled connections.
        timeout: PostgreSQL: seconds to wait for a connection.

    Raises:
        StoreError: a malformed URL or option, or a store of another schema version.
        NoSuchStore: a PostgreSQL database that does not exist.
        ConnectionLost: the server cannot be reached.
        MissingDependency: PostgreSQL without ``lifecyclekit[postgres]`` installed.
    """
    target = _target("open_store", url)
    check_open(
        registry=registry, clock=clock, retry=retry, key_retention=key_retention,
        extensions=extensions, create=create, pool_size=pool_size, timeout=timeout,
    )  # fmt: skip
    backend: Backend
    if target[0] == "sqlite":
        backend = target[1]
    else:
        from lifecyclekit.store.postgres import PostgresBackend

        try:
            backend = PostgresBackend(
                target[1], target[2], secrets=target[3], pool_size=pool_size, timeout=timeout
            )
        except BackendError as exc:
            raise core.public_error(exc, display_url(url), "open the store") from None
    store = Store(
        backend,
        registry=registry,
        clock=clock,
        retry=retry,
        key_retention=key_retention,
        extensions=extensions,
    )
    if create:
        try:
            store._ensure()
        except BaseException:
            store.close()
            raise
    return store


def open_async_store(
    url: str = DEFAULT_URL,
    *,
    registry: Registry | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    key_retention: timedelta | None = timedelta(days=7),
    extensions: Sequence[Extension] = (),
    create: bool = False,
    pool_size: int = 10,
    timeout: float = 10.0,
) -> AsyncStore:
    """The store at ``url`` for asyncio code, with the options and semantics of
    :func:`open_store`; ``await`` it, or use ``async with``, to connect::

        async with open_async_store("postgresql://app@db/jobs") as store:
            result = await store.send("orders", "observe", "JOB_STATE_RUNNING")

    PostgreSQL runs on psycopg's ``AsyncConnection`` and ``AsyncConnectionPool``; SQLite on
    the embedded back-end in worker threads (see :mod:`lifecyclekit.store.sqlite`).

    Raises:
        StoreError: a malformed URL or option (at once); when connecting, as
            :func:`open_store`.
        MissingDependency: PostgreSQL without ``lifecyclekit[postgres]`` installed.
    """
    target = _target("open_async_store", url)
    check_open(
        registry=registry, clock=clock, retry=retry, key_retention=key_retention,
        extensions=extensions, create=create, pool_size=pool_size, timeout=timeout,
        opener="open_async_store",
    )  # fmt: skip
    backend: AsyncBackend
    if target[0] == "sqlite":
        from lifecyclekit.store.sqlite import AsyncSQLiteBackend

        backend = AsyncSQLiteBackend(target[1])
    else:
        from lifecyclekit.store.postgres import AsyncPostgresBackend

        backend = AsyncPostgresBackend(
            target[1], target[2], secrets=target[3], pool_size=pool_size, timeout=timeout
        )
    return AsyncStore(
        backend,
        registry=registry,
        clock=clock,
        retry=retry,
        key_retention=key_retention,
        extensions=extensions,
        create=create,
    )


def _target(function: str, url: str) -> tuple[Any, ...]:
    """What ``url`` names: ``("sqlite", backend)``, or ``("postgresql", shown url,
    conninfo, secrets)``.

    Raises:
        StoreError: a malformed URL or option.
    """
    if not isinstance(url, str):
        msg = f"{function}() takes a URL string like {DEFAULT_URL!r}, not {type(url).__name__}."
        raise StoreError(msg)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise _refuse(url, f"cannot be parsed ({exc})") from None
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if parts.scheme == "sqlite":
        return ("sqlite", _sqlite(url, parts.netloc, parts.path, options))
    if parts.scheme in ("postgresql", "postgres"):
        secrets = [unquote(parts.password)] if parts.password else []
        return ("postgresql", display_url(url), url, secrets)
    raise _refuse(url, "has an unknown scheme")


def _sqlite(url: str, netloc: str, path: str, options: dict[str, str]) -> Backend:
    from lifecyclekit.store.sqlite import SYNCHRONOUS, SQLiteBackend

    if "#" in url:  # urlsplit cuts the path at '#': sqlite:////tmp/a#b.db would open /tmp/a
        raise _refuse(
            url,
            "has a '#', which starts a URL fragment and is not part of the file name: "
            "write a '#' in the path as %23 (sqlite:////tmp/a%23b.db opens /tmp/a#b.db)",
        )
    if netloc or not path.startswith("/") or path == "/" or url[7:9] != "//":
        # sqlite:/x.db (no "//") would read as the relative x.db: refused, not guessed
        raise _refuse(url, "is not a SQLite file URL")
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise _refuse(
            url, f"has unknown option(s) {', '.join(sorted(unknown))} (known: synchronous)"
        )
    level = options.get("synchronous", "FULL").upper()
    if level not in SYNCHRONOUS:
        given, known = options["synchronous"], ", ".join(SYNCHRONOUS)
        raise _refuse(url, f"has synchronous={given!r} (SQLite accepts {known})")
    file = unquote(path[1:])
    if file.startswith("//"):  # sqlite://///tmp/x.db: extra slashes, as a shell reads them
        file = "/" + file.lstrip("/")
    if file != ":memory:" and (not file or file.endswith("/") or "\x00" in file):
        raise _refuse(url, "names no file")
    if file != ":memory:" and os.path.isdir(file):
        raise _refuse(url, "names a directory")
    return SQLiteBackend(display_url(url), file, synchronous=level)
