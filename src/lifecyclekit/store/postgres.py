"""The PostgreSQL back-end (many processes, many hosts): SQL and connections only.

Needs ``pip install 'lifecyclekit[postgres]'`` (psycopg 3 and psycopg_pool). Connections
come from a ``psycopg_pool.ConnectionPool`` shared by every thread; each is checked before it
is handed out, so after a server restart the next call reconnects. Store transactions are
REPEATABLE READ: their reads see one snapshot (a row and its last record always agree), and
a concurrent writer shows up as a serialization failure or a lost compare-and-set, after
which the store re-runs the whole operation. Schema changes run READ COMMITTED behind an
advisory lock, so many processes may open a fresh database at once.

Change positions come from a sequence, which hands values out before commit, so commits can
land out of position order. Writers therefore take a shared advisory lock before taking a
position and keep it until their transaction ends; a reader takes the same lock exclusively
for an instant to learn the highest position below which every writer has finished (the
fence), and reads only up to it. A reader never skips a position that commits later.

:class:`AsyncPostgresBackend` is the same for the asynchronous store, on psycopg's
``AsyncConnection`` and ``psycopg_pool.AsyncConnectionPool``; both share everything here
that is not I/O (the SQL, the error kinds, the pool's options).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from lifecyclekit.errors import optional_import
from lifecyclekit.store._backend import CLOSED, BackendError, Kind, Rows, uninterrupted

__all__ = ["AsyncPostgresBackend", "PostgresBackend"]

SCHEMA_LOCK = 7_143_901
"""pg_advisory_xact_lock key serialising schema changes."""
FEED_LOCK = 7_143_902
"""Advisory lock key: writers hold it shared from taking a change position to their end."""
CHANNEL = "lifecyclekit_changes"
"""The LISTEN/NOTIFY channel woken by every commit that adds changes."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS lk_instances (
        id TEXT PRIMARY KEY, machine TEXT NOT NULL, schema_version INTEGER NOT NULL,
        state TEXT NOT NULL, context TEXT, revision BIGINT NOT NULL,
        version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS lk_instances_updated ON lk_instances (updated_at, id)",
    """CREATE INDEX IF NOT EXISTS lk_instances_machine
        ON lk_instances (machine, updated_at, id)""",
    """CREATE INDEX IF NOT EXISTS lk_instances_machine_state
        ON lk_instances (machine, state, updated_at, id)""",
    """CREATE TABLE IF NOT EXISTS lk_history (
        instance_id TEXT NOT NULL, seq BIGINT NOT NULL, event TEXT NOT NULL,
        source TEXT NOT NULL, target TEXT NOT NULL, payload TEXT, at BIGINT NOT NULL,
        inferred INTEGER NOT NULL, actor TEXT, reason TEXT, metadata TEXT,
        PRIMARY KEY (instance_id, seq))""",
    """CREATE TABLE IF NOT EXISTS lk_keys (
        instance_id TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL,
        outcome TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (instance_id, key))""",
    "CREATE INDEX IF NOT EXISTS lk_keys_created ON lk_keys (created_at)",
    "CREATE SEQUENCE IF NOT EXISTS lk_changes_position_seq",
    """CREATE TABLE IF NOT EXISTS lk_changes (
        position BIGINT PRIMARY KEY, instance_id TEXT NOT NULL, machine TEXT NOT NULL,
        seq BIGINT NOT NULL, record TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lk_consumers (
        name TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lk_extensions (
        name TEXT PRIMARY KEY, version INTEGER NOT NULL)""",
)

_BY_STATE = {
    "40001": Kind.CONFLICT,  # serialization_failure
    "40P01": Kind.CONFLICT,  # deadlock_detected
    "23505": Kind.DUPLICATE,  # unique_violation
    "42P01": Kind.NO_STORE,  # undefined_table
    "3D000": Kind.NO_STORE,  # invalid_catalog_name: no such database
    "53100": Kind.FULL,  # disk_full
    "25006": Kind.READ_ONLY,  # read_only_sql_transaction (a standby, a read-only session)
    "42501": Kind.READ_ONLY,  # insufficient_privilege
    "55P03": Kind.BUSY,  # lock_not_available
    "57P01": Kind.CONNECTION_LOST,  # admin_shutdown
    "57P02": Kind.CONNECTION_LOST,  # crash_shutdown
    "57P03": Kind.CONNECTION_LOST,  # cannot_connect_now
}


_STORE_TABLE = re.compile(r'relation "(\w+\.)?lk_')
"""An undefined_table error about one of the store's own tables (as SQLite's 'no such
table: lk_' is)."""


def _psycopg() -> Any:
    return optional_import("psycopg", extra="postgres", feature="PostgreSQL stores")


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


FENCE_SQL = "SELECT last_value, is_called FROM lk_changes_position_seq"
FENCE_TRIES = 10
_FENCE_DEADLOCKS = "kept deadlocking with writers while reading the change feed"
_LOST = (Kind.CONNECTION_LOST, Kind.OUTCOME_UNKNOWN)


def _begin(write: bool, schema: bool) -> tuple[str, ...]:
    """The statements opening a transaction."""
    if schema:  # READ COMMITTED: see what the lock's last holder made
        return ("BEGIN", f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
    return ("BEGIN ISOLATION LEVEL REPEATABLE READ" + ("" if write else " READ ONLY"),)


def _position(row: tuple[Any, ...]) -> int:
    last, called = row
    return int(last) if called else 0


class _Postgres:
    """What both PostgreSQL back-ends decide without I/O: options, SQL, error kinds.

    Args:
        url: the URL, for messages (password hidden).
        conninfo: what psycopg connects with (the real URL).
        secrets: strings never to repeat in a message (the password).
        pool_size: the most connections the pool holds.
        timeout: seconds to wait for a connection before giving up.
    """

    dialect = "postgresql"
    schema: Sequence[str] = SCHEMA
    change_position = "nextval('lk_changes_position_seq')"
    change_prelude: str | None = (
        f"SELECT pg_advisory_xact_lock_shared({FEED_LOCK}), pg_notify('{CHANNEL}', '')"
    )
    memory = False

    def __init__(
        self,
        url: str,
        conninfo: str,
        *,
        secrets: Sequence[str] = (),
        pool_size: int = 10,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._secrets = tuple(s for s in secrets if s)
        self._psycopg = _psycopg()
        self._pools = optional_import(
            "psycopg_pool", extra="postgres", feature="PostgreSQL stores"
        )
        self.timeout = timeout
        self._conninfo = conninfo
        self._pool_size = max(1, pool_size)
        self._unhealthy = False
        self._closed = False

    def _pool_options(self) -> dict[str, Any]:
        return {
            "min_size": 1,
            "max_size": self._pool_size,
            "kwargs": {"autocommit": True},
            "timeout": self.timeout,
            "open": False,
            "name": "lifecyclekit",
        }

    def _connect_options(self) -> dict[str, Any]:
        return {"autocommit": True, "connect_timeout": max(1, int(self.timeout))}

    def _no_connection(self, exc: BaseException) -> BackendError:
        """The error of a pool that gave no connection in time (and the next call connects
        directly: see ``_connection``)."""
        self._unhealthy = True
        msg = (
            f"no connection within {self.timeout:g} s (the server is unreachable, or all "
            f"pooled connections are busy): {self._scrub(str(exc))}"
        )
        return BackendError(Kind.UNAVAILABLE, msg)

    def _commit_failed(self, exc: BaseException) -> BackendError:
        """A failed COMMIT: a lost connection leaves its outcome unknown."""
        error = self.classify(exc)
        if error.kind is Kind.CONNECTION_LOST:
            error = BackendError(Kind.OUTCOME_UNKNOWN, error.detail)
        return error

    # -- errors ------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """``text`` with the password hidden where a driver may echo it: in a URL's
        password position and in ``password=`` (never elsewhere: a database or user named
        like the password stays readable)."""
        for secret in self._secrets:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(f":{form}@", ":***@")
                text = re.sub(rf"(password\s*=\s*'?){re.escape(form)}", r"\g<1>***", text)
        return text.strip()

    def classify(self, exc: BaseException, *, connecting: bool = False) -> BackendError:
        """The :class:`BackendError` for a psycopg error."""
        psycopg = self._psycopg
        detail = self._scrub(str(exc)) or type(exc).__name__
        state = getattr(exc, "sqlstate", None) or ""
        kind = _BY_STATE.get(state)
        if kind is Kind.NO_STORE and state == "42P01" and not _STORE_TABLE.search(detail):
            kind = Kind.OTHER  # an extension's SQL naming a missing table: not "no store"
        if kind is None:
            if state.startswith("08") or isinstance(exc, psycopg.InterfaceError):
                kind = Kind.CONNECTION_LOST
            elif isinstance(exc, psycopg.OperationalError) and not state:
                kind = Kind.UNAVAILABLE if connecting else Kind.CONNECTION_LOST
            elif state.startswith("22") or isinstance(exc, psycopg.DataError):
                kind = Kind.INVALID
            else:
                kind = Kind.OTHER
        if connecting and kind in (Kind.UNAVAILABLE, Kind.OTHER):
            if "authentication failed" in detail or 'role "' in detail:
                kind = Kind.OTHER  # reachable, but refused: no reconnecting will help
            elif "database" in detail and "does not exist" in detail:
                kind = Kind.NO_STORE
        return BackendError(kind, detail)

    # -- SQL that differs --------------------------------------------------------------------

    # jsonb refuses what a TEXT column may hold: "\u0000", NaN/Infinity (Python's json
    # writes them), text that is not a JSON object. Regexes (which never raise, and contain
    # no "?" placeholder) tell such rows apart before anything casts them.
    context_readable = (
        "(CASE WHEN context IS NULL THEN TRUE ELSE ("
        r"context ~ '^\s*\{.*\}\s*$'"
        r" AND context !~ '(^|[^\\])(\\\\)*\\u0000'"
        r" AND context !~ '[:,[][[:space:]]*-*(NaN|Infinity)[[:space:]]*[],}]') END)"
    )
    """True for a row whose context :meth:`context_filter` can read (never raises)."""

    def context_filter(self, field: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        import json

        if value is None:
            return (
                "((context::jsonb -> ?) IS NULL OR (context::jsonb -> ?) = 'null'::jsonb)",
                (field, field),
            )
        return "(context::jsonb -> ?) = CAST(? AS jsonb)", (field, json.dumps(value))


class PostgresBackend(_Postgres):
    """A store in a PostgreSQL database (see :class:`_Postgres` for the arguments)."""

    def __init__(
        self,
        url: str,
        conninfo: str,
        *,
        secrets: Sequence[str] = (),
        pool_size: int = 10,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(url, conninfo, secrets=secrets, pool_size=pool_size, timeout=timeout)
        self._lock = threading.Lock()
        self._direct().close()  # a wrong host or database fails here, with its reason
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        pool = self._pools.ConnectionPool(
            self._conninfo, check=self._pools.ConnectionPool.check_connection,
            **self._pool_options(),
        )  # fmt: skip
        pool.open(wait=False)
        return pool

    def _direct(self) -> Any:
        """A connection outside the pool (fails fast when the server is down)."""
        try:
            return self._psycopg.connect(self._conninfo, **self._connect_options())
        except self._psycopg.Error as exc:
            raise self.classify(exc, connecting=True) from None

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection. After the server was seen unreachable, the next call
        connects directly (failing fast while the server is down); once that succeeds the
        pool, which may be waiting out its reconnection back-off, is replaced."""
        if self._closed:
            raise BackendError(Kind.OTHER, CLOSED)
        if self._unhealthy:
            connection = self._direct()
            with self._lock:
                if self._unhealthy:
                    old, self._pool, self._unhealthy = self._pool, self._new_pool(), False
                    threading.Thread(target=old.close, daemon=True).start()
            try:
                yield connection
            except BackendError as exc:
                if exc.kind in _LOST:
                    self._unhealthy = True
                raise
            finally:
                connection.close()
            return
        pool = self._pool
        try:
            connection = pool.getconn()
        except self._pools.PoolClosed:
            raise BackendError(Kind.OTHER, CLOSED) from None
        except self._pools.PoolTimeout as exc:
            raise self._no_connection(exc) from None
        try:
            yield connection
        except BackendError as exc:
            if exc.kind in _LOST:
                self._unhealthy = True
            raise
        finally:
            pool.putconn(connection)

    @contextmanager
    def transaction(self, *, write: bool, schema: bool = False) -> Iterator[_Tx]:
        with self._connection() as connection:
            tx = _Tx(connection, self)
            for sql in _begin(write, schema):
                tx.execute(sql)
            try:
                yield tx
            except BaseException:
                self._rollback(connection)
                raise
            try:
                connection.execute("COMMIT")
            except self._psycopg.Error as exc:
                error = self._commit_failed(exc)
                self._rollback(connection)
                raise error from None

    def _rollback(self, connection: Any) -> None:
        if connection.broken or connection.closed:
            return
        try:
            connection.execute("ROLLBACK")
        except self._psycopg.Error:
            connection.close()  # the pool discards it

    # -- the change feed ---------------------------------------------------------------------

    def change_fence(self, after: int) -> int | None:
        with self._connection() as connection:
            tx = _Tx(connection, self)
            (row,) = tx.execute(FENCE_SQL).rows
            if _position(row) <= after:
                return _position(row)
            for _ in range(FENCE_TRIES):
                try:
                    tx.execute("BEGIN")
                    tx.execute(f"SELECT pg_advisory_xact_lock({FEED_LOCK})")
                    (row,) = tx.execute(FENCE_SQL).rows
                    connection.execute("COMMIT")
                except BackendError as exc:
                    self._rollback(connection)
                    if exc.kind is not Kind.CONFLICT:
                        raise
                    continue
                return _position(row)
        raise BackendError(Kind.CONFLICT, _FENCE_DEADLOCKS)

    def wait_for_changes(self, timeout: float, ready: Callable[[], bool]) -> bool:
        """LISTEN on a connection of its own (not the pool's: a long wait must not starve
        it), then check ``ready`` after every notification (and at least every second)."""
        deadline = time.monotonic() + timeout
        connection = self._direct()
        try:
            connection.execute(f"LISTEN {CHANNEL}")
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for _ in connection.notifies(timeout=min(left, 1.0), stop_after=1):
                    pass
            return True
        except self._psycopg.Error as exc:
            raise self.classify(exc) from None
        finally:
            connection.close()

    def close(self) -> None:
        self._closed = True
        self._pool.close()


class _Tx:
    """One open PostgreSQL transaction (on an autocommit connection with explicit BEGIN)."""

    __slots__ = ("_backend", "_connection")

    def __init__(self, connection: Any, backend: PostgresBackend) -> None:
        self._connection = connection
        self._backend = backend

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        try:
            cursor = self._connection.execute(_placeholders(sql) if params else sql, params)
            rows = cursor.fetchall() if cursor.description is not None else []
        except self._backend._psycopg.Error as exc:
            raise self._backend.classify(exc) from None
        return Rows(rows, cursor.rowcount)


# -- the asynchronous back-end ---------------------------------------------------------------


class AsyncPostgresBackend(_Postgres):
    """A store in a PostgreSQL database for the asynchronous store: psycopg's
    ``AsyncConnection`` from a ``psycopg_pool.AsyncConnectionPool`` (see :class:`_Postgres`
    for the arguments). Nothing connects before :meth:`open`."""

    def __init__(
        self,
        url: str,
        conninfo: str,
        *,
        secrets: Sequence[str] = (),
        pool_size: int = 10,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(url, conninfo, secrets=secrets, pool_size=pool_size, timeout=timeout)
        self._pool: Any = None
        self._retired: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        if self._pool is None:
            await (await self._direct()).close()  # a wrong host or database fails here
            self._pool = await self._new_pool()

    async def _new_pool(self) -> Any:
        pools = self._pools
        pool = pools.AsyncConnectionPool(
            self._conninfo, check=pools.AsyncConnectionPool.check_connection,
            **self._pool_options(),
        )  # fmt: skip
        await pool.open(wait=False)
        return pool

    async def _direct(self) -> Any:
        """A connection outside the pool (fails fast when the server is down)."""
        try:
            return await self._psycopg.AsyncConnection.connect(
                self._conninfo, **self._connect_options()
            )
        except self._psycopg.Error as exc:
            raise self.classify(exc, connecting=True) from None

    def _retire(self, pool: Any) -> None:
        """Close ``pool`` in the background (it may be waiting out a reconnection)."""
        task = asyncio.get_running_loop().create_task(pool.close())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; after the server was seen unreachable, a direct one until a
        direct connection succeeds again, and then a fresh pool (as the synchronous
        back-end does)."""
        if self._pool is None:
            msg = CLOSED if self._closed else "the store is not open (await open_async_store(url))"
            raise BackendError(Kind.OTHER, msg)
        if self._unhealthy:
            connection = await self._direct()
            if self._unhealthy:
                fresh = await self._new_pool()
                if self._unhealthy:
                    old, self._pool, self._unhealthy = self._pool, fresh, False
                    self._retire(old)
                else:
                    self._retire(fresh)
            try:
                yield connection
            except BackendError as exc:
                if exc.kind in _LOST:
                    self._unhealthy = True
                raise
            finally:
                await uninterrupted(connection.close())
            return
        pool = self._pool
        connection = await self._take(pool)
        try:
            yield connection
        except BackendError as exc:
            if exc.kind in _LOST:
                self._unhealthy = True
            raise
        finally:
            await uninterrupted(pool.putconn(connection))

    async def _take(self, pool: Any) -> Any:
        """A connection from ``pool``, or the store-is-closed error when it was closed while
        this task waited."""
        try:
            return await pool.getconn()
        except self._pools.PoolClosed:
            raise BackendError(Kind.OTHER, CLOSED) from None
        except self._pools.PoolTimeout as exc:
            raise self._no_connection(exc) from None

    @asynccontextmanager
    async def transaction(self, *, write: bool, schema: bool = False) -> AsyncIterator[_AsyncTx]:
        async with self._connection() as connection:
            tx = _AsyncTx(connection, self)
            try:
                for sql in _begin(write, schema):
                    await tx.execute(sql)
                yield tx
                if self._closed:  # a store closed meanwhile commits nothing more
                    raise BackendError(Kind.OTHER, CLOSED)
            except BaseException:
                await uninterrupted(self._rollback(connection))
                raise
            await uninterrupted(self._commit(connection, tx))

    async def _commit(self, connection: Any, tx: _AsyncTx) -> None:
        try:
            await connection.execute("COMMIT")
        except self._psycopg.Error as exc:
            error = self._commit_failed(exc)
            await self._rollback(connection)
            raise error from None
        tx.committed = True

    async def _rollback(self, connection: Any) -> None:
        if connection.broken or connection.closed:
            return
        try:
            await connection.execute("ROLLBACK")
        except self._psycopg.Error:
            await connection.close()  # the pool discards it

    async def change_fence(self, after: int) -> int | None:
        async with self._connection() as connection:
            tx = _AsyncTx(connection, self)
            (row,) = (await tx.execute(FENCE_SQL)).rows
            if _position(row) <= after:
                return _position(row)
            for _ in range(FENCE_TRIES):
                try:
                    await tx.execute("BEGIN")
                    await tx.execute(f"SELECT pg_advisory_xact_lock({FEED_LOCK})")
                    (row,) = (await tx.execute(FENCE_SQL)).rows
                    await tx.execute("COMMIT")
                except BaseException as exc:
                    await uninterrupted(self._rollback(connection))
                    if not isinstance(exc, BackendError) or exc.kind is not Kind.CONFLICT:
                        raise
                    continue
                return _position(row)
        raise BackendError(Kind.CONFLICT, _FENCE_DEADLOCKS)

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[_Listener]:
        """LISTEN on a connection of its own (a long wait must not hold a pooled one)."""
        connection = await self._direct()
        try:
            await _AsyncTx(connection, self).execute(f"LISTEN {CHANNEL}")
            yield _Listener(connection, self)
        finally:
            await uninterrupted(connection.close())

    async def aclose(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)


class _AsyncTx:
    """One open PostgreSQL transaction of the asynchronous back-end."""

    __slots__ = ("_backend", "_connection", "committed")

    def __init__(self, connection: Any, backend: _Postgres) -> None:
        self._connection = connection
        self._backend = backend
        self.committed = False

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        if self._backend._closed:  # the store was closed during this transaction
            raise BackendError(Kind.OTHER, CLOSED)
        try:
            cursor = await self._connection.execute(_placeholders(sql) if params else sql, params)
            rows = await cursor.fetchall() if cursor.description is not None else []
        except self._backend._psycopg.Error as exc:
            raise self._backend.classify(exc) from None
        return Rows(rows, cursor.rowcount)


class _Listener:
    """Wakes on the store's NOTIFY channel."""

    def __init__(self, connection: Any, backend: _Postgres) -> None:
        self._connection = connection
        self._backend = backend

    async def wait(self, timeout: float) -> None:
        try:
            async for _ in self._connection.notifies(timeout=max(timeout, 0.0), stop_after=1):
                pass
        except self._backend._psycopg.Error as exc:
            raise self._backend.classify(exc) from None
