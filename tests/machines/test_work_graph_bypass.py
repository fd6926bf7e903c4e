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
from lifecyclekit.machines import WorkGraph, WorkRequest, WorkResult
from lifecyclekit.store import Store, open_store


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
