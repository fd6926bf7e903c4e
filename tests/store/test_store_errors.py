"""Every failure a user can reach is a LifecycleError naming the store or the instance; bad
rows never hide good ones; lifecycles are reloaded as the exact class that stored them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from lifecyclekit import PayloadError, SnapshotError, UnknownLifecycle
from lifecyclekit.store import Store, StoreError, open_store
from tests.helpers import raw_sql
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY, LoudToggle, StrayToggle, Toggle

# -- the class that stored it ----------------------------------------------------------------


def test_create_takes_a_name_or_a_registered_class(store: Store) -> None:
    """create(LoudToggle) and create("loud-toggle") store the subclass under its own name;
    send and load run its callbacks, never its base class's."""
    store.create(LoudToggle, id="by-class")
    store.create("loud-toggle", id="by-name")
    for instance_id in ("by-class", "by-name"):
        assert store.get(instance_id).machine == "loud-toggle"
        assert store.send(instance_id, "flip", text="x").context == {"label": "", "flips": 100}
        assert type(store.load(instance_id)) is LoudToggle
    store.create(Toggle, id="base")
    assert store.send("base", "flip", text="x").context == {"label": "", "flips": 1}


def test_an_unregistered_class_is_refused_with_how_to_register_it(store: Store) -> None:
    """A subclass that is not registered is never stored under its base's name."""
    with pytest.raises(
        UnknownLifecycle, match=r"StrayToggle is not registered.*register\("
    ) as caught:
        store.create(StrayToggle, id="s")
    assert "never as another class" in str(caught.value)
    with pytest.raises(StoreError, match="registered lifecycle name or class, not 42"):
        store.create(42, id="s")  # type: ignore[arg-type]
    assert store.count() == 0


# -- context data never collides with the API ------------------------------------------------


def test_context_fields_called_id_or_name(opener: Opener, tmp_path: Path) -> None:
    """A work's context field ``id`` and a job's ``name`` go in context= (or as keywords
    other than id), distinct from the instance id."""
    work_id = uuid.uuid4()
    with opener(f"sqlite:///{tmp_path}/s.db") as store:
        store.create("one-time-work", id="upload", context={"worker": "W", "id": str(work_id)})
        assert store.load("upload").context.id == work_id
        store.create("dataflow-job", id="j", name="clickstream")
        assert store.get("j").context["name"] == "clickstream"  # type: ignore[index]


@pytest.mark.parametrize(
    "internal", ["start_value", "model", "state_field", "listeners", "clock", "context"]
)
def test_no_data_reaches_the_constructor(opener: Opener, tmp_path: Path, internal: str) -> None:
    """Constructor internals given as data are unknown context fields: refused, nothing
    stored; no data can pick the starting state."""
    with opener(f"sqlite:///{tmp_path}/s.db", create=True) as store:
        data: dict[str, Any] = {"worker": "W", internal: "SUCCEEDED"}
        with pytest.raises(PayloadError, match=f"{internal}: unknown context field"):
            store.create("one-time-work", id="w", context=data)
        if internal != "context":
            with pytest.raises(PayloadError, match=f"{internal}: unknown context field"):
                store.create("one-time-work", id="w", **data)
        assert store.count() == 0


def test_context_given_twice_is_refused(store: Store) -> None:
    with pytest.raises(PayloadError, match="given both in context= and as a keyword"):
        store.create("toggle", context={"label": "a"}, label="b")


# -- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("", "is empty"),
        (5, "is a int"),
        (None, "is a NoneType"),
        ("a\x00b", "contains a control character"),
        ("x" * 300, "has 300 characters"),
    ],
)
def test_invalid_ids(store: Store, bad: Any, problem: str) -> None:
    """Every operation taking an id refuses invalid ones with what ids may be."""
    calls = [
        lambda: store.create("toggle", id=bad) if bad is not None else store.get(bad),
        lambda: store.get(bad),
        lambda: store.send(bad, "flip", text="x"),
        lambda: store.history(bad),
        lambda: store.delete(bad),
    ]
    for call in calls:
        with pytest.raises(StoreError, match=f"Invalid instance id: it {problem}") as caught:
            call()
        assert len(str(caught.value)) < 300
    assert store.count() == 0


# -- damaged data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("context", "{not json", "is corrupt"),
        ("context", "[1, 2]", "context is not a JSON object"),
        ("state", "melted", "unknown state 'melted'"),
        ("revision", "-5", "is corrupt"),
    ],
)
def test_a_garbage_row_names_its_id_and_the_others_stay_readable(
    store: Store, store_url: str, column: str, value: str, message: str
) -> None:
    """Reading or sending to a damaged row is a SnapshotError naming it; the rest works."""
    store.create("toggle", id="good")
    store.create("toggle", id="bad")
    literal = value if column == "revision" else "'" + value.replace("'", "''") + "'"
    raw_sql(store_url, f"UPDATE lk_instances SET {column} = {literal} WHERE id = 'bad'")
    for call in (lambda: store.get("bad"), lambda: store.send("bad", "flip", text="x")):
        with pytest.raises(SnapshotError, match=message) as caught:
            call()
        assert "'bad'" in str(caught.value)
    assert store.send("good", "flip", text="x").revision == 1
    found = store.find()
    assert sorted([s.id for s in found] + [s.id for s in found.skipped]) == ["bad", "good"]


def test_a_row_of_a_lifecycle_this_process_does_not_know(store: Store, store_url: str) -> None:
    """A row whose lifecycle is not registered here is UnknownLifecycle (not corrupt): the
    message names the row and how to make the lifecycle known; other rows stay usable."""
    store.create("toggle", id="good")
    store.create("toggle", id="other")
    raw_sql(store_url, "UPDATE lk_instances SET machine = 'shop-order' WHERE id = 'other'")
    for call in (lambda: store.get("other"), lambda: store.send("other", "flip", text="x")):
        with pytest.raises(UnknownLifecycle, match="Unknown lifecycle 'shop-order'") as caught:
            call()
        assert "Stored instance 'other' is of this lifecycle" in str(caught.value)
        assert "lifecyclekit --app MODULE" in str(caught.value)
    assert store.send("good", "flip", text="x").revision == 1


def test_a_garbage_history_row_names_the_instance(store: Store, store_url: str) -> None:
    store.create("toggle", id="t")
    store.send("t", "flip", text="x")
    raw_sql(store_url, "UPDATE lk_history SET payload = '{oops' WHERE instance_id = 't'")
    with pytest.raises(SnapshotError, match="Stored instance 't' is corrupt"):
        store.history("t")


def test_find_reports_and_skips_unreadable_rows(opener: Opener, tmp_path: Path) -> None:
    """A row find cannot read is reported in .skipped; the others are listed (SQLite, whose
    columns take any value)."""
    url = f"sqlite:///{tmp_path}/s.db"
    with opener(url, registry=REGISTRY, create=True) as store:
        for name in ("a", "b", "c"):
            store.create("toggle", id=name)
        raw_sql(url, "UPDATE lk_instances SET updated_at = 'yesterday' WHERE id = 'b'")
        raw_sql(url, "UPDATE lk_instances SET revision = 'many' WHERE id = 'c'")
        found = store.find()
        assert [s.id for s in found] == ["a"]
        assert sorted(s.id for s in found.skipped) == ["b", "c"]


def test_garbage_metadata_is_a_store_error(opener: Opener, store_url: str) -> None:
    with opener(store_url, registry=REGISTRY, create=True):
        pass
    raw_sql(store_url, "UPDATE lk_meta SET value = 'two' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="unreadable metadata: schema_version = 'two'"):
        opener(store_url, registry=REGISTRY)


@pytest.mark.parametrize("content", [b"this is not a database, just text\n" * 200, b"\x00" * 4096])
def test_a_file_that_is_not_a_database(opener: Opener, tmp_path: Path, content: bytes) -> None:
    """Opening a non-database file says so, naming the URL."""
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    url = f"sqlite:///{path}"
    with pytest.raises(StoreError, match=f"{url} is not a lifecyclekit store, or is damaged"):
        with opener(url) as store:
            store.find()
    assert path.read_bytes() == content


def test_a_full_disk_writes_nothing_and_says_so(tmp_path: Path) -> None:
    """When SQLite cannot grow the file (its page limit stands in for a full disk), the
    send fails naming the store and nothing of it is written; once there is room, writes
    work again."""
    url = f"sqlite:///{tmp_path}/s.db"
    with open_store(url, registry=REGISTRY, create=True) as store:
        store.create("toggle", id="t", label="x" * 2000)
        connection = store._backend._connection(create=False)  # type: ignore[attr-defined]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreError, match=f"the disk of {url} is full"):  # noqa: PT012
            for n in range(200):
                store.send("t", "flip", text=str(n) * 500)
        reached = store.get("t")
        assert reached.revision == len(store.history("t")) == reached.context["flips"]  # type: ignore[index]
        connection.execute(f"PRAGMA max_page_count = {pages * 100}")
        assert store.send("t", "flip", text="room").revision == reached.revision + 1


def test_work_graph_given_a_url_says_to_open_the_store(tmp_path: Path) -> None:
    from lifecyclekit.machines import WorkGraph

    with pytest.raises(StoreError, match=r"WorkGraph\(store=open_store\(url\)\)"):
        WorkGraph(store=f"sqlite:///{tmp_path}/x.db")
    assert not (tmp_path / "x.db").exists()


def test_the_feed_reports_and_skips_unreadable_changes(store: Store, store_url: str) -> None:
    """A damaged change is reported in .skipped; the page still moves past it."""
    store.create("toggle", id="t")
    store.send("t", "flip", text="1")
    last = store.send("t", "flip", text="2")
    raw_sql(store_url, "UPDATE lk_changes SET record = 'x' WHERE seq = 1")
    page = store.changes()
    assert [c.record.seq for c in page] == [last.records[0].seq]
    assert [s.id for s in page.skipped] == ["t"]
    assert page.next == page[0].position
