"""A SQLite store that does not exist is made at first use, in its existing directory, at the
newest schema, private, with one log line; one that exists is never made again (SPEC §10,
§12). Processes that race to a missing store all use the one store that won."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat

import pytest

from store.db import StoreError, connect, create_missing
from store.migrate import alembic_config, engine_for, head_revision
from tests.store import racers
from tests.store.test_migrations import schema_diff

N = 8
WHEN = 1_800_000_000.0


def _url(path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def store_dir(tmp_path):
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    return directory


def _look(path) -> tuple:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return (
            conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("SELECT version_num FROM alembic_version").fetchone()[0],
            conn.execute("PRAGMA integrity_check").fetchone()[0],
        )
    finally:
        conn.close()


def _leftovers(directory) -> list:
    return sorted(n for n in os.listdir(directory) if n.startswith("."))


def test_first_connection_makes_the_store_at_the_newest_schema(store_dir):
    path = store_dir / "pam-guard.db"
    conn = connect(_url(path))
    try:
        assert conn.one("SELECT count(*) FROM events") == (0,)
    finally:
        conn.close()
    assert _look(path) == ("wal", head_revision(), "ok")
    assert schema_diff(_url(path)) == []
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert _leftovers(store_dir) == []
    assert create_missing(str(path)) is False  # there now: nothing is made again


def test_a_store_shared_with_its_group_is_made_0660(store_dir):
    # share-store.sh's directory: root:pam-guard 2770; files in it 0660
    os.chmod(store_dir, 0o2770)
    path = store_dir / "pam-guard.db"
    assert create_missing(str(path)) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    assert os.stat(path).st_gid == os.stat(store_dir).st_gid


def test_the_umask_does_not_widen_or_narrow_the_mode(store_dir):
    old = os.umask(0o000)
    try:
        assert create_missing(str(store_dir / "pam-guard.db")) is True
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store_dir / "pam-guard.db").st_mode) == 0o600


def test_a_missing_directory_is_a_store_error_and_nothing_is_made(tmp_path):
    path = tmp_path / "no-such-dir" / "pam-guard.db"
    with pytest.raises(StoreError, match="no directory"):
        connect(_url(path))
    assert not os.path.exists(path.parent)


def _older_store(path) -> None:
    """A store at revision 0001, with a row in it."""
    from alembic import command

    engine = engine_for(_url(path))
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.exec_driver_sql(
                "INSERT INTO accounts (username, reset_at, lock_reason, exempt,"
                " status_why, notify_on, notify_to) "
                "VALUES ('old', 0, '', 0, '', '', '')"
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["empty", "corrupt", "older", "dangling_link"])
def test_a_store_that_exists_is_never_made_again(store_dir, kind):
    path = store_dir / "pam-guard.db"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(b"not a database\n" * 500)
    elif kind == "older":
        _older_store(path)
    else:
        os.symlink(store_dir / "elsewhere.db", path)
    before = os.lstat(path)
    content = b"" if kind == "dangling_link" else path.read_bytes()
    if kind == "older":
        connect(_url(path)).close()  # a store it can open: opened as it is
    else:
        with pytest.raises(StoreError):
            connect(_url(path))
    assert create_missing(str(path)) is False
    after = os.lstat(path)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    if kind != "dangling_link":
        assert path.read_bytes() == content
    else:
        assert not os.path.exists(store_dir / "elsewhere.db")
    if kind == "older":
        assert _look(path)[1] == "0001"
    assert _leftovers(store_dir) == []


def test_n_processes_racing_to_a_missing_store_all_record(store_dir):
    """N processes (spawned, as PAM logins are) find no store at the same moment; each
    records one failure. One store is made (by exactly one of them), whole, and holds N."""
    path = store_dir / "pam-guard.db"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N)
    with ctx.Pool(N, initializer=racers.init, initargs=(barrier,)) as pool:
        results = pool.starmap(racers.first_failure, [(_url(path), "racer", WHEN)] * N, chunksize=1)
    assert [(reasons, error) for _made, _tried, reasons, error in results] == [((), "")] * N
    assert sum(made for made, _t, _r, _e in results) == 1
    tried = sum(t for _m, t, _r, _e in results)
    print(f"{tried} of {N} processes built a store; one of them won")
    assert _look(path) == ("wal", head_revision(), "ok")
    conn = connect(_url(path))
    try:
        assert conn.one(
            "SELECT count(*) FROM events WHERE username = 'racer' AND outcome = 'failure'"
        ) == (N,)
    finally:
        conn.close()
    assert _leftovers(store_dir) == []
