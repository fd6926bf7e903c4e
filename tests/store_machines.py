"""Lifecycles the store tests drive, in a registry of their own (child processes import it)."""

from __future__ import annotations

from pydantic import BaseModel

from lifecyclekit import Lifecycle, Registry, State

REGISTRY = Registry(discover=False)


class Note(BaseModel):
    text: str


class CounterContext(BaseModel):
    label: str = ""
    flips: int = 0


@REGISTRY.register("toggle")
class Toggle(Lifecycle):
    """off <-> on by flip; done by stop (from off only)."""

    Context = CounterContext
    payloads = {"flip": Note}
    commands = frozenset({"flip_twice"})

    off = State(initial=True)
    on = State()
    done = State(final=True)

    flip = off.to(on, on="_count") | on.to(off, on="_count")
    stop = off.to(done)

    def _count(self) -> None:
        self.context.flips += 1

    def flip_twice(self, text: str) -> None:
        with self.atomic():
            self.flip(text=text)
            self.flip(text=text)


class StrayToggle(Toggle):
    """An application subclass of a registered lifecycle, itself not registered."""

    def _count(self) -> None:
        self.context.flips += 10


@REGISTRY.register("loud-toggle")
class LoudToggle(Toggle):
    """A registered subclass with callbacks of its own: the store must run them, never
    Toggle's."""

    def _count(self) -> None:
        self.context.flips += 100
