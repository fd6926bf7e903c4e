"""The benchmark harness runs (tiny sizes) and reports every figure for every contender."""

from __future__ import annotations

from tests.benchmarks import core


def test_benchmark_reports_all_figures_and_ratios() -> None:
    """Each contender has each operation's median and a memory figure; ratios are computed."""
    report = core.run(per_batch=5, batches=2, instances=20)
    expected = {f"{op} (us)" for op in core.OPERATIONS} | {"bytes/instance"}
    assert set(report["results"]) == {"lifecyclekit", "python-statemachine", "transitions"}
    for figures in report["results"].values():
        assert set(figures) == expected
        assert all(value > 0 for value in figures.values())
    assert set(report["ratio_vs_psm"]) == expected


def test_store_benchmark_reports_rates(tmp_path: object) -> None:
    """The store benchmark measures both sides for 1 and 4 processes."""
    from tests.benchmarks import store

    rows = store.run_store({"sqlite": f"sqlite:///{tmp_path}/b.db"}, sends=3, rounds=1)
    assert list(rows) == ["sqlite, 1 process", "sqlite, 4 processes"]
    for row in rows.values():
        assert row["lifecyclekit send/s"] > 0
        assert row["raw db/s"] > 0
        assert row["lifecyclekit / raw"] == row["lifecyclekit send/s"] / row["raw db/s"]


def test_store_cost_benchmarks_report_ratios(tmp_path: object) -> None:
    """The send-cost and find-scaling suites time both sides and compute their ratio."""
    from tests.benchmarks import store

    url = f"sqlite:///{tmp_path}/h.db"
    (row,) = store.run_history_cost({"s": url}, records=30, batches=2, batch=2).values()
    assert row["ratio"] == row["send, 30 records (us)"] / row["send, 10 records (us)"]
    pairs = {"s": (f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db")}
    rows = store.run_find_scaling(pairs, small=300, big=600, batches=2, batch=2)
    assert list(rows) == ["s, newest", "s, name+state"]
    for row in rows.values():
        assert row["ratio"] == row["find, 600 instances (us)"] / row["find, 300 instances (us)"]
