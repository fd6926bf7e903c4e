"""Lifecycles that change: migrations applied on load, rows rewritten by migrate; who and
why on every record."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from lifecyclekit import Lifecycle, Registry, SnapshotError, State
from lifecyclekit.store import open_store
from tests.helpers import raw_sql
from tests.store.conftest import Opener


class TitleContext(BaseModel):
    title: str


class NameContext(BaseModel):
    name: str


class DocV1(Lifecycle):
    """A document, version 1: draft -> published -> archived."""

    Context = TitleContext
    draft = State(initial=True)
    published = State()
    archived = State(final=True)
    publish = draft.to(published)
    archive = published.to(archived)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: the state ``published`` is now ``live``; ``title`` is now ``name``."""

    def rename(state: str) -> str:
        return "live" if state == "published" else state

    data["state"] = rename(data["state"])
    data["context"] = {"name": data["context"]["title"]}
    data["history"] = [
        {**r, "source": rename(r["source"]), "target": rename(r["target"])}
        for r in data["history"]
    ]
    return data


class DocV2(Lifecycle):
    """The same document, version 2."""

    schema_version = 2
    migrations = {1: upgrade_v1}
    Context = NameContext
    draft = State(initial=True)
    live = State()
    archived = State(final=True)
    publish = draft.to(live)
    archive = live.to(archived)


def registry_of(cls: type[Lifecycle]) -> Registry:
    registry = Registry(discover=False)
    registry.register("doc")(cls)
    return registry


V1, V2 = registry_of(DocV1), registry_of(DocV2)


@pytest.fixture
def old_rows(store_url: str) -> str:
    """Two documents written by version 1: one published, one draft."""
    with open_store(store_url, registry=V1, create=True) as store:
        store.create("doc", id="d1", title="Guide")
        store.send("d1", "publish", actor="ann", reason="reviewed")
        store.create("doc", id="d2", title="Notes")
    return store_url


def _raw(url: str, instance_id: str) -> tuple[Any, ...]:
    ((version, state),) = raw_sql(
        url, "SELECT schema_version, state FROM lk_instances WHERE id = ?", (instance_id,)
    )
    targets = [r[0] for r in raw_sql(url, "SELECT target FROM lk_history WHERE instance_id = ?",
                                     (instance_id,))]  # fmt: skip
    return version, state, targets


def test_reads_migrate_on_the_fly_and_write_nothing(opener: Opener, old_rows: str) -> None:
    """get/load/history return version 2 data; the row stays as it was."""
    with opener(old_rows, registry=V2) as store:
        snap = store.get("d1")
        assert (snap.schema_version, snap.state, snap.context) == (2, "live", {"name": "Guide"})
        assert [(r.source, r.target, r.actor, r.reason) for r in store.history("d1")] == [
            ("draft", "live", "ann", "reviewed")
        ]
        assert isinstance(store.load("d1"), DocV2)
    assert _raw(old_rows, "d1") == (1, "published", ["published"])


def test_a_send_upgrades_the_whole_row_once(opener: Opener, old_rows: str) -> None:
    """The first write to an older row rewrites it and its history in the same
    transaction: the history stays one legal chain."""
    with opener(old_rows, registry=V2) as store:
        result = store.send("d1", "archive", actor="bob")
        assert (result.state, [r.seq for r in result.records]) == ("archived", [2])
        assert [(r.seq, r.source, r.target) for r in store.history("d1")] == [
            (1, "draft", "live"),
            (2, "live", "archived"),
        ]
    assert _raw(old_rows, "d1") == (2, "archived", ["live", "archived"])


def test_migrate_rewrites_every_older_row(opener: Opener, old_rows: str) -> None:
    """store.migrate() rewrites rows and histories; a second run finds nothing to do."""
    with opener(old_rows, registry=V2) as store:
        done = store.migrate()
        assert (sorted(done), done.skipped) == (["d1", "d2"], [])
        assert list(store.migrate()) == []
    assert _raw(old_rows, "d1") == (2, "live", ["live"])
    assert _raw(old_rows, "d2") == (2, "draft", [])


def test_a_failing_migration_is_reported_and_the_others_go_on(
    opener: Opener, old_rows: str
) -> None:
    """migrate() skips a row whose migration raises, naming it, and rewrites the rest."""

    def fragile(data: dict[str, Any]) -> dict[str, Any]:
        if data["context"]["title"] == "Notes":
            msg = "cannot name notes"
            raise ValueError(msg)
        return upgrade_v1(data)

    class DocFragile(DocV2):
        migrations = {1: fragile}

    with opener(old_rows, registry=registry_of(DocFragile)) as store:
        done = store.migrate()
        assert list(done) == ["d1"]
        ((skipped_id, reason),) = [(s.id, s.reason) for s in done.skipped]
        assert skipped_id == "d2"
        assert "migration from schema_version 1 failed" in reason
        assert "cannot name notes" in reason


def test_missing_steps_and_newer_rows_are_errors_naming_the_instance(
    opener: Opener, old_rows: str
) -> None:
    """A version gap without a step, or a row newer than its class, is a SnapshotError."""

    class DocV3(DocV2):
        schema_version = 3

    with (
        opener(old_rows, registry=registry_of(DocV3)) as store,
        pytest.raises(SnapshotError, match=r"'d2' .* no step from 2"),
    ):
        store.get("d2")
    with opener(old_rows, registry=V2) as store:
        store.migrate()
    with (
        opener(old_rows, registry=V1) as store,
        pytest.raises(SnapshotError, match="'d1' is at schema_version 2, newer than"),
    ):
        store.send("d1", "archive")


def test_the_migrate_verb(old_rows: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lifecyclekit migrate` rewrites what the process's registry knows how to migrate."""
    from lifecyclekit.cli import main
    from lifecyclekit.registry import registry

    monkeypatch.setitem(registry._classes, "doc", DocV2)
    result = CliRunner().invoke(main, ["migrate", "--store", old_rows])
    assert (result.exit_code, result.stdout) == (0, "migrated 2 instance(s)\n")
    assert _raw(old_rows, "d2")[0] == 2
