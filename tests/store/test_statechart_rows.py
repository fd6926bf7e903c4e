"""A stored statechart keeps its whole configuration and history memory, on SQLite and
PostgreSQL, through the synchronous and the asynchronous store; rows written before
statecharts existed still load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecyclekit.store import Store, open_store
from tests.chart_machines import REGISTRY, Order
from tests.helpers import BACKENDS, backend_url, raw_sql
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY as FLAT_REGISTRY


@pytest.fixture(params=BACKENDS)
def chart_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, "charts.db")


@pytest.fixture
def charts(chart_url: str, opener: Opener) -> Iterator[Store]:
    with opener(chart_url, registry=REGISTRY, create=True) as opened:
        yield opened


def test_create_send_load_keeps_every_region(charts: Store) -> None:
    """Create, send into parallel regions, load: the configuration comes back whole."""
    charts.create("chart-order", id="o1")
    for event in ("pay", "ship", "depart"):
        result = charts.send("o1", event)
    assert result.state == "tracking"
    loaded = charts.load("o1")
    assert loaded.configuration_ids == ("tracking", "carrier", "in_transit", "billing", "invoiced")
    assert [r.event for r in charts.history("o1")] == ["pay", "ship", "depart"]
    assert charts.send("o1", "settle").revision == 4
    assert charts.load("o1").configuration_ids[-1] == "paid"
    assert charts.find(state="tracking")[0].id == "o1"


def test_a_stored_history_state_remembers(charts: Store) -> None:
    """What a history state remembers is stored: a later send re-enters it."""
    charts.create("chart-order", id="o2")
    for event in ("pay", "pack", "hold"):
        charts.send("o2", event)
    assert charts.get("o2").history_states == {"resume": ("packing",)}
    charts.send("o2", "release")
    assert charts.load("o2").configuration_ids == ("fulfilment", "packing")


def test_restore_from_the_store_runs_no_entry_action(charts: Store) -> None:
    """Loading a stored statechart rebuilds it without entering any state again."""
    charts.create("chart-order", id="o3")
    charts.send("o3", "pay")
    charts.send("o3", "ship")
    entries = charts.load("o3").context.entries
    assert entries == ["created", "fulfilment", "picking", "tracking", "carrier",
                       "handed_over", "billing", "invoiced"]  # fmt: skip
    assert charts.get("o3") == charts.load("o3").snapshot()


def test_unit_of_work_adds_and_saves_a_statechart(chart_url: str) -> None:
    """A unit of work writes the configuration of an instance it adds and saves."""
    with open_store(chart_url, registry=REGISTRY, create=True) as charts:
        _add_and_save(charts)


def _add_and_save(charts: Store) -> None:

    def work(uow) -> None:  # type: ignore[no-untyped-def]
        order = Order()
        order.send("pay")
        order.send("ship")
        uow.add("o4", order)

    charts.run(work)

    def more(uow) -> None:  # type: ignore[no-untyped-def]
        order = uow.load("o4")
        order.send("settle")
        uow.save("o4", order)

    charts.run(more)
    assert charts.load("o4").configuration_ids[-1] == "paid"


def test_delete_removes_the_configuration(charts: Store, chart_url: str) -> None:
    """Deleting a statechart leaves no configuration row behind."""
    charts.create("chart-order", id="o5")
    charts.send("o5", "pay")
    charts.delete("o5")
    assert raw_sql(chart_url, "SELECT COUNT(*) FROM lk_configurations")[0][0] == 0


def test_a_store_from_before_statecharts_opens_and_its_rows_load(
    chart_url: str, opener: Opener
) -> None:
    """A store whose tables predate lk_configurations (as stores before statecharts) opens,
    its flat rows load and send, and no configuration row is written for them."""
    with open_store(chart_url, registry=FLAT_REGISTRY, create=True) as store:
        store.create("toggle", id="t1")
        store.send("t1", "flip", text="x")
    raw_sql(chart_url, "DROP TABLE lk_configurations")
    with opener(chart_url, registry=FLAT_REGISTRY) as store:
        assert store.load("t1").state == "on"
        assert store.send("t1", "flip", text="y").state == "off"
        assert store.get("t1").configuration is None
    assert raw_sql(chart_url, "SELECT COUNT(*) FROM lk_configurations")[0][0] == 0
