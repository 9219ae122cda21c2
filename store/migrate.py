"""Creating and upgrading the store: Alembic migrations run on a SQLAlchemy engine.

`create_or_upgrade(url)` is what the installer and `pam-guard init-store` call: it makes the
SQLite file when absent, switches it to WAL, and upgrades the schema to the newest revision,
so a new column never needs the admin to drop the database.

`create_sqlite_store(path)` makes a missing SQLite store at first use (SPEC §10): any login
(store.db.connect imports this module only then) or command. The store is built complete
under a temporary name in the same directory and then hard-linked to its name, which fails
when that name exists: a store that exists (even empty, corrupt, or at an older revision) is
never replaced, and processes that race to make it all end up using the one that won, never
a half-made one.
"""

from __future__ import annotations

import os
import syslog
from pathlib import Path

from sqlalchemy import create_engine, event

from store.url import StoreError, missing, split_url

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: the login path imports no typing
    from typing import Any

MIGRATIONS = Path(__file__).with_name("migrations")


# Alembic is imported where it is used: every admin command needs engine_for, few migrate.


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def engine_for(url: str, timeout: float = 5.0) -> Any:
    """A SQLAlchemy engine for the admin side, with the same pragmas as the login path."""
    dialect, _ = split_url(url)
    if dialect == "sqlite":
        engine = create_engine(url, connect_args={"timeout": timeout})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
            dbapi_conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")

        return engine
    return create_engine(
        sqlalchemy_url(url), pool_pre_ping=True, connect_args={"connect_timeout": int(timeout)}
    )


def sqlalchemy_url(url: str) -> str:
    """The URL with psycopg2 named for a bare postgresql:// one.

    SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which pam-guard does not install;
    the login path (store.db) uses psycopg2, and so must the admin side.
    """
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg2{sep}{rest}"
    return url


def prepare_sqlite_file(url: str) -> None:
    """Make the store's directory (0700) and file (0600) before SQLite creates it."""
    dialect, path = split_url(url)
    if dialect != "sqlite":
        return
    target = Path(path)
    if not target.parent.exists():
        target.parent.mkdir(mode=0o700, parents=True)
    if not target.exists():
        fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.close(fd)


def create_or_upgrade(url: str) -> str:
    """Bring the store at `url` to the newest schema; returns the revision it is at.

    A missing SQLite store's directory is made (0700) here: this is the admin's own command
    (`pam-guard init-store`); a first use elsewhere needs the directory to exist.
    """
    dialect, path = split_url(url)
    if dialect == "sqlite" and missing(path):
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_sqlite_store(path)
    engine = engine_for(url)
    try:
        _upgrade(engine)
        # Whoever keeps copies of account state (the RADIUS module) starts afresh.
        from store.changes import note_change

        note_change(url, None)
        return current_revision(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Any) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def store_file_mode(directory: str) -> int:
    """The mode of a store file made in `directory`: 0660 in a directory its group may
    write (a store shared with radiusd's user by share-store.sh, whose group pam_guard.config
    accepts), else 0600."""
    return 0o660 if os.stat(directory).st_mode & 0o020 else 0o600


def create_sqlite_store(path: str) -> bool:
    """Make the SQLite store at `path`, at the newest schema, if nothing is there; True when
    this call made it (and logged it), False when something already was.

    Raises StoreError when it cannot be made: no such directory (never made here: a store
    path with a typo must not quietly start an empty history elsewhere), or one this process
    may not write."""
    directory = os.path.dirname(path) or "."
    if missing(directory):
        raise StoreError(
            f"cannot create store {path}: no directory {directory} "
            "(make it, or run 'pam-guard init-store')"
        )
    if not missing(path):
        return False
    import tempfile

    try:
        mode = store_file_mode(directory)
        fd, building = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".new"
        )
    except OSError as exc:  # a directory this process may not search or write
        raise StoreError(f"cannot create store {path}: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask
        os.close(fd)
        engine = engine_for(f"sqlite:///{building}")
        try:
            _upgrade(engine)
            revision = current_revision(engine)
        finally:
            engine.dispose()  # the last connection closes: the WAL is checkpointed, removed
        fd = os.open(building, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(building, path)  # never over a name that exists, unlike rename
        except FileExistsError:
            return False  # another process made it meanwhile: that one is the store
        _fsync_directory(directory)
    except OSError as exc:
        raise StoreError(f"cannot create store {path}: {exc.strerror or exc}") from exc
    finally:
        for leftover in (building, building + "-wal", building + "-shm", building + "-journal"):
            try:
                os.unlink(leftover)
            except OSError:
                pass
    # Processes that kept copies of a store that was there before start afresh.
    from store.changes import note_change

    note_change(f"sqlite:///{path}", None)
    from pam_guard.logline import send

    send(
        syslog.LOG_NOTICE,
        f"created the store {path} (SQLite, schema revision {revision}, "
        f"mode {mode:04o}): it did not exist",
    )
    return True


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_revision(engine: Any) -> str:
    with engine.connect() as conn:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision() or ""


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""
