"""`make bench`: run the benchmark suites, print Markdown tables, write JSON and Markdown.

    python tests/benchmarks/run.py                      # every suite (a few minutes)
    python tests/benchmarks/run.py --suite core         # a group, a suite name or a glob
    python tests/benchmarks/run.py --suite 'store.*-4p' --rounds 5
    python tests/benchmarks/run.py --quick --out /tmp/b # tiny sizes (the smoke test)
    python tests/benchmarks/run.py --list

Results go to ``tests/benchmarks/results/`` (git-ignored): ``<UTC time>-<commit>.json`` and
``.md`` per run, and ``latest.json`` / ``latest.md``. Nothing tracked is ever written; the
README's figures are copied from a run by hand. See ``harness.py`` for how suites are built and
measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.benchmarks import harness  # noqa: E402
from tests.benchmarks.store import postgres_url  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def environment(argv: list[str]) -> dict[str, Any]:
    """What a figure depends on besides the code: versions, machine, load, commit."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+changes"
    return {
        "command": " ".join(["python tests/benchmarks/run.py", *argv]).strip(),
        "commit": commit,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": {
            name: _version(name)
            for name in ("lifecyclekit", "python-statemachine", "pydantic", "transitions")
        }
        | {"sqlite": sqlite3.sqlite_version, "psycopg": _version("psycopg")},
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": _load(),
    }


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not POSIX
        return None


# -- Markdown --------------------------------------------------------------------------------


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def figure(value: float, measure: str) -> str:
    """One contender's median, with its unit."""
    if measure == "memory":
        return f"{value / 1024:.1f} KiB" if value >= 1024 else f"{value:,.0f} B"
    if measure == "rate":
        return f"{value:,.0f}/s"
    return f"{_number(value)} µs"


def ratio(spread: dict[str, float]) -> str:
    """A same-round ratio: median (interquartile range over the rounds)."""
    return f"{_number(spread['median'])}× ({_number(spread['q1'])}–{_number(spread['q3'])})"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _tables(results: list[dict[str, Any]]) -> list[tuple[str, list[str], list[dict[str, Any]]]]:
    """Suites sharing a table name and contenders, in first-seen order."""
    blocks: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for result in results:
        key = (result["table"], tuple(result["contender_names"]))
        blocks.setdefault(key, []).append(result)
    return [(table, list(names), rows) for (table, names), rows in blocks.items()]


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: per table, medians and the subject's same-round ratios, then
    Python calls per operation; skipped suites as notes."""
    out: list[str] = []
    for table, names, rows in _tables(report["suites"]):
        ran = [r for r in rows if r["skipped"] is None]
        out.append(f"### {table}\n")
        if ran:
            subject, others = names[0], names[1:]
            header = ["", *names, *(f"{subject} / {o}" for o in others), "rounds × ops"]
            out.append(_row(header))
            out.append(_row(["---"] + ["---:"] * (len(header) - 1)))
            for r in ran:
                medians = {c["name"]: c["median"] for c in r["contenders"]}
                pairs = {tuple(x["pair"]): x for x in r["ratios"]}
                sizes = f"{r['rounds']} × {r['operations']}"
                if r["processes"] > 1:
                    sizes += f" × {r['processes']} proc"
                out.append(
                    _row(
                        [
                            r["title"],
                            *(figure(medians[n], r["measure"]) for n in names),
                            *(ratio(pairs[subject, o]) for o in others),
                            sizes,
                        ]
                    )
                )
            counted = [r for r in ran if any(c["calls"] is not None for c in r["contenders"])]
            if counted:
                out.append(f"\nPython calls per {counted[0]['unit']} (over a fixed run, exact):\n")
                out.append(_row(["", *names]))
                out.append(_row(["---"] + ["---:"] * len(names)))
                for r in counted:
                    cells = [
                        f"{c['calls_per_operation']:,.1f}".removesuffix(".0")
                        if c["calls"] is not None
                        else "–"
                        for c in r["contenders"]
                    ]
                    out.append(_row([r["title"], *cells]))
        skipped = [f"- {r['title']}: skipped. {r['skipped']}" for r in rows if r["skipped"]]
        notes = sorted({r["note"] for r in ran if r["note"]})
        if skipped or notes:
            out.append("")
        out.extend(skipped)
        out.extend(f"- {note}" for note in notes)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def header(report: dict[str, Any]) -> str:
    env = report["environment"]
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    return (
        "# Benchmark results\n\n"
        f"`{env['command']}` at commit {env['commit']}, {env['at']}; {env['machine']}; "
        f"Python {env['python']}; {packages}; load average before {env['load_before']}, "
        f"after {env.get('load_after')}.\n\n"
        "Contenders run interleaved: each round runs every contender once (order rotated per "
        "round) after an untimed warm-up. Figures are medians over the rounds (µs per "
        "operation, sends per second over all processes, or bytes per live instance); ratios "
        "are computed inside each round, shown as median (interquartile range over the "
        "rounds); the JSON file has every sample, min and max.\n"
    )


# -- running ---------------------------------------------------------------------------------


def run(
    argv: list[str] | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Parse ``argv``, run the selected suites, print and write the report; return it."""
    parser = argparse.ArgumentParser(
        description="Run lifecyclekit's benchmark suites (interleaved, same-round ratios)."
    )
    parser.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a group (core, store, scaling), a suite name or a glob; repeatable",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds per suite (default: the suite's)")
    parser.add_argument(
        "--operations", type=int, help="operations per contender per round (default: suite's)"
    )
    parser.add_argument("--postgres", default=postgres_url(), help="a PostgreSQL URL")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    args = parser.parse_args(argv)
    for name in ("rounds", "operations"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1, got {value}")
    argv = list(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="lifecyclekit-bench-"))
    try:
        options = harness.Options(quick=args.quick, workdir=workdir, postgres=args.postgres)
        try:
            suites = harness.select(harness.all_suites(options), args.suite)
        except harness.BenchmarkError as exc:
            parser.error(str(exc))
        if args.list:
            for s in suites:
                print(f"{s.name:32} {s.title}" + (f"  [skipped: {s.skip}]" if s.skip else ""))
            return {}
        sized = [
            s.sized(quick=args.quick, rounds=args.rounds, operations=args.operations)
            for s in suites
        ]
        report: dict[str, Any] = {"environment": environment(argv)}
        _warn_if_busy(report["environment"]["load_before"])
        report["suites"] = list(harness.run_suites(sized, progress=progress))
        report["environment"]["load_after"] = _load()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = header(report) + "\n" + markdown(report)
    print(text)
    if not args.no_write:
        write(report, text, args.out)
    return report


def _warn_if_busy(load: list[float] | None) -> None:
    cpus = os.cpu_count() or 1
    if load and load[0] > cpus / 2:
        print(
            f"note: load average {load[0]} on {cpus} CPUs: something else is running. Same-"
            "round ratios still compare like with like; absolute figures will be slower and "
            "noisier than on an idle machine.",
            file=sys.stderr,
        )


def write(report: dict[str, Any], text: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{report['environment']['commit']}"
    payload = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    for stem in (name, "latest"):
        (folder / f"{stem}.json").write_text(payload, encoding="utf-8")
        (folder / f"{stem}.md").write_text(text, encoding="utf-8")
    print(f"written to {folder / (name + '.json')} and latest.md", file=sys.stderr)


def main() -> None:
    try:
        run(progress=lambda name: print(f"running {name} ...", file=sys.stderr, flush=True))
    except harness.BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
