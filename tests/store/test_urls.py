"""Store URLs mean one thing or are refused; messages hide a password only where it is."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lifecyclekit.store import NoSuchStore, StoreError, open_async_store, open_store
from tests.helpers import postgres_url
from tests.store_machines import REGISTRY


def test_a_single_slash_is_refused_not_read_as_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:/abs.db was opened as ./abs.db; it is refused with the accepted forms."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=r"'sqlite:/abs.db' is not a SQLite file URL.*////"):
        open_store("sqlite:/abs.db", create=True)
    assert list(tmp_path.iterdir()) == []


def test_extra_slashes_before_an_absolute_path(tmp_path: Path) -> None:
    """sqlite://///tmp/x.db failed with "invalid uri authority: tmp"; extra slashes read
    as the absolute path, as a shell reads them."""
    with open_store(f"sqlite:////{tmp_path}/x.db", registry=REGISTRY) as store:
        store.create("toggle", id="t")
    assert (tmp_path / "x.db").is_file()


def test_a_fragment_is_refused_and_percent_23_names_a_hash(tmp_path: Path) -> None:
    """Issue: sqlite:////tmp/a#b.db silently opened /tmp/a (the URL parser drops the
    fragment). Both openers refuse it, creating nothing, and say to write '#' as %23, which
    opens the file with '#' in its name."""
    url = f"sqlite:///{tmp_path}/a#b.db"
    refused = r"has a '#'.*write a '#' in the path as %23"
    with pytest.raises(StoreError, match=refused):
        open_store(url, registry=REGISTRY, create=True)
    with pytest.raises(StoreError, match=refused):
        open_async_store(url, registry=REGISTRY, create=True)
    assert list(tmp_path.iterdir()) == []
    with open_store(f"sqlite:///{tmp_path}/a%23b.db", registry=REGISTRY, create=True) as store:
        store.create("toggle", id="t")
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".db"] == ["a#b.db"]


@pytest.mark.postgres
def test_a_database_named_like_the_password_is_shown() -> None:
    """The password is hidden in its URL position only: a missing database that happens to
    share its name is named (before: database "***" does not exist)."""
    parts = urlsplit(postgres_url())
    if not parts.password:
        pytest.skip("the test server's URL has no password")
    url = postgres_url().replace(parts.path, f"/{parts.password}", 1)
    with pytest.raises(NoSuchStore) as caught:
        open_store(url, timeout=5)
    message = str(caught.value)
    assert f'database "{parts.password}" does not exist' in message
    assert f":{parts.password}@" not in message
    assert ":***@" in message
