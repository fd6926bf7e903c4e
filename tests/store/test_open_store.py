"""open_store: URL forms, options, stores that are not there, read-only files, passwords."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lifecyclekit.store import (
    ConnectionLost,
    NoSuchStore,
    StoreError,
    open_store,
)
from tests.helpers import postgres_url
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY

FORMS = "accepted forms: sqlite:///relative/path.db, sqlite:////absolute/path.db"


@pytest.mark.parametrize(
    ("url", "pattern"),
    [
        ("mysql://x/y", "has an unknown scheme"),
        ("sqlite://", "is not a SQLite file URL"),
        ("sqlite://host/x.db", "is not a SQLite file URL"),
        ("sqlite:x.db", "is not a SQLite file URL"),
        ("sqlite:///", "is not a SQLite file URL"),
        ("sqlite:///dir/", "names no file"),
        ("sqlite:///x.db?journal=off", r"unknown option\(s\) journal \(known: synchronous\)"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous='sometimes'"),
        ("postgresql://u:p@h:notaport/db", "cannot be parsed"),
    ],
)
def test_bad_urls(
    opener: Opener, url: str, pattern: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Malformed URLs are StoreErrors listing the accepted forms; nothing is created."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=pattern) as caught:
        opener(url)
    assert FORMS in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_relative_absolute_and_escaped_paths(
    opener: Opener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///relative.db is relative to the working directory, sqlite:////abs.db is
    absolute, and percent-escapes are decoded."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub dir").mkdir()
    for url, path in [
        ("sqlite:///rel.db", tmp_path / "rel.db"),
        (f"sqlite:///{tmp_path}/abs.db", tmp_path / "abs.db"),
        ("sqlite:///sub%20dir/esc%3F.db", tmp_path / "sub dir" / "esc?.db"),
    ]:
        with opener(url, registry=REGISTRY) as store:
            store.create("toggle", id="t")
        assert path.is_file(), url


@pytest.mark.parametrize("level", ["full", "normal"])
def test_sqlite_options(tmp_path: Path, level: str) -> None:
    """WAL mode, a busy timeout, and synchronous as the URL says."""
    with open_store(f"sqlite:///{tmp_path}/s.db?synchronous={level}", registry=REGISTRY) as store:
        store.create("toggle", id="t")
        connection = store._backend._connection(create=False)  # type: ignore[attr-defined]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (
            connection.execute("PRAGMA synchronous").fetchone()[0]
            == {"full": 2, "normal": 1}[level]
        )
        assert connection.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_memory_store(opener: Opener) -> None:
    """sqlite:///:memory: works for the store's lifetime, from any thread."""
    import threading

    with opener("sqlite:///:memory:", registry=REGISTRY) as store:
        store.create("toggle", id="t")
        thread = threading.Thread(target=store.send, args=("t", "flip"), kwargs={"text": "x"})
        thread.start()
        thread.join()
        assert store.get("t").state == "on"


def test_reads_of_a_missing_store_create_nothing(opener: Opener, tmp_path: Path) -> None:
    """Opening a missing file and reading from it is NoSuchStore; no file appears. A write
    that does not create (send, delete) is NoSuchStore too."""
    url = f"sqlite:///{tmp_path}/missing.db"
    with opener(url, registry=REGISTRY) as store:
        for read in (
            lambda: store.get("t"),
            lambda: store.load("t"),
            lambda: store.history("t"),
            lambda: store.find(),
            lambda: store.count(),
            lambda: store.changes(),
            lambda: store.send("t", "flip", text="x"),
            lambda: store.delete("t"),
        ):
            with pytest.raises(NoSuchStore, match=f"no such store: {url}"):
                read()
            assert not (tmp_path / "missing.db").exists()
        store.create("toggle", id="t")  # the first creating write makes it
    assert (tmp_path / "missing.db").is_file()


READ_ONLY_SCRIPT = """
import json, sys
from lifecyclekit.store import StoreError, open_async_store, open_store
from tests.store.blocking import BlockingStore, Portal
from tests.store_machines import REGISTRY
out = {}
portal = Portal() if sys.argv[2] == "async" else None
if portal is None:
    store = open_store(sys.argv[1], registry=REGISTRY)
else:
    store = BlockingStore(open_async_store(sys.argv[1], registry=REGISTRY), portal)
with store:
    out["state"] = store.get("t").state
    out["history"] = [r.seq for r in store.history("t")]
    out["found"] = [s.id for s in store.find()]
    try:
        store.send("t", "flip", text="no")
    except StoreError as exc:
        out["write"] = f"{type(exc).__name__}: {exc}"
if portal is not None:
    portal.close()
print(json.dumps(out))
"""


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_store_opens_for_reading(tmp_path: Path, what: str, flavour: str) -> None:
    """A store whose file (or folder) cannot be written reads normally; a write is a
    StoreError saying the store is read-only. (Run in a process without root's power to
    ignore permissions.)"""
    folder = tmp_path / "ro"
    folder.mkdir()
    url = f"sqlite:///{folder}/store.db"
    with open_store(url, registry=REGISTRY) as store:
        store.create("toggle", id="t")
        store.send("t", "flip", text="x")
    os.chmod(folder / "store.db", 0o444)
    if what == "directory":
        os.chmod(folder, 0o555)
    command = [sys.executable, "-c", READ_ONLY_SCRIPT, url, flavour]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop the permission override")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2]
        )
    finally:
        os.chmod(folder, 0o755)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["state"], out["history"], out["found"]) == ("on", [1], ["t"])
    assert out["write"].startswith("StoreError: Cannot send 'flip' to 't': the store sqlite:///")
    assert "is read-only" in out["write"]
    assert (folder / "store.db").stat().st_mode & 0o777 == 0o444


@pytest.mark.postgres
def test_postgres_errors_name_the_url_without_its_password(opener: Opener) -> None:
    """A wrong database is NoSuchStore, a wrong password or port a StoreError; neither
    message repeats the password."""
    from urllib.parse import urlsplit

    parts = urlsplit(postgres_url())
    port = parts.port or 5432
    wrong = f"{parts.username}:s3cr3t-pw@{parts.hostname}"
    cases = [
        (postgres_url().replace(parts.path, "/lk_no_such_db"), NoSuchStore, "does not exist"),
        (f"postgresql://{wrong}:{port}{parts.path}", StoreError, "authentication failed"),
        (f"postgresql://{wrong}:1{parts.path}", ConnectionLost, "cannot be reached"),
    ]
    for url, error, reason in cases:
        with pytest.raises(error, match=reason) as caught:
            opener(url, timeout=2)
        message = str(caught.value)
        assert "s3cr3t-pw" not in message
        assert f":{parts.password}@" not in message
        assert ":***@" in message
    assert not isinstance(caught.value, NoSuchStore)


def test_postgres_without_psycopg_says_how_to_install(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without psycopg the error names the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"pip install 'lifecyclekit\[postgres\]'"):
        opener("postgresql://nobody@127.0.0.1/none")
