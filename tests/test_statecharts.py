"""Statecharts in a Lifecycle: compound, parallel and history states through state,
configuration, explanations, history, snapshots and restore (issue 15, point 3)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecyclekit import Snapshot, SnapshotError, TransitionRejected
from tests.chart_machines import Order

# (events from creation, state, state_value, configuration_ids, is_finished)
PATHS = [
    pytest.param((), "created", ("created",), False, id="initial-flat-state"),
    pytest.param(("pay",), "picking", ("fulfilment", "picking"), False, id="compound-leaf"),
    pytest.param(
        ("pay", "pack"), "packing", ("fulfilment", "packing"), False, id="compound-next-leaf"
    ),
    pytest.param(
        ("pay", "ship"),
        "tracking",
        ("tracking", "carrier", "handed_over", "billing", "invoiced"),
        False,
        id="parallel-regions",
    ),
    pytest.param(
        ("pay", "ship", "settle"),
        "tracking",
        ("tracking", "carrier", "handed_over", "billing", "paid"),
        False,
        id="parallel-one-region-moved",
    ),
    pytest.param(
        ("pay", "pack", "hold", "release"),
        "packing",
        ("fulfilment", "packing"),
        False,
        id="history-reenters-remembered",
    ),
    pytest.param(
        ("pay", "ship", "deliver"), "delivered", ("delivered",), True, id="top-level-final"
    ),
]


def _run(events: tuple[str, ...]) -> Order:
    order = Order()
    for event in events:
        order.send(event)
    return order


@pytest.mark.parametrize(("events", "state", "configuration", "finished"), PATHS)
def test_state_names_the_innermost_state_holding_the_configuration(
    events: tuple[str, ...], state: str, configuration: tuple[str, ...], finished: bool
) -> None:
    """``state`` (and ``state_value``) is the active leaf of compound states, the parallel
    state when regions are active; ``configuration_ids`` lists every active state."""
    order = _run(events)
    assert order.state == state
    assert order.state_value == order.states_map[order.state_value].value == state
    assert order.configuration_ids == configuration
    assert {s.id for s in order.configuration} == set(configuration)
    assert order.is_finished is finished


def test_a_flat_lifecycle_configuration_is_its_state() -> None:
    """On a flat lifecycle, ``configuration_ids`` is the one current state."""
    from tests.store_machines import Toggle

    toggle = Toggle()
    toggle.send("flip", text="x")
    assert toggle.configuration_ids == ("on",)


def test_history_records_transitions_inside_compound_and_parallel_states() -> None:
    """Each fired transition is one record with the transition's own source and target."""
    order = _run(("pay", "pack", "hold", "release", "ship", "depart"))
    assert [(r.event, r.source, r.target) for r in order.history] == [
        ("pay", "created", "fulfilment"),
        ("pack", "picking", "packing"),
        ("hold", "fulfilment", "created"),
        ("release", "created", "resume"),
        ("ship", "fulfilment", "tracking"),
        ("depart", "handed_over", "in_transit"),
    ]
    assert [r.seq for r in order.history] == [1, 2, 3, 4, 5, 6]


def test_guards_explain_inside_a_compound_state() -> None:
    """A guard of a nested transition explains its verdict, and a refusal carries it."""
    order = Order(items=0)
    order.send("pay")
    explanation = order.explain("pack")
    assert explanation.verdict == "guards_failed"
    assert explanation.state == "picking"
    [candidate] = explanation.candidates
    assert (candidate.source, candidate.target) == ("picking", "packing")
    assert [(g.name, g.value, g.detail) for g in candidate.guards] == [
        ("has_items", False, "0 item(s)")
    ]
    with pytest.raises(TransitionRejected, match=r"has_items is False \(0 item\(s\)\)") as info:
        order.send("pack")
    assert info.value.explanation == explanation
    assert order.configuration_ids == ("fulfilment", "picking")
    assert len(order.history) == 1


def test_explain_looks_at_every_parallel_region() -> None:
    """In parallel regions an event of any region is allowed; an event of none is not."""
    order = _run(("pay", "ship"))
    assert order.explain("settle").allowed
    assert order.explain("depart").allowed
    refused = order.explain("pack")
    assert refused.verdict == "no_transition"
    assert set(refused.allowed_events) == {"depart", "settle", "deliver"}


def test_snapshot_holds_configuration_and_history_memory() -> None:
    """A statechart's snapshot has every active state and what history states remember."""
    order = _run(("pay", "pack", "hold"))
    snap = order.snapshot()
    assert snap.state == "created"
    assert snap.configuration == ("created",)
    assert snap.history_states == {"resume": ("packing",)}
    parallel = _run(("pay", "ship", "depart")).snapshot()
    assert parallel.configuration == ("tracking", "carrier", "in_transit", "billing", "invoiced")
    assert parallel.history_states == {"resume": ("picking",)}  # fulfilment was left


def test_restore_rebuilds_the_configuration_without_entry_actions() -> None:
    """Restore (through JSON) brings back every region's state and runs no entry action."""
    order = _run(("pay", "ship", "depart"))
    entries = list(order.context.entries)
    restored = Order.restore(order.snapshot().model_dump_json())
    assert restored.configuration_ids == order.configuration_ids
    assert restored.context.entries == entries
    restored.send("settle")
    assert restored.configuration_ids == (
        "tracking", "carrier", "in_transit", "billing", "paid",
    )  # fmt: skip
    assert restored.snapshot().model_dump() == {
        **order.snapshot().model_dump(),
        "configuration": restored.configuration_ids,
        "context": restored.context.model_dump(),
        "history": restored.snapshot().model_dump()["history"],
        "revision": 4,
    }


def test_restored_history_state_reenters_what_it_remembered() -> None:
    """What a history state remembers survives a snapshot: after restore, ``release``
    re-enters ``packing``, not fulfilment's initial ``picking``."""
    order = _run(("pay", "pack", "hold"))
    restored = Order.restore(order.snapshot().model_dump(mode="json"))
    restored.send("release")
    assert restored.configuration_ids == ("fulfilment", "packing")
    fresh = Order.restore(
        order.snapshot().model_copy(update={"history_states": None}).model_dump()
    )
    fresh.send("release")
    assert fresh.configuration_ids == ("fulfilment", "picking")


def test_a_flat_snapshot_from_before_statecharts_restores() -> None:
    """A snapshot written before configurations existed (no such keys) restores as before."""
    from tests.store_machines import Toggle

    old = {
        "machine": "toggle",
        "schema_version": 1,
        "state": "on",
        "context": {"label": "", "flips": 1},
        "history": [
            {"seq": 1, "event": "flip", "source": "off", "target": "on",
             "payload": {"text": "x"}, "at": "2026-01-01T00:00:00Z", "inferred": False},
        ],
        "revision": 1,
    }  # fmt: skip
    toggle = Toggle.restore(json.dumps(old))
    assert toggle.state == "on"
    assert toggle.snapshot().configuration is None


def test_a_compound_leaf_alone_restores_its_configuration() -> None:
    """A statechart snapshot without a configuration restores when its state (a leaf
    outside parallel regions) implies one."""
    snap = _run(("pay", "pack")).snapshot().model_copy(update={"configuration": None})
    assert Order.restore(snap).configuration_ids == ("fulfilment", "packing")


BAD = [
    pytest.param(
        {"configuration": ("fulfilment", "nowhere")}, "unknown state(s) 'nowhere'", id="unknown"
    ),
    pytest.param(
        {"configuration": ("fulfilment", "picking", "packing")},
        "compound 'fulfilment' has 2 active children",
        id="two-children",
    ),
    pytest.param(
        {"configuration": ("tracking", "carrier", "handed_over"), "state": "tracking"},
        "parallel 'tracking' lacks active region(s) ['billing']",
        id="missing-region",
    ),
    pytest.param(
        {"configuration": ("picking",), "state": "picking"},
        "its parent 'fulfilment' is not",
        id="orphan",
    ),
    pytest.param(
        {"configuration": None, "state": "tracking", "history": ()},
        "without a configuration",
        id="parallel-without-configuration",
    ),
    pytest.param(
        {"configuration": ("fulfilment", "picking")},
        "is in state 'packing', but its configuration",
        id="state-disagrees",
    ),
    pytest.param(
        {"history_states": {"nope": ("packing",)}},
        "remembers history state 'nope'",
        id="unknown-history-state",
    ),
    pytest.param(
        {"history_states": {"resume": ("created",)}},
        "not states inside 'fulfilment'",
        id="memory-outside-parent",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_restore_refuses_an_impossible_configuration(change: dict, message: str) -> None:
    """A snapshot whose configuration could not happen is a SnapshotError naming why."""
    snap = _run(("pay", "pack")).snapshot().model_copy(update=change)
    with pytest.raises(SnapshotError, match=re.escape(message)):
        Order.restore(snap.model_dump())


def test_restore_refuses_a_last_record_outside_the_configuration() -> None:
    """The last record of a statechart snapshot must end in an active state."""
    snap = _run(("pay", "ship")).snapshot()
    moved = snap.model_copy(
        update={"configuration": ("fulfilment", "picking"), "state": "picking"}
    )
    with pytest.raises(SnapshotError, match="last history record ends in 'tracking'"):
        Order.restore(moved)


def test_a_configuration_on_a_flat_lifecycle_is_refused() -> None:
    """A flat lifecycle's snapshot cannot claim several active states."""
    from tests.store_machines import Toggle

    snap = Toggle().snapshot().model_copy(update={"configuration": ("off", "on")})
    with pytest.raises(SnapshotError, match="is not a statechart"):
        Toggle.restore(snap)


def test_atomic_rolls_back_the_whole_configuration() -> None:
    """``atomic`` restores every region and the history memory when its block raises."""
    order = _run(("pay", "pack"))
    before = order.snapshot()

    def moves_then_fails() -> None:
        with order.atomic():
            order.send("hold")
            order.send("release")
            order.send("ship")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        moves_then_fails()
    assert order.snapshot() == before


EVENTS = ["pay", "pack", "hold", "release", "ship", "depart", "settle", "deliver"]


@given(st.lists(st.sampled_from(EVENTS), max_size=12))
def test_any_run_snapshots_and_restores_to_the_same_configuration(events: list[str]) -> None:
    """Invariant: after any sequence of events (refusals ignored) the configuration is
    legal, and snapshot -> JSON -> restore -> snapshot is the identity."""
    order = Order()
    for event in events:
        try:
            order.send(event)
        except TransitionRejected:
            pass
    snap = order.snapshot()
    again = Order.restore(Snapshot.model_validate_json(snap.model_dump_json()))
    assert again.snapshot() == snap
    assert again.configuration_ids == order.configuration_ids
