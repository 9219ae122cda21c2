"""Creating and upgrading the store: Alembic migrations run on a SQLAlchemy engine.

`create_or_upgrade(url)` is what the installer and `pam-guard` call: it makes the SQLite file
(mode 0600 in a 0700 directory) when absent, switches it to WAL, and upgrades the schema to the
newest revision, so a new column never needs the admin to drop the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event

from store.db import split_url

MIGRATIONS = Path(__file__).with_name("migrations")


# Alembic is imported where it is used: every admin command needs engine_for, few migrate.


def alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def engine_for(url: str, timeout: float = 5.0):
    """A SQLAlchemy engine for the admin side, with the same pragmas as the login path."""
    dialect, _ = split_url(url)
    if dialect == "sqlite":
        engine = create_engine(url, connect_args={"timeout": timeout})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
            dbapi_conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")

        return engine
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True,
                         connect_args={"connect_timeout": int(timeout)})


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
    """Bring the store at `url` to the newest schema; returns the revision it is at."""
    prepare_sqlite_file(url)
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            from alembic import command

            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        # Whoever keeps copies of account state (the RADIUS module) starts afresh.
        from store.changes import note_change

        note_change(url, None)
        return current_revision(engine)
    finally:
        engine.dispose()


def current_revision(engine) -> str:
    with engine.connect() as conn:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision() or ""


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""
