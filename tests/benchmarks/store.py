"""Store suites: a durable ``send`` against the raw database work of one transition.

``store.send-*``: lifecyclekit's ``store.send(id, "flip", text="x")`` on the ``toggle``
lifecycle of ``tests/store_machines.py`` against **raw database**: the same work written
directly with ``sqlite3`` / ``psycopg`` (one write transaction that reads the row,
compare-and-sets its update, inserts one history row, commits), on tables of the same shape
(``raw_instances``, ``raw_history``) in the same database, with the same ``journal_mode``,
``synchronous`` and isolation level. For SQLite with ``synchronous=NORMAL`` and ``FULL`` and
for PostgreSQL, with 1 process and with 4 (each on instances of its own, all four sending at
once); the figure is sends per second over all processes, so the ratio lifecyclekit / raw is
the share of the raw throughput lifecyclekit keeps. Both contenders get fresh instances in
every round (history does not pile up); the processes are started once and kept.

PostgreSQL runs when ``LIFECYCLEKIT_BENCH_POSTGRES`` (or ``LIFECYCLEKIT_TEST_POSTGRES``) holds
a URL, in a schema of its own that is dropped afterwards.

``scaling.send-history*``: one send on an instance with 10,000 history records against one on
an instance with 10 (SQLite with ``synchronous=NORMAL``, and PostgreSQL): a ``send`` should
not cost more as history grows (target: at most 1.3x). The 10,000-record instance is built
once (a ``Snapshot`` restored and added in one unit of work) and takes every send, growing by
at most a few hundred records; every send of the 10-record contender goes to a fresh
instance.

``scaling.find-instances*``: ``find`` of the 100 newest rows from 100,000 instances against the
same from 1,000 (SQLite and PostgreSQL, a database or schema per size, rows written straight
to the table as ``create`` writes them): an index walk, not a sort of the table (target: at
most 2x).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from lifecyclekit import Snapshot, TransitionRecord
from lifecyclekit.store import open_store
from tests.benchmarks.harness import Contender, Env, Options, Runner, Suite, register
from tests.store_machines import REGISTRY

INSTANCES_PER_PROCESS = 5
"""Each process sends to this many instances of its own, in turn."""

POSTGRES_VARIABLES = ("LIFECYCLEKIT_BENCH_POSTGRES", "LIFECYCLEKIT_TEST_POSTGRES")

RAW_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS raw_instances (
        id TEXT PRIMARY KEY, machine TEXT NOT NULL, schema_version INTEGER NOT NULL,
        state TEXT NOT NULL, context TEXT, revision INTEGER NOT NULL,
        version INTEGER NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS raw_history (
        instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
        source TEXT NOT NULL, target TEXT NOT NULL, payload TEXT, at TEXT NOT NULL,
        inferred INTEGER NOT NULL, PRIMARY KEY (instance_id, seq))""",
)
"""The raw contender's tables: the shape of the store's rows (schema 1)."""


def postgres_url() -> str | None:
    """The PostgreSQL URL the benchmarks may use, from the environment."""
    for variable in POSTGRES_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return None


@dataclass(frozen=True)
class Backend:
    """Where a store suite runs (picklable: worker processes receive it)."""

    kind: str
    """``sqlite`` or ``postgresql``."""
    url: str
    """For SQLite the file path; for PostgreSQL the server URL."""
    synchronous: str = "FULL"
    schema: str = ""
    """PostgreSQL: the schema this suite's tables live in."""

    @property
    def store_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.url}?synchronous={self.synchronous.lower()}"
        return self.driver_url

    @property
    def driver_url(self) -> str:
        if self.kind == "sqlite":
            return self.url
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}options={quote(f'-csearch_path={self.schema}')}"

    def prepare(self) -> None:
        """A fresh schema (PostgreSQL) and every table, before any worker connects."""
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                connection.execute(f"CREATE SCHEMA {self.schema}")
        open_store(self.store_url, registry=REGISTRY, create=True).close()
        raw = RawDatabase(self)
        try:
            for statement in RAW_SCHEMA:
                raw.execute(statement)
        finally:
            raw.close()

    def drop(self) -> None:
        """Remove what :meth:`prepare` made (PostgreSQL; SQLite files go with the run)."""
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


class RawDatabase:
    """One transition's database work, written by hand through the driver."""

    def __init__(self, backend: Backend) -> None:
        if backend.kind == "sqlite":
            self.connection: Any = sqlite3.connect(
                backend.driver_url, timeout=30, isolation_level=None
            )
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA busy_timeout=30000")
            self.connection.execute(f"PRAGMA synchronous={backend.synchronous}")
            self.begin, mark = "BEGIN IMMEDIATE", "?"
        else:
            import psycopg

            self.connection = psycopg.connect(backend.driver_url, autocommit=True)
            self.begin, mark = "BEGIN ISOLATION LEVEL REPEATABLE READ", "%s"
        self.select = (
            f"SELECT state, context, revision, version FROM raw_instances WHERE id = {mark}"
        )
        self.update = (
            f"UPDATE raw_instances SET state = {mark}, context = {mark}, revision = {mark},"
            f" version = {mark}, updated_at = {mark} WHERE id = {mark} AND version = {mark}"
        )
        self.insert_history = (
            "INSERT INTO raw_history (instance_id, seq, event, source, target, payload, at,"
            f" inferred) VALUES ({', '.join([mark] * 8)})"
        )
        self.insert_instance = (
            "INSERT INTO raw_instances (id, machine, schema_version, state, context, revision,"
            f" version, updated_at) VALUES ({', '.join([mark] * 8)})"
        )

    def execute(self, statement: str) -> None:
        self.connection.execute(statement)

    def create(self, instance_id: str) -> None:
        """A new ``toggle`` row, as ``store.create`` writes it (no history)."""
        context = json.dumps({"label": "", "flips": 0})
        now = datetime.now(UTC).isoformat()
        cursor = self.connection.cursor()
        cursor.execute(self.insert_instance, (instance_id, "toggle", 1, "off", context, 0, 1, now))
        cursor.close()

    def send(self, instance_id: str) -> None:
        """Read the row, flip it with compare-and-set, add one history row, commit."""
        cursor = self.connection.cursor()
        cursor.execute(self.begin)
        try:
            cursor.execute(self.select, (instance_id,))
            state, context, revision, version = cursor.fetchone()
            data = json.loads(context)
            data["flips"] += 1
            target = "on" if state == "off" else "off"
            now = datetime.now(UTC).isoformat()
            cursor.execute(
                self.update,
                (target, json.dumps(data), revision + 1, version + 1, now, instance_id, version),
            )
            if cursor.rowcount != 1:
                msg = f"raw compare-and-set lost on {instance_id!r}"
                raise RuntimeError(msg)
            payload = json.dumps({"text": "x"})
            cursor.execute(
                self.insert_history,
                (instance_id, revision + 1, "flip", state, target, payload, now, 0),
            )
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
        cursor.close()

    def close(self) -> None:
        self.connection.close()


def _fresh_ids(env: Env, count: int) -> list[str]:
    return [f"w{env.worker}-{uuid.uuid4().hex}" for _ in range(count)]


def setup_lifecyclekit_send(backend: Backend, env: Env) -> Runner:
    """``store.send`` through the public API, on fresh instances of this process."""
    store = env.keep("lifecyclekit", lambda: open_store(backend.store_url, registry=REGISTRY))
    ids = _fresh_ids(env, INSTANCES_PER_PROCESS)
    for instance_id in ids:
        store.create("toggle", id=instance_id)

    def run() -> None:
        for n in range(env.operations):
            store.send(ids[n % INSTANCES_PER_PROCESS], "flip", text="x")

    return run


def setup_raw_send(backend: Backend, env: Env) -> Runner:
    raw = env.keep("raw", lambda: RawDatabase(backend))
    ids = _fresh_ids(env, INSTANCES_PER_PROCESS)
    for instance_id in ids:
        raw.create(instance_id)

    def run() -> None:
        for n in range(env.operations):
            raw.send(ids[n % INSTANCES_PER_PROCESS])

    return run


def _postgres_skip(url: str | None) -> str | None:
    if url is None:
        names = " or ".join(POSTGRES_VARIABLES)
        return f"PostgreSQL not measured: set {names} to a postgresql:// URL to include it."
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "PostgreSQL not measured: psycopg is not installed (pip install -e '.[dev]')."
    return None


@register("store")
def store_suites(options: Options) -> Iterator[Suite]:
    """Durable send against the raw database work: 3 back-ends x 1 and 4 processes."""
    token = uuid.uuid4().hex[:10]
    for key, label in (("sqlite-normal", "NORMAL"), ("sqlite-full", "FULL")):
        for processes in (1, 4):
            path = options.workdir / f"{key}-{processes}p.db"
            backend = Backend("sqlite", str(path), synchronous=label)
            yield _send_suite(
                f"store.send-{key}-{processes}p",
                f"SQLite synchronous={label}",
                backend,
                processes,
                None,
            )
    url = options.postgres
    skip = _postgres_skip(url)
    for processes in (1, 4):
        backend = Backend("postgresql", url or "", schema=f"lkbench_{token}_{processes}p")
        yield _send_suite(
            f"store.send-postgres-{processes}p", "PostgreSQL", backend, processes, skip
        )


def _send_suite(
    name: str, label: str, backend: Backend, processes: int, skip: str | None
) -> Suite:
    plural = "process" if processes == 1 else "processes"
    return Suite(
        name=name,
        title=f"{label}, {processes} {plural}",
        unit="send",
        measure="rate",
        contenders=(
            Contender("lifecyclekit", partial(setup_lifecyclekit_send, backend)),
            Contender("raw database", partial(setup_raw_send, backend)),
        ),
        operations=100,
        rounds=15,
        quick_operations=4,
        processes=processes,
        call_operations=10,
        skip=skip,
        prepare=backend.prepare,
        finish=backend.drop,
        table="store.send",
    )


# -- scaling: send cost against history length -----------------------------------------------

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def build_instance(store: Any, records: int) -> str:
    """A stored ``toggle`` with ``records`` history records, written in one unit of work (not
    by ``records`` sends); returns its id."""
    history = tuple(
        TransitionRecord(
            seq=seq,
            event="flip",
            source="off" if seq % 2 else "on",
            target="on" if seq % 2 else "off",
            payload={"text": "x"},
            at=EPOCH,
        )
        for seq in range(1, records + 1)
    )
    snapshot = Snapshot(
        machine="toggle",
        schema_version=1,
        state="on" if records % 2 else "off",
        context={"label": "", "flips": records},
        history=history,
        revision=records,
    )
    instance_id = uuid.uuid4().hex
    instance = REGISTRY.restore(snapshot)
    store.run(lambda uow: uow.add(instance_id, instance))
    return instance_id


def setup_send_at(url: str, records: int, shared: bool, env: Env) -> Runner:
    """``env.operations`` sends: to one instance built once with ``records`` records
    (``shared``), or each to a fresh instance with ``records`` records."""
    store = env.keep("store", lambda: open_store(url, registry=REGISTRY, create=True))
    if shared:
        ids = [env.keep(f"instance-{records}", partial(build_instance, store, records))]
        ids *= env.operations
    else:
        ids = [build_instance(store, records) for _ in range(env.operations)]

    def run() -> None:
        for instance_id in ids:
            store.send(instance_id, "flip", text="x")

    return run


def _schema_url(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def _create_schemas(url: str, *schemas: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            connection.execute(f"CREATE SCHEMA {schema}")


def _drop_schemas(url: str, *schemas: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def seed_instances(url: str, count: int) -> bool:
    """``count`` toggles written straight to ``lk_instances`` (the row ``create`` writes),
    newest last; the store's tables are created first."""
    from lifecyclekit.store._model import to_micros

    open_store(url, registry=REGISTRY, create=True).close()
    context = json.dumps({"label": "", "flips": 0})
    base = to_micros(datetime.now(UTC))
    rows = [
        (f"i{n:07}", "toggle", 1, "off" if n % 3 else "on", context, 0, 1, base + n, base + n)
        for n in range(count)
    ]
    sql = (
        "INSERT INTO lk_instances (id, machine, schema_version, state, context, revision,"
        " version, created_at, updated_at) VALUES ({})"
    )
    if url.startswith("sqlite:///"):
        connection: Any = sqlite3.connect(url.removeprefix("sqlite:///").partition("?")[0])
        with connection:
            connection.executemany(sql.format(", ".join("?" * 9)), rows)
        connection.close()
        return True
    import psycopg

    with psycopg.connect(url) as connection:
        with connection.cursor() as cursor:
            cursor.executemany(sql.format(", ".join(["%s"] * 9)), rows)
        connection.execute("ANALYZE lk_instances")
    return True


def setup_find(url: str, count: int, env: Env) -> Runner:
    """``env.operations`` finds of the 100 newest rows among ``count`` instances."""
    env.keep(f"seeded-{count}", partial(seed_instances, url, count))
    store = env.keep(f"store-{count}", lambda: open_store(url, registry=REGISTRY))

    def run() -> None:
        for _ in range(env.operations):
            store.find(limit=100)

    return run


@register("scaling")
def scaling_suites(options: Options) -> Iterator[Suite]:
    """How one operation's cost grows with the data it sits on."""
    large, small = (200, 10) if options.quick else (10_000, 10)
    url = f"sqlite:///{options.workdir / 'scaling-history.db'}?synchronous=normal"
    token = uuid.uuid4().hex[:10]
    postgres, skip = options.postgres or "", _postgres_skip(options.postgres)
    history_schema = f"lkbench_{token}_history"
    yield Suite(
        name="scaling.send-history",
        title=f"send on an instance with {large:,} vs {small:,} history records",
        unit="send",
        contenders=(
            Contender(f"{large:,} records", partial(setup_send_at, url, large, True)),
            Contender(f"{small:,} records", partial(setup_send_at, url, small, False)),
        ),
        operations=10,
        rounds=9,
        quick_operations=2,
        call_operations=4,
        note=(
            "Scaling: SQLite, synchronous=NORMAL; the large instance is built once and takes "
            "every send (growing slightly), the small one is fresh for each send."
        ),
    )
    pg_url = _schema_url(postgres, history_schema)
    yield Suite(
        name="scaling.send-history-postgres",
        title=f"PostgreSQL: send on an instance with {large:,} vs {small:,} history records",
        unit="send",
        contenders=(
            Contender(f"{large:,} records", partial(setup_send_at, pg_url, large, True)),
            Contender(f"{small:,} records", partial(setup_send_at, pg_url, small, False)),
        ),
        operations=10,
        rounds=9,
        quick_operations=2,
        call_operations=4,
        skip=skip,
        prepare=partial(_create_schemas, postgres, history_schema) if not skip else None,
        finish=partial(_drop_schemas, postgres, history_schema) if not skip else None,
        table="scaling",
    )
    big, little = (3_000, 300) if options.quick else (100_000, 1_000)
    sqlite_urls = {
        n: f"sqlite:///{options.workdir / f'scaling-find-{n}.db'}" for n in (big, little)
    }
    schemas = {n: f"lkbench_{token}_find_{n}" for n in (big, little)}
    for label, urls, suite_skip in (
        ("SQLite", sqlite_urls, None),
        ("PostgreSQL", {n: _schema_url(postgres, schemas[n]) for n in schemas}, skip),
    ):
        pg = label == "PostgreSQL" and not skip
        prepare = partial(_create_schemas, postgres, *schemas.values()) if pg else None
        finish = partial(_drop_schemas, postgres, *schemas.values()) if pg else None
        yield Suite(
            name="scaling.find-instances" + ("-postgres" if label == "PostgreSQL" else ""),
            title=f"{label}: find 100 of {big:,} vs {little:,} instances",
            unit="find",
            contenders=(
                Contender(f"{big:,} instances", partial(setup_find, urls[big], big)),
                Contender(f"{little:,} instances", partial(setup_find, urls[little], little)),
            ),
            operations=20,
            rounds=9,
            quick_operations=2,
            call_operations=4,
            skip=suite_skip,
            prepare=prepare,
            finish=finish,
            table="scaling",
            note=(
                "Find: the 100 newest rows; the large store is written once, straight to "
                "its table, before the first round."
            ),
        )
