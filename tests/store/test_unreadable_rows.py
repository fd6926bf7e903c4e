"""One row a filter cannot read never breaks listing for the whole table: filtered find()
skips and reports it in its place (like unfiltered find does), count() does not count it,
on every back-end."""

from __future__ import annotations

import pytest

from lifecyclekit.store import Store, StoreError
from tests.helpers import raw_sql

# Contexts a TEXT column holds but a JSON reader may refuse: what Python's json writes for
# "\x00" and NaN, and damage from outside.
# Which back-ends can read each (SQLite's JSON functions read "\u0000"; jsonb cannot).
DAMAGE = [
    pytest.param('{"label":"lamp","note":"a\\u0000b"}', {"sqlite"}, id="nul-escape"),
    pytest.param('{"label":"lamp","flips":NaN}', set(), id="nan"),
    pytest.param('{"label":"lamp","flips":-Infinity}', set(), id="infinity"),
    pytest.param("{not json", set(), id="not-json"),
    pytest.param("[1, 2]", set(), id="not-an-object"),
]


@pytest.mark.parametrize(("context", "readable_on"), DAMAGE)
def test_filtered_listing_skips_and_reports_an_unreadable_row(
    store: Store, store_url: str, context: str, readable_on: set[str]
) -> None:
    """find/count with where= list the good rows; the damaged one is in .skipped, named
    (or listed, on a back-end that can read it)."""
    store.create("toggle", id="a", label="lamp")
    store.create("toggle", id="damaged", label="lamp")
    store.create("toggle", id="b", label="fan")
    raw_sql(store_url, "UPDATE lk_instances SET context = ? WHERE id = 'damaged'", (context,))
    readable = store_url.split(":")[0] in readable_on
    found = store.find(where={"label": "lamp"})
    assert [s.id for s in found] == (["damaged", "a"] if readable else ["a"])
    assert [s.id for s in found.skipped] == ([] if readable else ["damaged"])
    if not readable:
        assert "where= cannot be evaluated" in found.skipped[0].reason
    assert store.count(where={"label": "lamp"}) == (2 if readable else 1)
    assert store.count("toggle", where={"label": None}) == 0
    assert [s.id for s in store.find("toggle", "off", where={"label": "fan"})] == ["b"]
    assert sorted(s.id for s in store.find()) == ["a", "b", "damaged"]  # unfiltered: as before


def test_a_context_with_nul_written_by_the_store_itself(store: Store) -> None:
    """The store accepts such a context (valid Python data); filters then skip that
    row on a database whose JSON type refuses it, and still match it where it can be read."""
    store.create("toggle", id="odd", label="x\x00y")
    store.create("toggle", id="plain", label="lamp")
    found = store.find(where={"label": "lamp"})
    assert [s.id for s in found] == ["plain"]
    assert [s.id for s in found.skipped] in ([], ["odd"])
    assert store.count(where={"label": "lamp"}) == 1


def test_keyset_pages_keep_skipped_rows_in_their_place(store: Store, store_url: str) -> None:
    """A skipped row takes its slot in a page, so paging goes on past it and covers every
    row exactly once."""
    for name in ("r1", "r2", "r3", "r4"):
        store.create("toggle", id=name, label="lamp")
    raw_sql(store_url, "UPDATE lk_instances SET context = '{oops' WHERE id = 'r2'")
    seen: list[str] = []
    skipped: list[str] = []
    after = None
    while True:
        page = store.find(where={"label": "lamp"}, limit=2, after=after)
        seen += [s.id for s in page]
        skipped += [s.id for s in page.skipped]
        if page.next is None:
            break
        after = page.next
    assert sorted(seen) == ["r1", "r3", "r4"]
    assert skipped == ["r2"]


def test_nul_in_a_filter_value_is_refused_alike(store: Store) -> None:
    """A value no back-end can compare is a StoreError on both (never a driver error)."""
    with pytest.raises(StoreError, match=r"NUL character"):
        store.find(where={"label": "a\x00b"})
