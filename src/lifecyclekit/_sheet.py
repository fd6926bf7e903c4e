"""The ``md`` lifecycle sheet: a Mermaid diagram and the lifecycle's tables, for docs."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from lifecyclekit.lifecycle import Lifecycle

__all__ = ["sheet"]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _type_of(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_type_of(option) for option in schema["anyOf"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = str(schema.get("type", "any"))
    if kind == "array" and "items" in schema:
        return f"array of {_type_of(schema['items'])}"
    return kind + (f" ({schema['format']})" if "format" in schema else "")


def _fields(model: type[BaseModel]) -> list[list[Any]]:
    try:
        schema = model.model_json_schema()
    except Exception as exc:  # noqa: BLE001 - a sheet shows why, lifecyclekit check reports it
        return [["(no JSON Schema)", type(exc).__name__, "", ""]]
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else ""
        rows.append([f"`{name}`", _type_of(prop), "yes" if name in required else "", default])
    return rows


def sheet(machine: type[Lifecycle] | Lifecycle, mermaid: str) -> str:
    """The Markdown sheet of a lifecycle: diagram, states, transitions, payloads, context."""
    cls = machine if isinstance(machine, type) else type(machine)
    title = f"{cls.__name__}" + (f" (`{cls.lifecycle_name}`)" if cls.lifecycle_name else "")
    summary = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    lines = [f"## {title}", "", summary, "", "```mermaid", mermaid.rstrip("\n"), "```", ""]
    lines += ["### States", ""]
    lines += _table(
        ["State", "Value", "Kind"],
        [
            [f"`{s.id}`", f"`{s.value}`", "initial" if s.initial else "final" if s.final else ""]
            for s in cls.states_map.values()
        ],
    )
    lines += ["", "### Transitions", ""]
    rows = []
    for row in cls.transition_table():
        provenance = row.provenance
        cited = f"{provenance.row}: {provenance.text}" if provenance else ""
        guards = ", ".join(g.label for g in row.guards)
        rows.append([f"`{row.source}`", f"`{row.event}`", guards, f"`{row.target}`", cited])
    lines += _table(["Source", "Event", "Guards", "Target", "Provenance"], rows)
    models: dict[type[BaseModel], list[str]] = {}
    for event, model in cls._payload_models.items():
        models.setdefault(model, []).append(event)
    if models:
        lines += ["", "### Payloads", ""]
        for model, events in models.items():
            lines += [f"`{model.__name__}`, sent with {', '.join(f'`{e}`' for e in events)}:", ""]
            lines += _table(["Field", "Type", "Required", "Default"], _fields(model)) + [""]
    if cls.Context is not None:
        lines += ["", f"### Context: `{cls.Context.__name__}`", ""]
        lines += _table(["Field", "Type", "Required", "Default"], _fields(cls.Context))
    return "\n".join(lines).rstrip("\n") + "\n"
