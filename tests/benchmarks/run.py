"""`make bench`: run the benchmarks, print a table, write JSON and Markdown results.

Results go to ``tests/benchmarks/results/<UTC time>-<commit>.json`` (for comparing commits)
and ``latest.json`` / ``latest.md`` (what the README links to).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks import core, store  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def table(report: dict[str, Any]) -> str:
    results = report["results"]
    metrics = list(next(iter(results.values())))
    names = list(results)
    header = ["metric", *names, "lifecyclekit / psm"]
    rows = [
        [metric, *(f"{results[n][metric]:,.1f}" for n in names)]
        + [f"{report['ratio_vs_psm'][metric]:.2f}x"]
        for metric in metrics
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def store_table(rows: dict[str, dict[str, float]]) -> str:
    header = ["store", "lifecyclekit send/s", "raw db/s", "lifecyclekit / raw"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for label, row in rows.items():
        lines.append(
            f"| {label} | {row['lifecyclekit send/s']:,.0f} | {row['raw db/s']:,.0f} | "
            f"{row['lifecyclekit / raw']:.2f}x |"
        )
    return "\n".join(lines)


def ratio_table(rows: dict[str, dict[str, float]], label: str) -> str:
    """A table of two timings and their ratio per row."""
    columns = list(next(iter(rows.values())))
    header = [label, *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for name, row in rows.items():
        cells = [f"{row[c]:,.0f}" if c != "ratio" else f"{row[c]:.2f}x" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _postgres_schema(url: str, schema: str) -> str:
    """``url`` with its own schema (created if needed): a second store in one database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def run_store_suites(folder: str, postgres: str | None, quick: bool) -> dict[str, Any]:
    """The three store suites, for SQLite and (given a URL) PostgreSQL."""
    urls = {
        "sqlite synchronous=FULL": f"sqlite:///{folder}/full.db",
        "sqlite synchronous=NORMAL": f"sqlite:///{folder}/normal.db?synchronous=normal",
    }
    histories = {"sqlite synchronous=NORMAL": f"sqlite:///{folder}/history.db?synchronous=normal"}
    finds = {"sqlite": (f"sqlite:///{folder}/small.db", f"sqlite:///{folder}/big.db")}
    if postgres:
        urls["postgresql"] = _postgres_schema(postgres, "lkbench_send")
        histories["postgresql"] = _postgres_schema(postgres, "lkbench_history")
        finds["postgresql"] = (
            _postgres_schema(postgres, "lkbench_small"),
            _postgres_schema(postgres, "lkbench_big"),
        )
    records, big = (300, 3_000) if quick else (10_000, 100_000)
    return {
        "store": store.run_store(urls, sends=20 if quick else 200),
        "store_history": store.run_history_cost(histories, records=records),
        "store_find": store.run_find_scaling(finds, big=big),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--store-only", action="store_true", help="only the store suites")
    parser.add_argument("--postgres", default=os.environ.get("LIFECYCLEKIT_TEST_POSTGRES"))
    args = parser.parse_args(argv)
    sizes = {"per_batch": 50, "batches": 3, "instances": 200} if args.quick else {}
    if args.store_only:
        with tempfile.TemporaryDirectory() as folder:
            suites = run_store_suites(folder, args.postgres, args.quick)
        print(store_table(suites["store"]))
        print("\n" + ratio_table(suites["store_history"], "send cost"))
        print("\n" + ratio_table(suites["store_find"], "find cost"))
        return
    report = core.run(**sizes)
    with tempfile.TemporaryDirectory() as folder:
        report |= run_store_suites(folder, args.postgres, args.quick)
    report["environment"] = {
        "python": platform.python_version(),
        "python-statemachine": version("python-statemachine"),
        "pydantic": version("pydantic"),
        "transitions": version("transitions"),
        "machine": platform.machine(),
        "commit": _commit(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    text = (
        table(report)
        + "\n\n"
        + store_table(report["store"])
        + "\n\n"
        + ratio_table(report["store_history"], "send cost")
        + "\n\n"
        + ratio_table(report["store_find"], "find cost")
    )
    print(text)
    if args.quick:
        return
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = json.dumps(report, indent=2)
    (RESULTS / f"{stamp}-{report['environment']['commit']}.json").write_text(payload + "\n")
    (RESULTS / "latest.json").write_text(payload + "\n")
    env = report["environment"]
    (RESULTS / "latest.md").write_text(
        "# Benchmark results\n\n"
        f"Median per operation over {report['batches']} batches of {report['per_batch']}; "
        f"memory over {report['instances']:,} live instances. Python {env['python']}, "
        f"python-statemachine {env['python-statemachine']}, pydantic {env['pydantic']}, "
        f"transitions {env['transitions']}, commit {env['commit']}, {env['at']}.\n\n"
        f"{text}\n\n"
        "`event` is one event without payload; `event+payload` validates a pydantic payload "
        "(by hand for the baselines). The baselines' snapshot/restore are `{state, context}` "
        "dicts built by hand; lifecyclekit's also carry history and are validated on restore. "
        "Store rows: transitions per second over all processes (each on instances of its "
        "own); raw db is one row read, one compare-and-set update and one history insert per "
        "transition through the same driver; lifecyclekit's send also writes the change "
        "feed. Send cost: one send on an instance with 10 records against one with 10,000, "
        "alternating batch by batch; find cost: 100 rows from 1,000 against 100,000 "
        "instances, alternating.\n"
    )
    print(f"\nwritten to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
