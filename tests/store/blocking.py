"""The asynchronous store seen through blocking calls, so that the store's one suite runs
against both stores.

A :class:`Portal` runs an event loop in a thread of its own; :class:`Blocking` wraps an
object of the asynchronous API (the store, a unit of work, extension SQL, a consumer) and
runs each coroutine it returns to its end on that loop. Each call runs as a task in a copy
of the caller's context, so a call made from inside ``store.run(...)`` is inside the unit of
work exactly as an awaited call would be. Functions given to ``run`` execute in a worker
thread (``asyncio.to_thread``) while their unit of work's transaction stays open on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from lifecyclekit.store import (
    AsyncConsumer,
    AsyncExtensionSQL,
    AsyncStore,
    AsyncUnitOfWork,
)

T = TypeVar("T")
WRAPPED = (AsyncStore, AsyncUnitOfWork, AsyncExtensionSQL, AsyncConsumer)


class Portal:
    """An event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="portal")
        self._thread.start()

    def call(self, awaitable: Awaitable[T], context: contextvars.Context | None = None) -> T:
        """Await ``awaitable`` as a task on the loop (in ``context``, or a copy of the
        caller's) and return its result, or raise its exception, here."""
        context = context if context is not None else contextvars.copy_context()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        async def run() -> T:
            return await awaitable

        def finish(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                done.cancel()
            elif task.exception() is not None:
                done.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                done.set_result(task.result())

        def start() -> None:
            self.loop.create_task(run(), context=context).add_done_callback(finish)

        self.loop.call_soon_threadsafe(start)
        return done.result()

    def close(self) -> None:
        self.call(self.loop.shutdown_asyncgens())
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Blocking:
    """An object of the asynchronous API whose coroutine methods block until done."""

    def __init__(self, target: Any, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def _resolve(self, result: Any) -> Any:
        if inspect.isawaitable(result):
            result = self._portal.call(result)
        return wrap(result, self._portal)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if isinstance(value, WRAPPED):
            return wrap(value, self._portal)
        if not callable(value) or isinstance(value, type):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._resolve(value(*args, **kwargs))

        return call

    def __repr__(self) -> str:
        return f"<Blocking {self._target!r}>"


class BlockingStore(Blocking):
    """An :class:`AsyncStore` used as a :class:`~lifecyclekit.store.Store`."""

    _target: AsyncStore

    def run(self, operation: Callable[[Any], T], *, write: bool = True) -> T:
        portal = self._portal

        async def in_a_thread(uow: AsyncUnitOfWork) -> T:
            return await asyncio.to_thread(operation, Blocking(uow, portal))

        in_a_thread.__qualname__ = getattr(operation, "__qualname__", "a unit of work")
        return self._resolve(self._target.run(in_a_thread, write=write))  # type: ignore[no-any-return]

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Blocking]:
        context = contextvars.copy_context()  # entered and exited in the same context
        manager = self._target.unit_of_work(write=write)
        uow = self._portal.call(manager.__aenter__(), context)
        try:
            yield Blocking(uow, self._portal)
        except BaseException as exc:
            if not self._portal.call(
                manager.__aexit__(type(exc), exc, exc.__traceback__), context
            ):
                raise
        else:
            self._portal.call(manager.__aexit__(None, None, None), context)

    def close(self) -> None:
        self._portal.call(self._target.aclose())

    def __enter__(self) -> BlockingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockingConsumer(Blocking):
    """An :class:`AsyncConsumer` used as a :class:`~lifecyclekit.store.Consumer`."""

    @property
    def position(self) -> int:
        return self._portal.call(self._target.position())  # type: ignore[no-any-return]


def wrap(value: Any, portal: Portal) -> Any:
    """``value``, wrapped when it belongs to the asynchronous API."""
    if isinstance(value, AsyncStore):
        return BlockingStore(value, portal)
    if isinstance(value, AsyncConsumer):
        return BlockingConsumer(value, portal)
    if isinstance(value, WRAPPED):
        return Blocking(value, portal)
    return value
