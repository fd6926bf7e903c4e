"""The ``lifecyclekit`` command: see, export and check lifecycles from the shell.

Thin by design: every verb calls :mod:`lifecyclekit.registry`, :mod:`~lifecyclekit.diagrams`,
:mod:`~lifecyclekit.export` or :mod:`~lifecyclekit.check`. User mistakes print one line on
stderr and exit 1; usage errors exit 2 (click's own); no tracebacks for either.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from lifecyclekit.errors import LifecycleError
from lifecyclekit.lifecycle import Lifecycle
from lifecyclekit.registry import registry

__all__ = ["main"]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn lifecyclekit's errors and unwritable paths into one line and exit status 1."""
    try:
        yield
    except (LifecycleError, OSError, ValueError) as exc:
        click.echo(f"lifecyclekit: {exc}", err=True)
        sys.exit(1)


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
def main() -> None:
    """Model, drive, persist and draw the lifecycles of jobs and background work."""


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
            guards = f" [{', '.join(row.guards)}]" if row.guards else ""
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
def diagram(name: str, fmt: str, output: str) -> None:
    """Draw NAME (mermaid, dot, svg, png or an md sheet)."""
    from lifecyclekit.diagrams import render

    with _user_errors():
        _write(render(name, fmt), output)


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
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if isinstance(data, dict) and "document" in data:
        data = data["document"]
    if not isinstance(data, dict):
        msg = f"{path}: not a statechart document"
        raise ValueError(msg)
    return data


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
            subject = (
                run_check(_load_document(path))
                if path.is_file()
                else run_check(registry.get(target))
            )
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
    from lifecyclekit.diagrams import DiagramError, gallery_sheet, render

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
            except DiagramError as exc:
                click.echo(f"lifecyclekit: no SVG for {name}: {exc}", err=True)
