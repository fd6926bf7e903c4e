"""The shared back-end suite: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import ClassVar

import pytest
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import (
    PayloadError,
    Registry,
    SnapshotError,
    TransitionRecord,
    TransitionRejected,
)
from lifecyclekit.store import (
    SCHEMA_VERSION,
    Change,
    Store,
    StoreError,
    UnknownInstance,
    open_store,
)
from tests.helpers import raw_sql
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY, Toggle


def test_create_get_send_history(store: Store) -> None:
    """create stores a snapshot; send fires and saves; history lists the records."""
    created = store.create("toggle", id="t1", label="lamp")
    assert (created.state, created.context) == ("off", {"label": "lamp", "flips": 0})
    after = store.send("t1", "flip", text="first")
    assert (after.state, after.revision, after.context["flips"]) == ("on", 1, 1)
    store.send("t1", "flip", text="second")
    assert [(r.seq, r.event, r.source, r.target, r.payload) for r in store.history("t1")] == [
        (1, "flip", "off", "on", {"text": "first"}),
        (2, "flip", "on", "off", {"text": "second"}),
    ]
    assert store.get("t1") == store.load("t1").snapshot()


def test_generated_ids_and_duplicates(store: Store) -> None:
    """An id is generated when absent; a duplicate id is refused."""
    generated = store.create("toggle")
    assert store.count() == 1
    assert store.find()[0].id
    store.create("toggle", id="same")
    with pytest.raises(StoreError, match="'same' already exists"):
        store.create("toggle", id="same")
    assert generated.machine == "toggle"


def test_unknown_ids(store: Store) -> None:
    """Unknown ids are LookupErrors saying how to list ids."""
    for call in (store.get, store.history, store.delete):
        with pytest.raises(UnknownInstance, match="No stored instance 'ghost'"):
            call("ghost")
    with pytest.raises(LookupError):
        store.send("ghost", "flip", text="x")


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("stop", {}, TransitionNotAllowed),  # not allowed from on
        ("flip", {"text": 3}, PayloadError),
        ("explode", {}, TransitionRejected),
    ],
)
def test_refused_sends_leave_the_row_unchanged(
    store: Store, name: str, data: dict[str, object], error: type[Exception]
) -> None:
    """A refused event, bad data or an unknown name write nothing."""
    store.create("toggle", id="t")
    store.send("t", "flip", text="on")
    before = store.get("t")
    with pytest.raises(error):
        store.send("t", name, **data)
    assert store.get("t") == before
    assert len(store.history("t")) == 1


def test_unknown_name_lists_events_and_commands(store: Store) -> None:
    """send accepts events and declared commands; the refusal lists both."""
    store.create("toggle", id="t")
    with pytest.raises(TransitionRejected, match=r"Events: flip, stop\. Commands: flip_twice"):
        store.send("t", "explode")
    assert store.send("t", "flip_twice", text="x").revision == 2


def test_idempotency_key_applies_once(store: Store) -> None:
    """A key already applied returns the stored snapshot without firing again."""
    store.create("toggle", id="t")
    first = store.send("t", "flip", text="a", idempotency_key="msg-1")
    again = store.send("t", "flip", text="a", idempotency_key="msg-1")
    assert again == first.model_copy(update={"replayed": True})
    assert store.send("t", "flip", text="b", idempotency_key="msg-2").state == "off"
    assert len(store.history("t")) == 2


def test_find_count_delete(store: Store) -> None:
    """find and count filter by lifecycle and state; delete removes row and history."""
    for i in range(3):
        store.create("toggle", id=f"t{i}")
    store.send("t1", "flip", text="x")
    assert store.count() == 3
    assert store.count(name="toggle", state="on") == 1
    assert {s.id for s in store.find(state="off")} == {"t0", "t2"}
    assert len(store.find(limit=2)) == 2
    store.delete("t1")
    assert store.count() == 2
    with pytest.raises(UnknownInstance):
        store.history("t1")


def test_corrupt_row_names_the_id_and_others_stay_readable(store: Store, store_url: str) -> None:
    """A row whose context no longer validates raises SnapshotError naming it."""
    store.create("toggle", id="good")
    store.create("toggle", id="bad")
    raw_sql(
        store_url, "UPDATE lk_instances SET context = ? WHERE id = ?", ('{"flips": "many"}', "bad")
    )
    with pytest.raises(SnapshotError, match="Stored instance 'bad' is corrupt"):
        store.get("bad")
    with pytest.raises(SnapshotError, match="'bad'"):
        store.send("bad", "flip", text="x")
    assert store.get("good").state == "off"


def test_newer_schema_is_refused(opener: Opener, store_url: str) -> None:
    """A store written by a newer schema fails clearly when opened."""
    with opener(store_url, registry=REGISTRY) as store:
        store.create("toggle", id="t")
    raw_sql(
        store_url,
        "UPDATE lk_meta SET value = ? WHERE key = 'schema_version'",
        (str(SCHEMA_VERSION + 1),),
    )
    with pytest.raises(StoreError, match="written by a newer lifecyclekit"):
        opener(store_url, registry=REGISTRY)


def test_reopening_keeps_everything(opener: Opener, store_url: str) -> None:
    """Data survives closing and reopening the store."""
    with opener(store_url, registry=REGISTRY) as store:
        store.create("toggle", id="t")
        store.send("t", "flip", text="x")
    with opener(store_url, registry=REGISTRY) as store:
        assert store.get("t").state == "on"


def test_a_synchronous_store_refuses_what_it_cannot_await(store_url: str) -> None:
    """An asynchronous command is refused with a message naming it and the asynchronous
    store, and writes nothing; an asynchronous on_commit callback is refused when it is
    registered (it used to fail after every commit). No coroutine is left un-awaited."""
    with open_store(store_url, registry=REGISTRY, create=True) as store:
        store.create("later-toggle", id="t")
        with pytest.raises(StoreError, match="'flip_later' on 't' is asynchronous") as caught:
            store.send("t", "flip_later", text="x")
        assert "open_async_store()" in str(caught.value)
        assert (store.get("t").revision, store.changes()) == (0, [])

        async def notify(change: Change) -> None:  # pragma: no cover - never awaited
            pass

        with pytest.raises(StoreError, match=r"on_commit\(.*notify\): it is asynchronous"):
            store.on_commit(notify)
        assert store.send("t", "flip", text="x").revision == 1  # nothing was registered


class WatchedToggle(Toggle):
    """Remembers, after each committed record, whether the instance the store fired the
    event on ran it on the compiled path."""

    seen: ClassVar[list[bool]] = []

    def after_commit(self, record: TransitionRecord) -> None:
        WatchedToggle.seen.append(self.on_fast_path)


def test_send_fires_on_the_compiled_path(opener: Opener, store_url: str) -> None:
    """A send rebuilds the instance from its row on the compiled path (nothing the store
    does pushes it onto python-statemachine's engine) whenever a new instance of its class
    would take it."""
    registry = Registry(discover=False)
    registry.register("watched-toggle")(WatchedToggle)
    WatchedToggle.seen.clear()
    expected = WatchedToggle().on_fast_path  # False only under LIFECYCLEKIT_ENGINE=psm
    with opener(store_url, registry=registry, create=True) as store:
        store.create("watched-toggle", id="w")
        for n in range(3):
            assert store.send("w", "flip", text=str(n)).revision == n + 1
    assert WatchedToggle.seen == [expected] * 3
