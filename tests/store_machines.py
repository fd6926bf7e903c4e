"""Lifecycles the store tests drive, in a registry of their own (child processes import it)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from lifecyclekit import Lifecycle, Registry, State, TransitionRecord

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


@REGISTRY.register("alert-toggle")
class AlertToggle(Toggle):
    """Appends a line to the file named by its label for every flip it runs (``.attempts``)
    and for every flip a store committed (``after_commit``)."""

    def _count(self) -> None:
        super()._count()
        with open(f"{self.context.label}.attempts", "a", encoding="utf-8") as file:
            file.write("x\n")

    def after_commit(self, record: TransitionRecord) -> None:
        with open(self.context.label, "a", encoding="utf-8") as file:
            file.write(f"{record.seq}\n")


@REGISTRY.register("later-toggle")
class LaterToggle(Toggle):
    """A toggle with an asynchronous command (it awaits before flipping), which only an
    asynchronous store can run."""

    commands = frozenset({"flip_twice", "flip_later"})

    async def flip_later(self, text: str) -> None:
        await asyncio.sleep(0)
        self.flip(text=text)
