"""The benchmark harness: suites of contenders, interleaved rounds, same-round ratios.

Wall-clock time on a shared machine drifts by tens of percent between runs, so no figure here
is ever compared across runs. Instead every comparison is a **suite**: contenders that do the
same work, timed in **rounds**. Each round runs every contender once, N operations each, in an
order rotated by one place per round; after an untimed warm-up round, a suite reports

- per contender: the median over rounds of the time per operation (or operations per second,
  or bytes per live instance), with min, max and quartiles;
- per pair of contenders: the **same-round ratio**, computed inside each round and then
  summarised (median, min-max, quartiles) over the rounds. Drift between rounds cancels out;
  what is left shows as the ratio's spread;
- per contender: the Python function calls made by a fixed number of operations (counted with
  ``sys.setprofile``, after a warm-up), which noise does not move.

Adding a suite
--------------
A module lists itself in :data:`SUITE_MODULES` and registers a factory for a *group* (what
``--suite GROUP`` selects). The factory receives the run's :class:`Options` and yields
:class:`Suite` objects. A contender is a name and a ``setup(env)`` callable: setup runs untimed
before each timed run and returns the runner, a no-argument callable that performs exactly
``env.operations`` operations (for ``measure="memory"``: a factory of one live instance). Helpers
kept across rounds (a store, a connection) go through ``env.keep(key, factory)`` and are closed
when the suite ends. For example, scaling one operation with a size::

    @register("scaling")
    def find_scaling(options: Options) -> Iterator[Suite]:
        yield Suite(
            name="scaling.find-instances",
            title="find at 100,000 vs 1,000 instances",
            unit="find",
            contenders=(
                Contender("100,000 instances", partial(setup_find, size=100_000)),
                Contender("1,000 instances", partial(setup_find, size=1_000)),
            ),
            operations=50,
            rounds=9,
        )

The first contender is the subject: tables show its ratio to each other contender (the JSON
holds every pair). ``processes=4`` runs each contender in four worker processes at once (kept
for the whole run; its contenders must then be picklable: module-level functions or
``functools.partial`` of them); the figure is then the throughput over all of them.
``skip="reason"`` keeps a suite in the report, unrun, with its reason.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing
import statistics
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "SUITE_MODULES",
    "BenchmarkError",
    "Contender",
    "Env",
    "Options",
    "Suite",
    "count_calls",
    "each",
    "register",
    "run_suites",
    "select",
]

SUITE_MODULES = ("tests.benchmarks.core", "tests.benchmarks.store", "tests.benchmarks.graph")
"""Modules that register suites; add yours here."""

Measure = Literal["time", "rate", "memory"]
UNITS: dict[str, str] = {"time": "µs", "rate": "/s", "memory": "B"}
"""The unit of a suite's figures: µs per operation, operations per second (over all
processes), bytes per live instance."""


class BenchmarkError(Exception):
    """A suite could not run (a contender raised, a worker died, a bad selection)."""


@dataclass(frozen=True)
class Options:
    """What suite factories may depend on, fixed for one run."""

    quick: bool
    """Tiny sizes, for the smoke test; factories may shrink what they build."""
    workdir: Path
    """A scratch directory for this run (database files); removed when the run ends."""
    postgres: str | None = None
    """A PostgreSQL URL, or ``None`` (PostgreSQL suites are then skipped)."""


@dataclass
class Env:
    """What a contender's ``setup`` is told, and where it keeps helpers between rounds."""

    operations: int
    """How many operations the returned runner must perform."""
    round: int
    """The round (from 0); -1 for the warm-up, -2 for the call count."""
    worker: int = 0
    """This process's index among the suite's processes (0 in-process)."""
    processes: int = 1
    """How many processes run the contender at once."""
    cache: dict[str, Any] = field(default_factory=dict)

    def keep(self, key: str, factory: Callable[[], Any]) -> Any:
        """The helper stored under ``key`` in this process, made by ``factory`` on first use
        and kept until the suite ends (then closed, if it has ``close``). The suite's
        contenders share these keys, so two of them may share one store on purpose."""
        if key not in self.cache:
            self.cache[key] = factory()
        return self.cache[key]


Runner = Callable[[], object]
Setup = Callable[[Env], Runner]


@dataclass(frozen=True)
class Contender:
    """One way of doing a suite's work."""

    name: str
    setup: Setup
    """Untimed; returns the runner of ``env.operations`` operations."""
    calls: bool = True
    """Count its Python calls (off for contenders whose count is not deterministic)."""


@dataclass(frozen=True)
class Suite:
    """A comparison: contenders doing the same work, timed in interleaved rounds."""

    name: str
    """Unique, ``group.what``; ``--suite`` accepts it, its group or a glob."""
    title: str
    """The row label in tables, e.g. ``event`` or ``SQLite NORMAL, 4 processes``."""
    contenders: tuple[Contender, ...]
    """The first is the subject: tables show its ratio to each of the others."""
    unit: str = "operation"
    """What one operation is (``event``, ``send``, ``instance``)."""
    measure: Measure = "time"
    operations: int = 400
    """Per contender per round (per process with ``processes > 1``)."""
    rounds: int = 15
    quick_operations: int = 5
    quick_rounds: int = 2
    processes: int = 1
    call_operations: int = 20
    """Operations whose Python calls are counted (even, so alternating operations balance)."""
    skip: str | None = None
    """Why the suite cannot run here; it is reported, not run."""
    note: str = ""
    """One line for the report: what the contenders do, what differs between them."""
    table: str = ""
    """The table it is printed in (suites with the same table and contenders share one);
    defaults to the group."""
    prepare: Callable[[], None] | None = None
    """Run once in the main process before the suite (not pickled to workers)."""
    finish: Callable[[], None] | None = None
    """Run once in the main process after the suite, even when it failed."""

    @property
    def group(self) -> str:
        return self.name.partition(".")[0]

    def sized(self, *, quick: bool, rounds: int | None, operations: int | None) -> Suite:
        """This suite with the run's sizes applied."""
        return replace(
            self,
            rounds=rounds or (self.quick_rounds if quick else self.rounds),
            operations=operations or (self.quick_operations if quick else self.operations),
            call_operations=min(self.call_operations, 4) if quick else self.call_operations,
        )


Factory = Callable[[Options], Iterable[Suite]]
_FACTORIES: list[tuple[str, Factory]] = []


def register(group: str) -> Callable[[Factory], Factory]:
    """Register a factory of suites for ``group`` (a decorator)."""

    def decorate(factory: Factory) -> Factory:
        _FACTORIES.append((group, factory))
        return factory

    return decorate


def each(operation: Callable[[], object], operations: int) -> Runner:
    """A runner calling ``operation`` ``operations`` times (the usual shape)."""

    def run() -> None:
        for _ in range(operations):
            operation()

    return run


def all_suites(options: Options) -> list[Suite]:
    """Every registered suite, in registration order."""
    for module in SUITE_MODULES:
        importlib.import_module(module)
    order = {module: index for index, module in enumerate(SUITE_MODULES)}
    factories = sorted(_FACTORIES, key=lambda item: order.get(item[1].__module__, len(order)))
    suites = [s for _, factory in factories for s in factory(options)]
    for suite in suites:
        if not suite.name.startswith(suite.group + ".") or suite.group == suite.name:
            msg = f"Suite name {suite.name!r} must be 'group.what'."
            raise BenchmarkError(msg)
    names = [s.name for s in suites]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        msg = f"Duplicate suite names: {', '.join(duplicates)}."
        raise BenchmarkError(msg)
    return suites


def select(suites: list[Suite], patterns: Iterable[str]) -> list[Suite]:
    """The suites a pattern names: a group, a suite name or a glob; all without patterns.

    Raises:
        BenchmarkError: a pattern selects nothing (the message lists what exists).
    """
    patterns = [p.strip() for item in patterns for p in item.split(",") if p.strip()]
    if not patterns:
        return suites
    chosen = []
    for pattern in patterns:
        hits = [s for s in suites if s.group == pattern or fnmatchcase(s.name, pattern)]
        if not hits:
            groups = sorted({s.group for s in suites})
            msg = (
                f"--suite {pattern!r} selects nothing; groups: {', '.join(groups)}; suites: "
                f"{', '.join(s.name for s in suites)} (globs like 'store.*' work too)."
            )
            raise BenchmarkError(msg)
        chosen.extend(s for s in hits if s not in chosen)
    return [s for s in suites if s in chosen]


# -- measuring -------------------------------------------------------------------------------


def _clock() -> int:
    """Nanoseconds on a clock shared by every process of the machine."""
    if hasattr(time, "CLOCK_MONOTONIC"):
        return time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    return time.perf_counter_ns()  # pragma: no cover - not POSIX: in-process only


def _timed(runner: Runner) -> tuple[int, int]:
    gc.collect()
    begin = _clock()
    runner()
    return begin, _clock()


def _bytes_per_instance(make: Runner, count: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        live = [make() for _ in range(count)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del live
    return (after - before) / count


def count_calls(runner: Runner) -> int:
    """How many Python function calls ``runner()`` makes (its own frame not counted).

    The garbage collector is paused meanwhile: a collection runs finalizers and weakref
    callbacks at moments that depend on the whole process's allocations, not the operation.
    """
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    sys.setprofile(profile)
    try:
        runner()
    finally:
        sys.setprofile(None)
        if enabled:
            gc.enable()
    return count - 1


def _close_cache(cache: dict[str, Any]) -> None:
    for value in reversed(list(cache.values())):
        close = getattr(value, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
    cache.clear()


class _Workers:
    """Worker processes kept for the whole run; a suite with ``processes=p`` uses p of them."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._pipes: list[Any] = []
        self._processes: list[Any] = []

    def ensure(self, count: int) -> None:
        while len(self._processes) < count:
            parent, child = self._context.Pipe()
            process = self._context.Process(
                target=_worker_main, args=(child, len(self._processes)), daemon=True
            )
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)

    def ask(self, count: int, message: tuple[Any, ...]) -> list[Any]:
        """Send ``message`` to the first ``count`` workers, then collect every answer."""
        pipes = self._pipes[:count]
        for pipe in pipes:
            pipe.send(message)
        answers = []
        for index, pipe in enumerate(pipes):
            try:
                status, value = pipe.recv()
            except EOFError:
                msg = f"Benchmark worker {index} died during {message[0]!r}."
                raise BenchmarkError(msg) from None
            answers.append((status, value))
        failures = [value for status, value in answers if status == "error"]
        if failures:
            msg = f"A benchmark worker failed during {message[0]!r}:\n{failures[0]}"
            raise BenchmarkError(msg)
        return [value for _, value in answers]

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
        self._pipes.clear()
        self._processes.clear()


def _worker_main(pipe: Any, worker: int) -> None:
    """A worker's loop: load a suite, set up a contender, run it, report its time window."""
    suite: Suite | None = None
    processes = 1
    cache: dict[str, Any] = {}
    runner: Runner | None = None
    while True:
        message = pipe.recv()
        try:
            kind = message[0]
            result: Any = None
            if kind == "stop":
                _close_cache(cache)
                pipe.send(("ok", None))
                return
            if kind == "suite":
                _close_cache(cache)
                suite, processes = message[1], message[2]
            elif kind == "setup":
                assert suite is not None
                index, round_, operations = message[1:]
                env = Env(operations, round_, worker, processes, cache)
                runner = suite.contenders[index].setup(env)
            elif kind == "run":
                assert runner is not None
                result = _timed(runner)
                runner = None
            elif kind == "end":
                _close_cache(cache)
            pipe.send(("ok", result))
        except BaseException:
            pipe.send(("error", traceback.format_exc()))


def _spread(samples: list[float]) -> dict[str, Any]:
    quartiles = (
        statistics.quantiles(samples, n=4, method="inclusive")
        if len(samples) > 1
        else [samples[0]] * 3
    )
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "samples": samples,
    }


class _SuiteRun:
    """One suite's rounds, in-process or in workers."""

    def __init__(self, suite: Suite, workers: _Workers) -> None:
        self.suite = suite
        self.workers = workers
        self.in_workers = suite.processes > 1
        self.cache: dict[str, Any] = {}

    def _value(self, index: int, round_: int, operations: int) -> float:
        """One contender's figure for one round of ``operations`` operations."""
        suite = self.suite
        if self.in_workers:
            self.workers.ask(suite.processes, ("setup", index, round_, operations))
            windows = self.workers.ask(suite.processes, ("run",))
            elapsed = max(end for _, end in windows) - min(begin for begin, _ in windows)
            total = operations * suite.processes
        else:
            env = Env(operations, round_, cache=self.cache)
            runner = suite.contenders[index].setup(env)
            if suite.measure == "memory":
                return _bytes_per_instance(runner, operations)
            begin, end = _timed(runner)
            elapsed, total = end - begin, operations
        elapsed = max(elapsed, 1)
        return total * 1e9 / elapsed if suite.measure == "rate" else elapsed / 1e3 / total

    def _calls(self, index: int) -> int | None:
        suite = self.suite
        contender = suite.contenders[index]
        if self.in_workers or suite.measure == "memory" or not contender.calls:
            return None
        operations = suite.call_operations
        contender.setup(Env(operations, -2, cache=self.cache))()  # warm the same path
        return count_calls(contender.setup(Env(operations, -2, cache=self.cache)))

    def run(self) -> dict[str, Any]:
        suite = self.suite
        count = len(suite.contenders)
        if self.in_workers:
            self.workers.ensure(suite.processes)
            portable = replace(suite, prepare=None, finish=None)  # main-process hooks
            self.workers.ask(suite.processes, ("suite", portable, suite.processes))
        try:
            for index in range(count):  # warm-up: lazy caches, page cache, connections
                self._value(index, -1, max(1, suite.operations // 4))
            samples: list[list[float]] = [[] for _ in range(count)]
            for round_ in range(suite.rounds):
                for step in range(count):
                    index = (round_ + step) % count
                    samples[index].append(self._value(index, round_, suite.operations))
            calls = [self._calls(index) for index in range(count)]
        finally:
            if self.in_workers:
                self.workers.ask(suite.processes, ("end",))
            _close_cache(self.cache)
        return _suite_result(suite, samples, calls)


def _suite_result(
    suite: Suite, samples: list[list[float]], calls: list[int | None]
) -> dict[str, Any]:
    names = [c.name for c in suite.contenders]
    contenders = [
        {
            "name": name,
            **_spread(values),
            "calls": count,
            "calls_per_operation": count / suite.call_operations if count is not None else None,
        }
        for name, values, count in zip(names, samples, calls, strict=True)
    ]
    ratios = [
        {
            "pair": [names[a], names[b]],
            **_spread([x / y for x, y in zip(samples[a], samples[b], strict=True)]),
        }
        for a in range(len(names))
        for b in range(a + 1, len(names))
    ]
    return {**_describe(suite), "skipped": None, "contenders": contenders, "ratios": ratios}


def _describe(suite: Suite) -> dict[str, Any]:
    return {
        "name": suite.name,
        "group": suite.group,
        "table": suite.table or suite.group,
        "title": suite.title,
        "note": suite.note,
        "unit": suite.unit,
        "measure": suite.measure,
        "value_unit": UNITS[suite.measure],
        "rounds": suite.rounds,
        "operations": suite.operations,
        "processes": suite.processes,
        "call_operations": suite.call_operations,
        "contender_names": [c.name for c in suite.contenders],
    }


def run_suites(
    suites: list[Suite], progress: Callable[[str], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Run each suite (already sized) and yield its result; skipped suites yield their reason.

    Raises:
        BenchmarkError: a contender raised or a worker died.
    """
    workers = _Workers()
    try:
        for suite in suites:
            if suite.skip is not None:
                yield {**_describe(suite), "skipped": suite.skip, "contenders": [], "ratios": []}
                continue
            if progress:
                progress(suite.name)
            if suite.prepare:
                suite.prepare()
            try:
                result = _SuiteRun(suite, workers).run()
            except BenchmarkError:
                raise
            except Exception as exc:
                msg = f"Suite {suite.name!r} failed: {type(exc).__name__}: {exc}"
                raise BenchmarkError(msg) from exc
            finally:
                if suite.finish:
                    suite.finish()
            yield result
    finally:
        workers.close()
