"""The benchmark harness runs every suite (tiny sizes) and reports what it promises.

No figure is asserted: speed is measured by ``make bench`` only. What holds is the report's
shape: every contender of every suite has a median over the rounds, ratios are computed inside
each round, call counts are exact and repeatable, and a run writes nothing tracked.
"""

from __future__ import annotations

import json
import operator
import os
import shutil
import statistics
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks import harness, run
from tests.benchmarks.store import POSTGRES_VARIABLES, postgres_url

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def _in_git_checkout() -> bool:
    return shutil.which("git") is not None and _git("rev-parse", "--git-dir").returncode == 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    """One quick run of every suite, written to a temporary folder; the git status around it."""
    if os.environ.get("CI") and postgres_url() is None:
        pytest.fail(f"CI must run the PostgreSQL benchmarks: set {POSTGRES_VARIABLES[1]}")
    out = tmp_path_factory.mktemp("bench")
    before = _git("status", "--porcelain").stdout if _in_git_checkout() else ""
    report = run.run(["--quick", "--out", str(out)])
    return report, out, before


def _all_suite_names() -> list[str]:
    options = harness.Options(quick=True, workdir=Path("unused"), postgres=None)
    return [s.name for s in harness.all_suites(options)]


def test_every_suite_runs_and_every_contender_has_a_median(quick_run: Any) -> None:
    """Each registered suite is in the report; each one that ran has, per contender, one
    sample per round and their median; skipped ones say why."""
    report, _, _ = quick_run
    assert [s["name"] for s in report["suites"]] == _all_suite_names()
    for suite in report["suites"]:
        if suite["skipped"] is not None:
            assert "PostgreSQL" in suite["skipped"], suite["name"]
            assert postgres_url() is None
            continue
        assert [c["name"] for c in suite["contenders"]] == suite["contender_names"]
        for contender in suite["contenders"]:
            samples = contender["samples"]
            assert len(samples) == suite["rounds"], (suite["name"], contender["name"])
            assert all(value > 0 for value in samples)
            assert sorted(samples)[0] == contender["min"]
            assert sorted(samples)[-1] == contender["max"]
            assert contender["min"] <= contender["q1"] <= contender["median"]
            assert contender["median"] <= contender["q3"] <= contender["max"]


def test_groups_cover_core_store_and_scaling(quick_run: Any) -> None:
    """The baselines and back-ends the comparisons promise are all there."""
    report, _, _ = quick_run
    by_name = {s["name"]: s for s in report["suites"]}
    core = by_name["core.event"]["contender_names"]
    assert core == ["lifecyclekit", "python-statemachine", "transitions", "dict table"]
    for name in ("event", "event-payload", "create", "restore", "snapshot", "memory"):
        assert by_name[f"core.{name}"]["contender_names"] == core
    assert by_name["core.memory"]["measure"] == "memory"
    for backend in ("sqlite-normal", "sqlite-full", "postgres"):
        for processes in (1, 4):
            suite = by_name[f"store.send-{backend}-{processes}p"]
            assert suite["processes"] == processes
            assert suite["contender_names"] == ["lifecyclekit", "raw database"]
            assert suite["measure"] == "rate"
    assert by_name["scaling.send-history"]["contender_names"] == ["200 records", "10 records"]
    assert by_name["scaling.find-instances"]["contender_names"] == [
        "3,000 instances",
        "300 instances",
    ]


def test_ratios_are_same_round(quick_run: Any) -> None:
    """Every pair's ratio samples are the two contenders' samples of the same round, divided,
    and its median is theirs."""
    report, _, _ = quick_run
    for suite in report["suites"]:
        if suite["skipped"] is not None:
            continue
        samples = {c["name"]: c["samples"] for c in suite["contenders"]}
        names = suite["contender_names"]
        expected_pairs = [[a, b] for i, a in enumerate(names) for b in names[i + 1 :]]
        assert [r["pair"] for r in suite["ratios"]] == expected_pairs
        for r in suite["ratios"]:
            a, b = r["pair"]
            per_round = [x / y for x, y in zip(samples[a], samples[b], strict=True)]
            assert r["samples"] == per_round
            assert r["median"] == statistics.median(per_round)


def test_call_counts_are_exact_and_repeatable(quick_run: Any) -> None:
    """Call counts are positive integers for every in-process timed contender, absent for
    worker-process and memory suites, and the same when a core operation is counted again."""
    report, _, _ = quick_run
    for suite in report["suites"]:
        if suite["skipped"] is not None:
            continue
        for contender in suite["contenders"]:
            calls = contender["calls"]
            if suite["processes"] > 1 or suite["measure"] == "memory":
                assert calls is None
            else:
                assert isinstance(calls, int), (suite["name"], contender["name"])
                assert calls > 0
    options = harness.Options(quick=True, workdir=Path("unused"))
    suites = {s.name: s for s in harness.all_suites(options)}
    by_name = {s["name"]: s for s in report["suites"]}
    for name in ("core.event", "core.event-payload", "core.create", "core.restore"):
        suite, reported = suites[name], by_name[name]
        for contender, figures in zip(suite.contenders, reported["contenders"], strict=True):
            operations = reported["call_operations"]
            twice = [
                harness.count_calls(contender.setup(harness.Env(operations, -2))) for _ in range(2)
            ]
            assert twice == [figures["calls"]] * 2, (name, contender.name)


def test_results_are_written_and_nothing_tracked_changes(quick_run: Any) -> None:
    """The run wrote JSON and Markdown to the folder it was given (the report and its
    tables), left the checkout's git status as it was, and its default folder is ignored."""
    report, out, before = quick_run
    latest = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert latest == json.loads(json.dumps(report))
    text = (out / "latest.md").read_text(encoding="utf-8")
    assert "| event | " in text
    assert "lifecyclekit / raw database" in text
    assert len(list(out.glob("*-*.json"))) == 1
    if not _in_git_checkout():
        pytest.skip("not a git checkout: nothing to compare")
    assert _git("status", "--porcelain").stdout == before
    default = run.RESULTS.relative_to(ROOT) / "latest.json"
    assert _git("check-ignore", "-q", str(default)).returncode == 0
    assert _git("ls-files", str(run.RESULTS.relative_to(ROOT))).stdout == ""


def test_rounds_interleave_contenders_in_rotated_order(tmp_path: Path) -> None:
    """Each round sets up every contender once, after one warm-up each, in an order rotated
    by one place per round; the runner performs the suite's operations."""
    seen: list[tuple[str, int, int]] = []

    def setup(name: str, env: harness.Env) -> harness.Runner:
        seen.append((name, env.round, env.operations))
        return harness.each(lambda: None, env.operations)

    suite = harness.Suite(
        name="test.order",
        title="order",
        contenders=tuple(harness.Contender(n, partial(setup, n)) for n in "abc"),
        operations=8,
        rounds=3,
        call_operations=2,
    )
    (result,) = harness.run_suites([suite])
    assert seen[:3] == [("a", -1, 2), ("b", -1, 2), ("c", -1, 2)]
    assert seen[3:12] == [
        ("a", 0, 8), ("b", 0, 8), ("c", 0, 8),
        ("b", 1, 8), ("c", 1, 8), ("a", 1, 8),
        ("c", 2, 8), ("a", 2, 8), ("b", 2, 8),
    ]  # fmt: skip
    assert [c["calls"] for c in result["contenders"]] == [2, 2, 2]  # the lambda, twice


def test_memory_suite_measures_bytes_per_instance() -> None:
    """A contender keeping 4 KiB per instance measures about four times one keeping 1 KiB."""
    suite = harness.Suite(
        name="test.memory",
        title="memory",
        measure="memory",
        contenders=(
            harness.Contender("4k", lambda env: partial(bytearray, 4096)),
            harness.Contender("1k", lambda env: partial(bytearray, 1024)),
        ),
        operations=200,
        rounds=2,
    )
    (result,) = harness.run_suites([suite])
    big, small = (c["median"] for c in result["contenders"])
    assert 4096 <= big < 4096 + 256
    assert 1024 <= small < 1024 + 256
    assert 3.5 < result["ratios"][0]["median"] < 4.0


def test_a_failing_contender_names_the_suite_and_the_error() -> None:
    """A contender that raises, in-process or in a worker process, stops the run with the
    suite's name and the exception, instead of a hang or a silent gap."""
    broken = harness.Contender("broken", lambda env: operator.truediv(1, 0))
    suite = harness.Suite(name="test.broken", title="broken", contenders=(broken,))
    with pytest.raises(harness.BenchmarkError, match=r"'test\.broken' failed: ZeroDivisionError"):
        list(harness.run_suites([suite]))
    in_workers = harness.Suite(
        name="test.broken-workers",
        title="broken",
        contenders=(harness.Contender("broken", operator.itemgetter("missing")),),
        processes=2,
    )
    with pytest.raises(
        harness.BenchmarkError, match="(?s)worker failed during 'setup'.*TypeError"
    ):
        list(harness.run_suites([in_workers]))


def test_unknown_selection_lists_what_exists(capsys: pytest.CaptureFixture[str]) -> None:
    """``--suite`` with a pattern that selects nothing exits 2 and lists groups and suites."""
    with pytest.raises(SystemExit) as exit_info:
        run.run(["--suite", "nope", "--no-write"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--suite 'nope' selects nothing; groups: core, graph, scaling, store" in err
    assert "core.event" in err


def test_selection_by_group_name_and_glob() -> None:
    """A group, an exact name and a glob each select their suites, in registration order."""
    suites = harness.all_suites(harness.Options(quick=True, workdir=Path("unused")))

    def names(*patterns: str) -> list[str]:
        return [s.name for s in harness.select(suites, patterns)]

    scaling = [
        "scaling.send-history",
        "scaling.send-history-postgres",
        "scaling.find-instances",
        "scaling.find-instances-postgres",
    ]
    assert names("scaling") == scaling
    assert names("core.create,scaling") == ["core.create", *scaling]
    assert names("store.*-4p") == [
        "store.send-sqlite-normal-4p",
        "store.send-sqlite-full-4p",
        "store.send-postgres-4p",
    ]
    assert names() == [s.name for s in suites]
