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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--postgres", default=os.environ.get("LIFECYCLEKIT_TEST_POSTGRES"))
    args = parser.parse_args(argv)
    sizes = {"per_batch": 50, "batches": 3, "instances": 200} if args.quick else {}
    report = core.run(**sizes)
    with tempfile.TemporaryDirectory() as folder:
        urls = {
            "sqlite synchronous=FULL": f"sqlite:///{folder}/full.db",
            "sqlite synchronous=NORMAL": f"sqlite:///{folder}/normal.db?synchronous=normal",
        }
        if args.postgres:
            urls["postgresql"] = args.postgres
        report["store"] = store.run_store(urls, sends=20 if args.quick else 200)
    report["environment"] = {
        "python": platform.python_version(),
        "python-statemachine": version("python-statemachine"),
        "pydantic": version("pydantic"),
        "transitions": version("transitions"),
        "machine": platform.machine(),
        "commit": _commit(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    text = table(report) + "\n\n" + store_table(report["store"])
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
        "transition through the same driver; lifecyclekit's send also returns the snapshot "
        "with its whole history.\n"
    )
    print(f"\nwritten to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
