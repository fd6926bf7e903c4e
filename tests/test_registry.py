"""The registry: names, lookup, creation, duplicates, reserved names, entry points."""

from __future__ import annotations

import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from lifecyclekit import (
    DefinitionError,
    Lifecycle,
    PayloadError,
    Registry,
    SnapshotError,
    State,
    UnknownLifecycle,
    registry,
)
from lifecyclekit.registry import ENTRY_POINT_GROUP, RESERVED_NAMES
from tests.sample_machines import Door, FixedClock, PluginDoor, Ticket


def fresh(*entries: EntryPoint) -> Registry:
    return Registry(entry_point_loader=lambda: entries)


def subclass(base: type[Lifecycle], name: str) -> type[Lifecycle]:
    return type(name, (base,), {"__module__": __name__})


def test_register_get_names_create() -> None:
    """A registered class is found by name, listed, and created with its context."""
    reg = fresh()
    tickets = reg.register("ticket")(subclass(Ticket, "T1"))
    doors = reg.register("door")(subclass(Door, "D1"))
    assert reg.names() == ["door", "ticket"]
    assert reg.get("ticket") is tickets
    assert reg.get("door") is doors
    assert "door" in reg
    assert tickets.lifecycle_name == "ticket"
    clock = FixedClock()
    created = reg.create("ticket", ticket_id="t-1", capacity=2, clock=clock)
    assert isinstance(created, tickets)
    assert created.context.capacity == 2
    created.start()
    assert created.history[0].at == FixedClock().current


def test_unknown_name_lists_known_and_closest() -> None:
    """An unknown name is a LookupError listing the names and suggesting the closest."""
    reg = fresh()
    reg.register("ticket")(subclass(Ticket, "T2"))
    reg.register("door")(subclass(Door, "D2"))
    with pytest.raises(UnknownLifecycle) as info:
        reg.get("tikcet")
    assert isinstance(info.value, LookupError)
    assert str(info.value) == (
        "Unknown lifecycle 'tikcet'. Registered lifecycles: door, ticket. Did you mean 'ticket'?"
    )


def test_duplicate_name_is_refused() -> None:
    """Registering a second class under a taken name is an error naming both classes."""
    reg = fresh()
    reg.register("ticket")(subclass(Ticket, "First"))
    with pytest.raises(DefinitionError, match=r"'ticket' is already registered to .*First"):
        reg.register("ticket")(subclass(Ticket, "Second"))


def test_registering_the_same_class_twice_is_harmless() -> None:
    """Re-applying the decorator to the same class keeps one entry."""
    reg = fresh()
    cls = subclass(Ticket, "Same")
    reg.register("ticket")(cls)
    reg.register("ticket")(cls)
    assert reg.names() == ["ticket"]


@pytest.mark.parametrize("name", ["Ticket", "my_ticket", "-x", "a--b", "", "ticket-"])
def test_names_must_be_kebab_case(name: str) -> None:
    """Names are stable kebab-case identifiers."""
    with pytest.raises(DefinitionError, match="kebab-case"):
        fresh().register(name)


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_builtin_names_are_reserved(name: str) -> None:
    """The four built-in names cannot be taken by application classes."""
    with pytest.raises(DefinitionError, match="reserved"):
        fresh().register(name)(subclass(Ticket, "Squatter"))


def test_reserved_name_not_installed_says_so() -> None:
    """Asking for a reserved name that is not installed explains it is a built-in."""
    with pytest.raises(UnknownLifecycle, match="reserved for a lifecyclekit built-in"):
        fresh().get("chained-work")


def test_only_lifecycles_can_be_registered() -> None:
    """The decorator refuses anything that is not a Lifecycle subclass."""
    with pytest.raises(DefinitionError, match="decorates Lifecycle subclasses"):
        fresh().register("thing")(dict)  # type: ignore[type-var]


def test_entry_points_are_listed_without_import_and_loaded_on_get() -> None:
    """Entry points appear in names() and load on first get()."""
    entry = EntryPoint(
        name="door", value="tests.sample_machines:PluginDoor", group=ENTRY_POINT_GROUP
    )
    reg = fresh(entry)
    assert reg.names() == ["door"]
    assert reg.get("door") is PluginDoor
    assert reg.create("door").state == "closed"


def test_entry_point_that_is_not_a_lifecycle_is_refused() -> None:
    """An entry point loading something else is a DefinitionError naming it."""
    entry = EntryPoint(name="bad", value="tests.sample_machines:FixedClock", group="g")
    with pytest.raises(DefinitionError, match=r"'bad' .*not a Lifecycle subclass"):
        fresh(entry).get("bad")


def test_discovery_through_an_installed_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution declaring the entry-point group is found by the default registry."""
    package = tmp_path / "billing_lifecycles"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from lifecyclekit import Lifecycle, State

            class BillingRun(Lifecycle):
                draft = State(initial=True)
                sent = State(final=True)
                send_invoice = draft.to(sent)
            """
        )
    )
    dist = tmp_path / "billing_lifecycles-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: billing-lifecycles\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nbilling-run = billing_lifecycles:BillingRun\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    assert "billing-run" in reg.names()
    run = reg.create("billing-run")
    run.send_invoice()
    assert run.state == "sent"
    assert type(run).lifecycle_name == "billing-run"
    assert run.snapshot().machine == "billing-run"


def test_global_registry_is_a_registry() -> None:
    """The module-level registry is ready to use."""
    assert isinstance(registry, Registry)
    assert all(isinstance(name, str) for name in registry.names())


def test_subclass_of_registered_lifecycle_is_never_its_base() -> None:
    """An application subclass does not inherit its base's registry name: its snapshots name
    the subclass, restore only as the subclass, and reload through the registry as the
    subclass once it is registered under a name of its own (issue 10, point 3)."""
    reg = fresh()
    base = reg.register("gate-ticket")(subclass(Ticket, "GateTicket"))

    class AppTicket(base):  # type: ignore[valid-type,misc]
        audit: list[str] = []

        def on_enter_running(self) -> None:
            super().on_enter_running()
            self.audit.append("running")

    assert AppTicket.lifecycle_name is None
    app = AppTicket(ticket_id="x", capacity=1)
    app.start()
    snap = app.snapshot()
    assert snap.machine == f"{__name__}:{AppTicket.__qualname__}"
    with pytest.raises(SnapshotError, match="exact class"):
        base.restore(snap)
    with pytest.raises(SnapshotError, match="exact class"):
        AppTicket.restore(base(ticket_id="y").snapshot())
    with pytest.raises(SnapshotError, match="Unknown lifecycle"):
        reg.restore(snap)

    reg.register("app-ticket")(AppTicket)
    assert (AppTicket.lifecycle_name, base.lifecycle_name) == ("app-ticket", "gate-ticket")
    stored = reg.create("app-ticket", ticket_id="z", capacity=1)
    stored.start()
    again = reg.restore(stored.snapshot().model_dump_json())
    assert type(again) is AppTicket
    again.retry()
    again.context.not_before = None
    again.start()  # the subclass's own callback runs on the reloaded instance
    assert AppTicket.audit == ["running", "running", "running"]


def test_state_holder_model_is_not_required() -> None:
    """python-statemachine domain models keep working: state lives on the given object."""

    class Row:
        status: str | None = None

    class Flag(Lifecycle):
        off = State(initial=True)
        on = State(final=True)
        flip = off.to(on)

    row = Row()
    flag = Flag(model=row, state_field="status")
    flag.flip()
    assert row.status == "on"


def test_create_keeps_framework_parameters_apart_from_context() -> None:
    """registry.create takes the name positionally and context data only as context: a field
    called ``name`` works, and ``start_value`` cannot pick the starting state (issue 10,
    point 4)."""
    from pydantic import BaseModel

    class Named(BaseModel):
        name: str
        id: str = ""

    class Tagged(Lifecycle):
        Context = Named
        draft = State(initial=True)
        done = State(final=True)
        publish = draft.to(done)

    reg = fresh()
    reg.register("tagged")(Tagged)
    made = reg.create("tagged", name="n1", id="i1")
    assert (made.context.name, made.context.id, made.state) == ("n1", "i1", "draft")
    assert reg.create("tagged", context={"name": "n2"}).context.name == "n2"
    with pytest.raises(PayloadError, match="start_value: unknown context field"):
        reg.create("tagged", name="n", start_value="done")
    with pytest.raises(PayloadError, match="model: unknown context field"):
        reg.create("tagged", name="n", model=object())
    with pytest.raises(PayloadError, match="given both"):
        reg.create("tagged", context={"name": "a"}, name="b")


def test_every_builtin_name_is_reserved() -> None:
    """The built-ins' names, the observed Dataflow rule set included, are reserved."""
    builtin = {ep.name for ep in registry._entry_points().values()}
    assert builtin <= RESERVED_NAMES
    assert "dataflow-job-observed" in RESERVED_NAMES
    with pytest.raises(DefinitionError, match="reserved"):
        fresh().register("dataflow-job-observed")(subclass(Ticket, "Impostor"))
