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
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from lifecyclekit.errors import optional_import
from lifecyclekit.store._backend import BackendError, Kind, Rows

__all__ = ["PostgresBackend"]

SCHEMA_LOCK = 7_143_901
"""pg_advisory_xact_lock key serialising schema changes."""
FEED_LOCK = 7_143_902
"""Advisory lock key: writers hold it shared from taking a change position to their end."""
CLOSED = "the store is closed (open another with open_store(url))"
"""Why an operation on a closed store fails (the same words as SQLite's)."""
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


def _psycopg() -> Any:
    return optional_import("psycopg", extra="postgres", feature="PostgreSQL stores")


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresBackend:
    """A store in a PostgreSQL database.

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
        pool = optional_import("psycopg_pool", extra="postgres", feature="PostgreSQL stores")
        self.timeout = timeout
        self._conninfo = conninfo
        self._pool_size = max(1, pool_size)
        self._pools = pool
        self._lock = threading.Lock()
        self._unhealthy = False
        self._closed = False
        self._direct().close()  # a wrong host or database fails here, with its reason
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        pool = self._pools.ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True},
            check=self._pools.ConnectionPool.check_connection,
            timeout=self.timeout,
            open=False,
            name="lifecyclekit",
        )
        pool.open(wait=False)
        return pool

    def _direct(self) -> Any:
        """A connection outside the pool (fails fast when the server is down)."""
        try:
            return self._psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=max(1, int(self.timeout))
            )
        except self._psycopg.Error as exc:
            raise self.classify(exc, connecting=True) from None

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
                if exc.kind in (Kind.CONNECTION_LOST, Kind.OUTCOME_UNKNOWN):
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
            self._unhealthy = True
            msg = (
                f"no connection within {self.timeout:g} s (the server is unreachable, or all "
                f"pooled connections are busy): {self._scrub(str(exc))}"
            )
            raise BackendError(Kind.UNAVAILABLE, msg) from None
        try:
            yield connection
        except BackendError as exc:
            if exc.kind in (Kind.CONNECTION_LOST, Kind.OUTCOME_UNKNOWN):
                self._unhealthy = True
            raise
        finally:
            pool.putconn(connection)

    @contextmanager
    def transaction(self, *, write: bool, schema: bool = False) -> Iterator[_Tx]:
        with self._connection() as connection:
            tx = _Tx(connection, self)
            if schema:
                tx.execute("BEGIN")  # READ COMMITTED: see what the lock's last holder made
                tx.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
            else:
                tx.execute(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ" + ("" if write else " READ ONLY")
                )
            try:
                yield tx
            except BaseException:
                self._rollback(connection)
                raise
            try:
                connection.execute("COMMIT")
            except self._psycopg.Error as exc:
                error = self.classify(exc)
                if error.kind is Kind.CONNECTION_LOST:
                    error = BackendError(Kind.OUTCOME_UNKNOWN, error.detail)
                self._rollback(connection)
                raise error from None

    def _rollback(self, connection: Any) -> None:
        if connection.broken or connection.closed:
            return
        try:
            connection.execute("ROLLBACK")
        except self._psycopg.Error:
            connection.close()  # the pool discards it

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

    def change_fence(self, after: int) -> int | None:
        sql = "SELECT last_value, is_called FROM lk_changes_position_seq"
        with self._connection() as connection:
            tx = _Tx(connection, self)
            last, called = tx.execute(sql).rows[0]
            if not called or last <= after:
                return int(last) if called else 0
            for _ in range(10):
                try:
                    tx.execute("BEGIN")
                    tx.execute(f"SELECT pg_advisory_xact_lock({FEED_LOCK})")
                    last, called = tx.execute(sql).rows[0]
                    connection.execute("COMMIT")
                except BackendError as exc:
                    self._rollback(connection)
                    if exc.kind is not Kind.CONFLICT:
                        raise
                    continue
                return int(last) if called else 0
        msg = "kept deadlocking with writers while reading the change feed"
        raise BackendError(Kind.CONFLICT, msg)

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
