"""Idempotency keys bound to their request: replays return the original outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecyclekit.store import IdempotencyConflict, Store, StoreError
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY


def test_a_replay_returns_the_original_outcome_marked_as_replayed(store: Store) -> None:
    """Even after later sends, a repeated key returns the revision, state and records of the
    send that first used it, fires nothing and writes nothing."""
    store.create("toggle", id="t")
    first = store.send("t", "flip", text="a", idempotency_key="k1")
    store.send("t", "flip", text="b")
    store.send("t", "flip", text="c")
    again = store.send("t", "flip", text="a", idempotency_key="k1")
    assert again.replayed
    assert not first.replayed
    assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    assert (again.revision, again.state, [r.seq for r in again.records]) == (1, "on", [1])
    assert store.get("t").revision == 3
    assert len(store.changes()) == 3


@pytest.mark.parametrize(
    ("name", "args", "data"),
    [
        ("flip", (), {"text": "other"}),  # another payload
        ("flip_twice", (), {"text": "a"}),  # another command
        ("flip", ("a",), {}),  # the same value, spelled positionally: another request
    ],
)
def test_the_same_key_for_another_request_is_refused(
    store: Store, name: str, args: tuple[str, ...], data: dict[str, str]
) -> None:
    """IdempotencyConflict names the key and the instance; nothing is written."""
    store.create("toggle", id="t")
    store.send("t", "flip", text="a", idempotency_key="k1")
    with pytest.raises(IdempotencyConflict, match="'k1' was already used on 't'"):
        store.send("t", name, *args, idempotency_key="k1", **data)
    assert store.get("t").revision == 1
    assert isinstance(IdempotencyConflict("x"), StoreError)


def test_keys_belong_to_one_instance(store: Store) -> None:
    """The same key on another instance is another request, applied there."""
    store.create("toggle", id="a")
    store.create("toggle", id="b")
    store.send("a", "flip", text="x", idempotency_key="k")
    assert not store.send("b", "flip", text="x", idempotency_key="k").replayed
    assert store.get("b").revision == 1


def test_a_refused_send_does_not_use_up_its_key(store: Store) -> None:
    """A refusal writes nothing, its key included: the same key later applies."""
    store.create("toggle", id="t")
    with pytest.raises(LookupError):
        store.send("ghost", "flip", text="x", idempotency_key="k")
    with pytest.raises(ValueError, match="Invalid data"):
        store.send("t", "flip", text=5, idempotency_key="k")
    assert not store.send("t", "flip", text="x", idempotency_key="k").replayed


def test_keys_are_kept_for_the_retention(opener: Opener, store_url: str) -> None:
    """Within the retention a key replays; past it the key is forgotten (expire_keys removes
    it, and reusing it applies the request again); None keeps keys for ever."""
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with opener(
        store_url, registry=REGISTRY, create=True, clock=lambda: now[0],
        key_retention=timedelta(hours=1),
    ) as store:  # fmt: skip
        store.create("toggle", id="t")
        store.send("t", "flip", text="x", idempotency_key="k")
        now[0] += timedelta(minutes=59)
        assert store.send("t", "flip", text="x", idempotency_key="k").replayed
        now[0] += timedelta(minutes=2)
        assert store.expire_keys() == 1
        assert not store.send("t", "flip", text="x", idempotency_key="k").replayed
        now[0] += timedelta(hours=2)  # expired again, not yet removed: overwritten on reuse
        assert not store.send("t", "flip", text="x", idempotency_key="k").replayed
        assert store.get("t").revision == 3
    with opener(store_url, registry=REGISTRY, clock=lambda: now[0], key_retention=None) as store:
        now[0] += timedelta(days=365)
        assert store.send("t", "flip", text="x", idempotency_key="k").replayed
        assert store.expire_keys() == 0


@pytest.mark.parametrize("key", ["", 5, "k" * 1001])
def test_bad_keys_are_refused(store: Store, key: object) -> None:
    """Keys are non-empty strings of at most 1000 characters."""
    store.create("toggle", id="t")
    with pytest.raises(StoreError, match="idempotency_key"):
        store.send("t", "flip", text="x", idempotency_key=key)  # type: ignore[arg-type]
