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

    rows = store.run_store({"sqlite": f"sqlite:///{tmp_path}/b.db"}, sends=3)
    assert list(rows) == ["sqlite, 1 process", "sqlite, 4 processes"]
    for row in rows.values():
        assert row["lifecyclekit send/s"] > 0
        assert row["raw db/s"] > 0
        assert row["lifecyclekit / raw"] == row["lifecyclekit send/s"] / row["raw db/s"]
