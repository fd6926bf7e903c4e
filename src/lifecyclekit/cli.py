"""The ``lifecyclekit`` command: see, export, check and drive lifecycles from the shell.

Thin by design: every verb calls :mod:`lifecyclekit.registry`, :mod:`~lifecyclekit.diagrams`,
:mod:`~lifecyclekit.export` or :mod:`~lifecyclekit.check`. User mistakes print one line on
stderr and exit 1; usage errors exit 2 (click's own); no tracebacks for either.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from lifecyclekit.errors import (
    SHOWN_LIMIT,
    DefinitionError,
    DiagramError,
    LifecycleError,
    MissingDependency,
    PayloadError,
    UnknownLifecycle,
    optional_import,
    shown,
)
from lifecyclekit.lifecycle import Lifecycle
from lifecyclekit.registry import APP_ENV, import_apps, registry

__all__ = ["main"]


DEBUG_ENV = "LIFECYCLEKIT_DEBUG"
"""Set it (to anything) to see the traceback of an unexpected error."""


@contextmanager
def _user_errors() -> Iterator[None]:
    """One line on stderr for any failure: exit 1 for what a user can fix (lifecyclekit's
    errors, unreadable or unwritable paths), 3 for anything else, which is a bug of ours
    (``LIFECYCLEKIT_DEBUG=1`` shows its traceback)."""
    try:
        yield
    except click.ClickException:
        raise  # a usage error found inside a verb: click prints it and exits 2
    except BrokenPipeError:
        # The reader went away (`lifecyclekit ls | head`): nothing to say, nowhere to say it.
        sys.stderr.close()
        sys.exit(1)
    except (LifecycleError, OSError, ValueError) as exc:
        click.echo(f"lifecyclekit: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        click.echo(
            f"lifecyclekit: unexpected {type(exc).__name__}: {exc} (a bug in lifecyclekit: "
            f"please report it with the output of {DEBUG_ENV}=1 and the same command)",
            err=True,
        )
        sys.exit(3)


def _write(content: str | bytes, output: str) -> None:
    if output == "-":
        if isinstance(content, bytes):
            sys.stdout.buffer.write(content)
        else:
            click.echo(content, nl=not content.endswith("\n"))
        return
    path = Path(output)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    click.echo(f"wrote {path}", err=True)


def _summary(cls: type[Lifecycle]) -> str:
    return (cls.__doc__ or "").strip().split("\n")[0]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lifecyclekit")
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE",
    help="Import an application module first, so the lifecycles it registers are known to "
    f"every verb (repeatable; a module name or a .py path; env {APP_ENV}, comma-separated).",
)
def main(apps: tuple[str, ...]) -> None:
    """Model, drive, persist and draw the lifecycles of jobs and background work."""
    with _user_errors():
        import_apps([*apps, os.environ.get(APP_ENV, "")])


@main.command("list")
def list_() -> None:
    """Registered lifecycles: name, states, final states, description."""
    with _user_errors():
        for name in registry.names():
            cls = registry.get(name)
            finals = ", ".join(s.id for s in cls.final_states)
            click.echo(
                f"{name:<22} {len(cls.states_map):>2} states  final: {finals:<40} {_summary(cls)}"
            )


@main.command()
@click.argument("name")
def show(name: str) -> None:
    """States, transitions with guards and provenance, payloads and context of NAME."""
    with _user_errors():
        cls = registry.get(name)
        click.echo(f"{name}: {cls.__name__}  {_summary(cls)}\n")
        click.echo("states:")
        for state in cls.states_map.values():
            kind = "initial" if state.initial else "final" if state.final else ""
            click.echo(f"  {state.id:<22} {state.value!s:<32} {kind}")
        click.echo("\ntransitions:")
        for row in cls.transition_table():
            guards = f" [{', '.join(g.label for g in row.guards)}]" if row.guards else ""
            cited = f"  ({row.provenance.row})" if row.provenance else ""
            click.echo(f"  {row.source:<22} {row.event}{guards} -> {row.target}{cited}")
        for event, model in cls._payload_models.items():
            fields = ", ".join(model.model_fields)
            click.echo(f"\npayload {event}: {model.__name__}({fields})")
        if cls.Context is not None:
            click.echo(f"\ncontext: {cls.Context.__name__}({', '.join(cls.Context.model_fields)})")
        doc = (sys.modules[cls.__module__].__doc__ or "").strip()
        if doc:
            click.echo(f"\n{doc}")


@main.command()
@click.argument("name")
@click.option(
    "-f", "--format", "fmt", default="mermaid", show_default=True,
    type=click.Choice(["mermaid", "dot", "svg", "png", "md"]),
)  # fmt: skip
@click.option("-o", "--output", default="-", show_default=True, help="File, or - for stdout.")
@click.option(
    "--store",
    "store_url",
    help="Draw the stored instance NAME (an id) of this store, with its path numbered "
    "(never read from LIFECYCLEKIT_STORE: without --store, NAME is a lifecycle).",
)
def diagram(name: str, fmt: str, output: str, store_url: str | None) -> None:
    """Draw the lifecycle NAME, or with --store the stored instance NAME and its path."""
    from lifecyclekit.diagrams import render

    with _user_errors():
        if store_url is None:
            try:
                content = render(name, fmt)
            except UnknownLifecycle as exc:
                exc.args = (f"{exc} {_diagram_hint(name)}",)
                raise
            _write(content, output)
            return
        with _open(store_url) as store:
            instance = store.load(name)
        _write(render(instance, fmt, path=True), output)


def _diagram_hint(name: str) -> str:
    """diagram NAME names a lifecycle unless --store is given: it never reads
    LIFECYCLEKIT_STORE, so the same command draws the same thing in every shell."""
    url = os.environ.get(STORE_ENV)
    where = f"--store {url}" if url else "--store URL"
    also = f" ({STORE_ENV} is set, but diagram reads a store only with --store)" if url else ""
    return f"To draw the stored instance {name!r}, add {where}{also}."


@main.command()
@click.argument("name")
@click.option("-f", "--format", "fmt", default="json", type=click.Choice(["json", "yaml"]))
@click.option("--extras", is_flag=True, help="Also lifecyclekit's companion document.")
@click.option("-o", "--output", default="-", help="File, or - for stdout.")
def export(name: str, fmt: str, extras: bool, output: str) -> None:
    """NAME as a python-statemachine statechart document."""
    from lifecyclekit.export import to_json, to_yaml

    with _user_errors():
        cls = registry.get(name)
        _write((to_yaml if fmt == "yaml" else to_json)(cls, extras=extras), output)


def _load_document(path: Path) -> dict[str, Any]:
    yaml_file = path.suffix in (".yaml", ".yml")
    yaml = optional_import("yaml", extra="yaml", feature="YAML documents") if yaml_file else None
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) if yaml is not None else json.loads(text)
    except UnicodeDecodeError:
        msg = f"{path}: not a text file (a statechart document is JSON or YAML text)"
        raise DefinitionError(msg) from None
    except ValueError as exc:  # json.JSONDecodeError
        msg = f"{path}: not valid JSON: {exc}"
        raise DefinitionError(msg) from None
    except Exception as exc:  # yaml.YAMLError has no common base with the stdlib's errors
        if yaml is None or not isinstance(exc, yaml.YAMLError):
            raise
        msg = f"{path}: not valid YAML: {exc}".replace("\n", " ")
        raise DefinitionError(msg) from None
    if isinstance(data, dict) and "document" in data:
        data = data["document"]
    if not isinstance(data, dict):
        msg = f"{path}: not a statechart document (a JSON or YAML mapping with 'states')"
        raise DefinitionError(msg)
    return data


def _check_file(path: Path) -> list[Any]:
    from lifecyclekit.check import check as run_check

    try:
        return run_check(_load_document(path))
    except DefinitionError as exc:
        message = str(exc) if str(exc).startswith(f"{path}:") else f"{path}: {exc}"
        raise DefinitionError(message) from None


@main.command()
@click.argument("targets", nargs=-1)
def check(targets: tuple[str, ...]) -> None:
    """Static findings for lifecycle names or document files (all registered by default).

    Exits 1 when there is any finding.
    """
    from lifecyclekit.check import check as run_check

    found = 0
    with _user_errors():
        for target in targets or tuple(registry.names()):
            path = Path(target)
            subject = _check_file(path) if path.is_file() else run_check(registry.get(target))
            for finding in subject:
                click.echo(f"{target}: {finding}")
            found += len(subject)
            if not subject:
                click.echo(f"{target}: ok")
    if found:
        sys.exit(1)


@main.command()
@click.option("-o", "--output", default="-", help="Directory, or - for one sheet on stdout.")
@click.option("--builtin", is_flag=True, help="Only lifecyclekit's own lifecycles.")
def gallery(output: str, builtin: bool) -> None:
    """Every registered lifecycle's md sheet (and SVG where Graphviz is present)."""
    from lifecyclekit.diagrams import gallery_sheet, render

    with _user_errors():
        names = [
            n
            for n in registry.names()
            if not builtin or registry.get(n).__module__.startswith("lifecyclekit.machines")
        ]
        if output == "-":
            _write(gallery_sheet(names), "-")
            return
        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        _write(gallery_sheet(names), str(folder / "README.md"))
        for name in names:
            try:
                _write(render(name, "svg"), str(folder / f"{name}.svg"))
            except (DiagramError, MissingDependency) as exc:
                click.echo(f"lifecyclekit: no SVG for {name}: {exc}", err=True)


# -- driving lifecycles in a store -----------------------------------------------------------
# Every failure below is a LifecycleError naming the option, the instance or the store URL;
# values are shown by their size when they are long. Read verbs never create a store.

STORE_ENV = "LIFECYCLEKIT_STORE"
"""The store URL of the store verbs when --store is not given."""

_STORE = click.option(
    "--store",
    "store_url",
    envvar=STORE_ENV,
    default="sqlite:///lifecyclekit.db",
    show_default=True,
    help="Store URL (env LIFECYCLEKIT_STORE).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


class _Shown:
    """A value in an error message: itself when short, its type and size when long."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        from lifecyclekit.store._model import shown

        return shown(self.value)


def _open(url: str) -> Any:
    from lifecyclekit.store import open_store

    return open_store(url)


def _json_object(text: str | None, option: str, machine: str, event: str) -> dict[str, Any]:
    """The JSON object given to ``option``, or a PayloadError naming the option."""
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        problem = f"is not valid JSON ({str(exc).partition(':')[0]})"
        raise PayloadError(machine, event, [(option, problem, _Shown(text))]) from None
    if not isinstance(data, dict):
        problem = "must be a JSON object, like '{\"key\": 1}'"
        raise PayloadError(machine, event, [(option, problem, _Shown(text))])
    return data


def _pairs(pairs: tuple[str, ...], option: str, machine: str, event: str) -> dict[str, Any]:
    """``key=value`` options as a dict (JSON values, else the text itself)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            problem = "takes key=value"
            raise PayloadError(machine, event, [(option, problem, _Shown(pair))])
        try:
            values[key] = json.loads(raw)
        except (ValueError, RecursionError):
            values[key] = raw
    return values


def _state_value(machine: str, state: str) -> str:
    try:
        cls = registry.get(machine)
        return str(next(s.value for s in cls.states_map.values() if s.id == state))
    except (LifecycleError, StopIteration):
        return "?"


def _print_status(instance_id: str, machine: str, state: str, revision: int, context: Any) -> None:
    click.echo(f"id:       {instance_id}\nmachine:  {machine}")
    click.echo(f"state:    {state} ({_state_value(machine, state)})\nrevision: {revision}")
    for key, val in (context or {}).items():
        if val not in (None, [], {}):  # --json shows every field, whole
            click.echo(f"  {key:<24} {_brief(val)}")


BRIEF = 200
"""Table output shows JSON values up to this many characters; longer strings inside them are
described by their size (``--json`` prints everything whole)."""


def _brief(value: Any) -> str:
    """``value`` as JSON for a table: long strings (and over-long values) by their size."""

    def shorten(item: Any) -> Any:
        if isinstance(item, str) and len(item) > SHOWN_LIMIT:
            return f"<{shown(item)}>"
        if isinstance(item, dict):
            return {shorten(k): shorten(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [shorten(v) for v in item]
        return item

    text = json.dumps(shorten(value))
    return text if len(text) <= BRIEF else f"<{shown(value)}>"


def _record_line(r: Any) -> str:
    mark = " (inferred)" if r.inferred else ""
    payload = _brief(r.payload) if r.payload else ""
    who = " ".join(
        part
        for part in (
            f"by {r.actor if len(r.actor) <= SHOWN_LIMIT else shown(r.actor)}" if r.actor else "",
            f"because {shown(r.reason)}" if r.reason else "",
            _brief(r.metadata) if r.metadata else "",
        )
        if part
    )
    return (
        f"{r.seq:>4}  {r.at.isoformat():<32} {r.event + mark:<22} {r.source:<22} "
        f"{r.target:<22} {payload}{'  ' + who if who else ''}"
    ).rstrip()


def _skipped(page: Any, what: str) -> None:
    """One line per row a listing skipped (a pydantic error spans lines: joined here)."""
    for item in page.skipped:
        reason = " ".join(str(item.reason).split())
        if len(reason) > 300:
            reason = reason[:297] + "..."
        click.echo(f"lifecyclekit: skipped {what} {shown(item.id)}: {reason}", err=True)


@contextmanager
def _committed(what: str) -> Iterator[None]:
    """Output after a commit: a failure to print says the change was made all the same."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        msg = f"{what}, but its output could not be written: {exc}"
        raise OSError(msg) from None


@main.command()
@click.argument("name")
@click.option("--id", "instance_id", help="The instance id (generated when absent).")
@click.option("--set", "pairs", multiple=True, help="A context field: key=value (JSON values).")
@click.option("--context", "context_json", help="The context as a JSON object.")
@_STORE
@_JSON
def new(
    name: str,
    instance_id: str | None,
    pairs: tuple[str, ...],
    context_json: str | None,
    store_url: str,
    as_json: bool,
) -> None:
    """Create an instance of lifecycle NAME in the store (creating the store if needed).

    --set and --context are context data only: any field name works (id, name, ...).
    """
    with _user_errors():
        registry.get(name)
        context = _json_object(context_json, "--context", name, "context")
        context |= _pairs(pairs, "--set", name, "context")
        with _open(store_url) as store:
            instance_id = instance_id if instance_id is not None else uuid.uuid4().hex
            snap = store.create(name, id=instance_id, context=context)
            created = f"Instance {instance_id!r} was created in {store.url}"
        with _committed(created):
            if as_json:
                out = {"id": instance_id, **snap.model_dump(mode="json", exclude={"history"})}
                click.echo(json.dumps(out, indent=2))
            else:
                _print_status(instance_id, snap.machine, snap.state, snap.revision, snap.context)


@main.command()
@click.argument("instance_id")
@click.argument("event")
@click.option("--data", "data_json", help="The event's data as a JSON object.")
@click.option("--key", "idempotency_key", help="Idempotency key: applied at most once.")
@click.option("--actor", help="Who sends it (kept in the history).")
@click.option("--reason", help="Why (kept in the history).")
@click.option("--metadata", "metadata_json", help="Free JSON object kept in the history.")
@_STORE
@_JSON
def send(
    instance_id: str,
    event: str,
    data_json: str | None,
    idempotency_key: str | None,
    actor: str | None,
    reason: str | None,
    metadata_json: str | None,
    store_url: str,
    as_json: bool,
) -> None:
    """Fire EVENT (or run a command) on a stored instance; a refusal exits 1, store unchanged."""
    from statemachine.exceptions import TransitionNotAllowed

    with _user_errors():
        data = _json_object(data_json, "--data", instance_id, event)
        metadata = _json_object(metadata_json, "--metadata", instance_id, event) or None
        with _open(store_url) as store:
            try:
                result = store.send(
                    instance_id, event, data=data, idempotency_key=idempotency_key,
                    actor=actor, reason=reason, metadata=metadata,
                )  # fmt: skip
            except TransitionNotAllowed as refusal:
                known = _knows(store, instance_id, event)
                click.echo(f"{'refused' if known else 'lifecyclekit'}: {refusal}", err=True)
                sys.exit(1)
            sent = f"{event!r} was applied to {instance_id!r} in {store.url}"
        with _committed(sent if not result.replayed else f"{event!r} was replayed"):
            if result.replayed:
                click.echo(
                    f"lifecyclekit: key {idempotency_key!r} already applied: replayed", err=True
                )
            if as_json:
                click.echo(result.model_dump_json(indent=2))
            else:
                _print_status(
                    instance_id, result.machine, result.state, result.revision, result.context
                )


def _knows(store: Any, instance_id: str, name: str) -> bool:
    """Whether ``name`` is an event or command of the stored instance's lifecycle (a refusal
    of a known event says "refused"; an unknown name is a mistake like any other)."""
    try:
        cls = registry.get(store.get(instance_id, history=False).machine)
    except LifecycleError:
        return True
    return name in {row.event for row in cls.transition_table()} | set(cls.commands)


@main.command()
@click.argument("instance_id")
@_STORE
@_JSON
def status(instance_id: str, store_url: str, as_json: bool) -> None:
    """The state and context of a stored instance (read-only)."""
    with _user_errors(), _open(store_url) as store:
        snap = store.get(instance_id, history=False)
        if as_json:
            out = {"id": instance_id, **snap.model_dump(mode="json", exclude={"history"})}
            out["last"] = snap.history[-1].model_dump(mode="json") if snap.history else None
            click.echo(json.dumps(out, indent=2))
        else:
            _print_status(instance_id, snap.machine, snap.state, snap.revision, snap.context)


@main.command()
@click.argument("instance_id")
@click.option("--after", default=0, show_default=True, help="Only records after this seq.")
@click.option("--limit", type=int, help="At most this many records.")
@_STORE
@_JSON
def history(
    instance_id: str, after: int, limit: int | None, store_url: str, as_json: bool
) -> None:
    """The transitions of a stored instance, oldest first, with who and why (read-only)."""
    with _user_errors(), _open(store_url) as store:
        records = store.history(instance_id, after=after, limit=limit)
        if as_json:
            click.echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
            return
        header = f"{'seq':>4}  {'at':<32} {'event':<22} {'source':<22} {'target':<22} payload"
        click.echo(header)
        for r in records:
            click.echo(_record_line(r))


@main.command("ls")
@click.option("--name", help="Only instances of this lifecycle.")
@click.option("--state", help="Only instances in this state (id).")
@click.option("--where", "pairs", multiple=True, help="A context field equal to: key=value.")
@click.option("--limit", default=100, show_default=True)
@click.option("--after", help="The cursor printed after a full page: the next page.")
@_STORE
@_JSON
def ls(
    name: str | None,
    state: str | None,
    pairs: tuple[str, ...],
    limit: int,
    after: str | None,
    store_url: str,
    as_json: bool,
) -> None:
    """Stored instances, most recently changed first (read-only)."""
    with _user_errors(), _open(store_url) as store:
        where = _where(pairs)
        _check_listed(store, name, state)
        found = store.find(name=name, state=state, where=where, limit=limit, after=after)
        _skipped(found, "instance")
        if as_json:
            click.echo(json.dumps([s.model_dump(mode="json") for s in found], indent=2))
        else:
            click.echo(f"{'id':<36} {'machine':<22} {'state':<22} {'revision':>8}  updated")
            for s in found:
                updated = s.updated_at.isoformat(timespec="seconds")
                click.echo(f"{s.id:<36} {s.machine:<22} {s.state:<22} {s.revision:>8}  {updated}")
        if found.next is not None:
            click.echo(f"lifecyclekit: more: --after {found.next}", err=True)


def _where(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--where key=value`` options (JSON values, else the text itself), or a usage error
    saying what the syntax is."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            problem = "has no '='" if not sep else "has no field name before '='"
            msg = (
                f"{shown(pair)} {problem}. Write --where FIELD=VALUE, a context field and the "
                "value it must equal: --where job_name=orders, --where attempts=3 (VALUE is "
                "read as JSON when it parses, else as text; null matches absent fields)."
            )
            raise click.BadParameter(msg, param_hint="--where")
        try:
            values[key] = json.loads(raw)
        except (ValueError, RecursionError):
            values[key] = raw
    return values


def _check_listed(store: Any, name: str | None, state: str | None) -> None:
    """A usage error for a --name or --state that no lifecycle has and no stored row has
    (a typo would otherwise list nothing and exit 0)."""
    names = registry.names()
    if name is not None and name not in names and not store.count(name=name):
        msg = (
            f"no lifecycle {shown(name)} is registered or stored. Registered lifecycles: "
            f"{', '.join(names) or 'none'} (an application's own: lifecyclekit --app MODULE)."
        )
        raise click.BadParameter(msg, param_hint="--name")
    if state is None:
        return
    classes = [registry.get(name)] if name in names else [registry.get(n) for n in names]
    states = sorted({s.id for cls in classes for s in cls.states_map.values()})
    if state not in states and not store.count(name=name, state=state):
        of = f"of {name} " if name in names else ""
        msg = (
            f"no state {shown(state)} {of}is known or stored. States (ids, as `lifecyclekit "
            f"show NAME` lists them): {', '.join(states)}."
        )
        raise click.BadParameter(msg, param_hint="--state")


def _seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        msg = f"{value!r} is not a number of seconds: give a finite number >= 0, like 30."
        raise click.BadParameter(msg)
    return value


def _change_line(change: Any) -> str:
    r = change.record
    who = f"  by {r.actor}" if r.actor else ""
    return (
        f"{change.position:>8}  {change.id:<24} {change.machine:<18} {r.seq:>4} "
        f"{r.event:<18} {r.source} -> {r.target}{who}"
    )


@main.command()
@click.option(
    "--after", type=int, help="Start after this position (default: 0, or the consumer's)."
)
@click.option(
    "--consumer", help="A named consumer: resume after its last ack, ack what is printed."
)
@click.option("--limit", default=100, show_default=True, help="Changes per batch.")
@click.option(
    "--timeout",
    type=float,
    callback=lambda ctx, param, value: _seconds(value),
    help="Stop after this many seconds without a change (a number >= 0).",
)
@click.option("--once", is_flag=True, help="Print what is there now and stop.")
@_STORE
@_JSON
def watch(
    after: int | None,
    consumer: str | None,
    limit: int,
    timeout: float | None,
    once: bool,
    store_url: str,
    as_json: bool,
) -> None:
    """Print committed transitions in position order as they happen (the change feed).

    --json prints one JSON object per line. Ctrl-C stops.
    """
    with _user_errors(), _open(store_url) as store:
        reader = store.consumer(consumer) if consumer is not None else None
        position = after if after is not None else reader.position if reader else 0
        wait = 0.0 if once else timeout
        try:
            while True:
                page = store.watch(after=position, timeout=wait, limit=limit)
                _skipped(page, "change of")
                for change in page:
                    click.echo(change.model_dump_json() if as_json else _change_line(change))
                if page.next is not None:
                    position = page.next
                    if reader is not None:
                        reader.ack(position)
                if not page and (once or timeout is not None):
                    return
        except KeyboardInterrupt:
            return


@main.command()
@click.option("--name", help="Only instances of this lifecycle.")
@_STORE
def migrate(name: str | None, store_url: str) -> None:
    """Rewrite stored instances of an older schema_version through their lifecycle's
    migrations; exits 1 if some could not be migrated (each is reported)."""
    with _user_errors():
        if name is not None and name not in registry.names():
            msg = (
                f"no lifecycle {shown(name)} is registered (migrate rewrites rows of lifecycles "
                f"this process knows). Registered lifecycles: {', '.join(registry.names())}"
                " (an application's own: lifecyclekit --app MODULE)."
            )
            raise click.BadParameter(msg, param_hint="--name")
    with _user_errors(), _open(store_url) as store:
        done = store.migrate(name)
        click.echo(f"migrated {len(done)} instance(s)")
        _skipped(done, "instance")
        if done.skipped:
            sys.exit(1)
