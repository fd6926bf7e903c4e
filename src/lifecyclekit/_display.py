"""Notebook display: a lifecycle class or instance shows as lifecyclekit's diagram.

IPython asks an object for ``_repr_html_``, ``_repr_svg_`` and ``_repr_markdown_``; for a
class it accepts only methods bound to the class, so these are descriptors that bind to
whichever is asked, the class or the instance. They draw with :mod:`lifecyclekit.diagrams`
(an instance with its path numbered): SVG where pydot and Graphviz are present, else
``None`` for SVG and HTML (IPython then skips them) and a mermaid block as Markdown, so a
notebook without the extras shows text instead of an error.

This module is the core's one edge towards the tools, imported lazily: display is a tool's
job, but the hooks must live on the class.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MethodType
from typing import Any

__all__ = ["DISPLAY_HOOKS"]


class _ClassOrInstanceMethod:
    """Binds to the instance when read from one, else to the class (IPython needs bound)."""

    def __init__(self, function: Callable[[Any], str | None]) -> None:
        self.function = function

    def __get__(self, instance: object, owner: type) -> MethodType:
        return MethodType(self.function, instance if instance is not None else owner)


def _svg(target: Any) -> str | None:
    from lifecyclekit.diagrams import render
    from lifecyclekit.errors import DiagramError, MissingDependency

    try:
        return str(render(target, "svg", path=not isinstance(target, type)))
    except (DiagramError, MissingDependency):
        return None


def _html(target: Any) -> str | None:
    svg = _svg(target)
    return None if svg is None else f'<div class="lifecyclekit">{svg}</div>'


def _markdown(target: Any) -> str:
    from lifecyclekit.diagrams import render

    mermaid = str(render(target, "mermaid", path=not isinstance(target, type)))
    return f"```mermaid\n{mermaid}```\n"


DISPLAY_HOOKS = {
    "_repr_html_": _ClassOrInstanceMethod(_html),
    "_repr_svg_": _ClassOrInstanceMethod(_svg),
    "_repr_markdown_": _ClassOrInstanceMethod(_markdown),
}
"""The ``_repr_*_`` attributes ``Lifecycle`` carries."""
