"""Works of a graph are driven through the graph (issue 12, point 3).

``store.send`` and ``lifecyclekit send`` on a work that belongs to a WorkGraph are refused,
with a message naming the graph and the method to call: a bare event would skip the graph's
propagation (a prerequisite SUCCEEDED while its dependents stay BLOCKED forever).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lifecyclekit import PayloadError, TransitionRejected, registry
from lifecyclekit.cli import main
from lifecyclekit.machines import WorkGraph, WorkQuery, WorkRequest, WorkResult
from lifecyclekit.store import Store, open_store
from tests.helpers import BACKENDS, backend_url
from tests.machines.conftest import ManualClock


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[Store, WorkGraph, str]]:
    url = f"sqlite:///{tmp_path}/graph.db"
    with open_store(url) as store:
        yield store, WorkGraph(store=store, name="uploads"), url


def chain(graph: WorkGraph) -> tuple[WorkRequest, WorkRequest]:
    a, b = WorkRequest(worker="A"), WorkRequest(worker="B")
    graph.begin_with(a).then(b).enqueue()
    graph.start(a.id)
    return a, b


@pytest.mark.parametrize(
    ("event", "data", "method"),
    [
        pytest.param("finish", {"outcome": "success"}, ".finish(UUID('{a}'), WorkResult.success",
                     id="finish"),
        pytest.param("succeed", {}, ".finish(UUID('{a}'), WorkResult.success(", id="succeed"),
        pytest.param("fail", {}, ".finish(UUID('{a}'), WorkResult.failure(", id="fail"),
        pytest.param("retry", {}, ".finish(UUID('{a}'), WorkResult.retry())", id="retry"),
        pytest.param("stop", {"reason": 7}, ".stop(UUID('{a}'), reason)", id="stop"),
        pytest.param("cancel", {}, ".cancel(UUID('{a}'))", id="cancel"),
        pytest.param("prerequisite_failed", {}, "sends prerequisite_failed itself",
                     id="graph-only-event"),
    ],
)  # fmt: skip
def test_store_send_on_a_graph_work_is_refused(
    stored: tuple[Store, WorkGraph, str], event: str, data: dict[str, Any], method: str
) -> None:
    """The refusal names the graph and the call to make; nothing changes."""
    store, graph, _ = stored
    a, b = chain(graph)
    before = graph.snapshot()
    with pytest.raises(TransitionRejected) as refused:
        store.send(str(a.id), event, data=data)
    message = str(refused.value)
    assert "belongs to WorkGraph 'uploads'" in message
    assert method.format(a=a.id) in message
    assert graph.snapshot() == before


def test_the_command_refuses_too_and_the_graph_still_propagates(
    stored: tuple[Store, WorkGraph, str],
) -> None:
    """`lifecyclekit send` exits 1 naming the graph method; the graph's own finish then
    unblocks the dependent."""
    store, graph, url = stored
    a, b = chain(graph)
    result = CliRunner().invoke(
        main, ["send", str(a.id), "finish", "--data", '{"outcome": "success"}', "--store", url]
    )
    assert result.exit_code == 1
    assert "WorkGraph(store=open_store(url), name='uploads').finish(" in result.output
    assert graph.info(b.id).state.value == "BLOCKED"  # type: ignore[union-attr]
    graph.finish(a.id, WorkResult.success())
    assert graph.info(b.id).state.value == "ENQUEUED"  # type: ignore[union-attr]


def test_ownership_survives_update_work_and_holds_in_memory() -> None:
    """An updated work still belongs to its graph; an in-memory graph's works refuse call()
    too (the graph's own operations drive them)."""
    graph = WorkGraph()
    a, _ = chain(graph)
    graph.update_work(a.model_copy(update={"input": {"v": 2}}))
    with pytest.raises(TransitionRejected, match=r"belongs to WorkGraph 'default'"):
        graph.work(a.id).call("finish", outcome="success")
    graph.finish(a.id, WorkResult.success())
    assert graph.info(a.id).state.value == "SUCCEEDED"  # type: ignore[union-attr]


def test_a_work_of_no_graph_is_driven_by_the_store(stored: tuple[Store, WorkGraph, str]) -> None:
    """A one-time work created in the store on its own still takes store.send."""
    store, _, _ = stored
    store.create("one-time-work", id="alone", worker="Upload")
    assert store.send("alone", "start").state == "running"


@pytest.mark.parametrize("lifecycle", ["one-time-work", "periodic-work", "chained-work"])
@pytest.mark.parametrize("how", ["keyword", "mapping"])
def test_a_user_cannot_set_the_graph_field(
    stored: tuple[Store, WorkGraph, str], lifecycle: str, how: str
) -> None:
    """`graph` is the owning WorkGraph's to set: given by a caller it is refused at creation,
    naming the field and how to create a graph's work; nothing is stored."""
    store, _, _ = stored
    data: dict[str, Any] = {"worker": "F", "graph": "squat"}
    given = data if how == "keyword" else {"context": data}
    with pytest.raises(PayloadError, match=r"graph: is set only by the WorkGraph .*'squat'"):
        store.create(lifecycle, id="w", **given)
    with pytest.raises(PayloadError, match=r"graph: is set only by the WorkGraph"):
        registry.create(lifecycle, **data)
    assert store.find() == []


def test_the_command_refuses_a_graph_field_too(stored: tuple[Store, WorkGraph, str]) -> None:
    """`lifecyclekit new one-time-work --set graph=x` exits 1 with the reason; the graph
    itself still marks the works it inserts as its own."""
    store, graph, url = stored
    result = CliRunner().invoke(
        main,
        ["new", "one-time-work", "--id", "w", "--set", "worker=F", "--set", "graph=x",
         "--store", url],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "graph: is set only by the WorkGraph" in result.stderr
    assert store.find() == []
    request = WorkRequest(worker="A")
    graph.enqueue(request)
    assert store.get(str(request.id)).context["graph"] == "uploads"


@pytest.fixture(params=BACKENDS)
def on_backend(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[tuple[Store, WorkGraph]]:
    with open_store(backend_url(request.param, tmp_path, "graph.db")) as store:
        yield store, WorkGraph(store=store, name="uploads", clock=clock)


def test_store_delete_of_a_graph_work_is_refused(on_backend: tuple[Store, WorkGraph]) -> None:
    """store.delete on a graph's work is refused like store.send, naming the graph's cancel
    and prune_work; nothing changes, and the graph keeps working."""
    store, graph = on_backend
    a, b = chain(graph)
    before = (graph.snapshot(), store.get(str(a.id)), store.count())
    with pytest.raises(TransitionRejected) as refused:
        store.delete(str(a.id))
    message = str(refused.value)
    assert f"Can't delete OneTimeWork in RUNNING: work {a.id} belongs to WorkGraph" in message
    assert f"name='uploads').cancel(UUID('{a.id}'))" in message
    assert ".prune_work()" in message
    assert (graph.snapshot(), store.get(str(a.id)), store.count()) == before
    graph.finish(a.id, WorkResult.success())
    assert graph.info(b.id).state.value == "ENQUEUED"  # type: ignore[union-attr]
    store.create("one-time-work", id="solo", worker="S")
    store.delete("solo")  # a work of no graph is the store's to delete
    assert store.count() == before[2]


def test_a_graph_survives_a_work_removed_behind_its_back(
    on_backend: tuple[Store, WorkGraph],
) -> None:
    """A work whose row was removed underneath the graph (a unit of work's remove, or a
    store.delete before it was refused) is absent to every query: no UnknownInstance."""
    store, graph = on_backend
    gone, kept = WorkRequest(worker="G", tags={"t"}), WorkRequest(worker="K", tags={"t"})
    graph.enqueue(gone, kept)
    with store.unit_of_work() as uow:
        uow.remove(str(gone.id))
    assert graph.info(gone.id) is None
    assert [i.id for i in graph.infos_by_tag("t")] == [kept.id]
    assert [i.id for i in graph.work_infos(WorkQuery(tags=["t"]))] == [kept.id]
    assert graph.due() == [kept.id]
    graph.cancel_by_tag("t")
    graph.cancel_all_work()
    assert graph.info(kept.id).state.value == "CANCELLED"  # type: ignore[union-attr]
