"""Closing a store while other threads or tasks still use it: each of them gets the
store-is-closed :class:`StoreError`, never a crash or a foreign exception; and argument
checks the two stores must share."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lifecyclekit.errors import StoreError
from lifecyclekit.store import Store

SYNC_CLOSE = textwrap.dedent(
    """
    import sys, threading
    from lifecyclekit.errors import StoreError
    from lifecyclekit.store import open_store
    from tests.store_machines import REGISTRY

    url = sys.argv[1]
    store = open_store(url, registry=REGISTRY, create=True)
    store.create("toggle", id="t")
    warmed = threading.Barrier(5)
    outcomes = []

    def use(write):
        done = 0
        try:
            while True:
                store.send("t", "flip", text="x") if write else store.get("t")
                done += 1
                if done == 20:
                    warmed.wait()
        except StoreError as exc:
            outcomes.append("closed" if "the store is closed" in str(exc) else repr(exc))
        except BaseException as exc:
            outcomes.append("FOREIGN " + repr(exc))

    threads = [threading.Thread(target=use, args=(n == 0,)) for n in range(4)]
    for thread in threads:
        thread.start()
    warmed.wait()
    store.close()
    for thread in threads:
        thread.join()
    print(sorted(outcomes))
    """
)


@pytest.mark.parametrize("round", range(3))
def test_sync_close_while_threads_use_the_store(store_url: str, round: int) -> None:
    """Issue: SQLite's close() closed other threads' connections under a running
    statement (segfault, or sqlite3.ProgrammingError)."""
    done = subprocess.run(
        [sys.executable, "-c", SYNC_CLOSE, store_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(["closed"] * 4), done.stderr[-2000:]


@pytest.mark.parametrize("after", [None, "3", -1, 1.5, True])
def test_watch_refuses_an_after_that_is_not_a_position(store: Store, after: object) -> None:
    """Issue: the async store's watch(after=None) raised TypeError ('NoneType' object is not
    callable); both stores now give the same StoreError."""
    with pytest.raises(StoreError, match=r"after must be an int from 0 to 2\*\*63 - 1, got"):
        store.watch(after, timeout=0)  # type: ignore[arg-type]
