"""DB-API connections for the login path: sqlite3 for the default store, psycopg2 for PostgreSQL.

SQLAlchemy costs ~9x a do-nothing PAM hook to import (shared/PERF.md), so the login path talks
to the same schema through the plain driver. Statements are written once with `:name`
parameters (store/statements.py) and converted for psycopg2 here.

An SQLite store is opened read-write without create: SQLite never makes an empty database in
its place. A store that does not exist is made at first use, complete at the newest schema,
by store.migrate (SPEC §10): SQLAlchemy and Alembic are imported then, and only then, since
that happens once in the life of a store; one that exists is never made again (§12).
"""

from __future__ import annotations

import operator
import os
import re

from store.url import StoreError, missing, split_url

TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: the login path imports no typing
    from collections.abc import Callable, Sequence
    from typing import Any

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class Connection:
    """One DB-API connection with `:name` statements and explicit short transactions."""

    __slots__ = ("raw", "dialect", "_cache", "_error", "_reopen", "_fresh")

    def __init__(
        self,
        raw: Any,
        dialect: str,
        error_types: tuple[type[BaseException], ...],
        reopen: Callable[[], Any] | None = None,
    ) -> None:
        self.raw = raw
        self.dialect = dialect
        # statement -> its text for psycopg2 (_sql), or for sqlite3 with the order of its
        # values (_positional)
        self._cache: dict[str, Any] = {}
        self._error = error_types
        self._reopen = reopen  # makes a new raw connection (server stores only)
        self._fresh = False  # a transaction began and nothing has run in it yet

    def _sql(self, sql: str) -> str:
        if self.dialect == "sqlite":
            return sql
        text = self._cache.get(sql)
        if text is None:
            text = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))
            self._cache[sql] = text
        return text

    def _positional(self, sql: str) -> Any:
        """(`sql` with `?` for each `:name`, a function from a parameter dict to the values
        in that order): sqlite3 binds a row of values ~3 us faster than a dict of ten
        (measured), which execute_many pays for every row of a batch."""
        found = self._cache.get(sql)
        if found is None:
            names = _NAMED.findall(sql)
            found = self._cache[sql] = (
                _NAMED.sub("?", sql),
                operator.itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],),
            )
        return found

    def execute(self, sql: str, params: Any = None) -> Any:
        """Run one statement; return a cursor (rows via fetchone/fetchall)."""
        text = self._sql(sql)
        try:
            cur = self.raw.cursor()
            cur.execute(text, params or {})
        except self._error as exc:
            if not self._lost_before_work():
                raise StoreError(f"{type(exc).__name__}: {exc}") from exc
            # The server went away since the last transaction (restart, failover, idle
            # cut): nothing of this transaction ran, so one retry on a new connection is
            # safe, and the login is not refused for a store that is back.
            self._reconnect()
            try:
                cur = self.raw.cursor()
                cur.execute(text, params or {})
            except self._error as again:
                raise StoreError(f"{type(again).__name__}: {again}") from again
        self._fresh = False
        return cur

    def _lost_before_work(self) -> bool:
        return self._fresh and self._reopen is not None and bool(getattr(self.raw, "closed", 0))

    def _reconnect(self) -> None:
        self._fresh = False
        self.close()
        assert self._reopen is not None  # _lost_before_work said so
        self.raw = self._reopen()

    def one(self, sql: str, params: Any = None) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Any = None) -> list[Any]:
        rows: list[Any] = self.execute(sql, params).fetchall()
        return rows

    def execute_many(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        """Run one statement once per parameter dict of `rows`, inside the open transaction
        (one call into the driver: no per-row Python work between the rows)."""
        if not rows:
            return
        try:
            if self.dialect == "sqlite":
                text, values = self._positional(sql)
                self.raw.cursor().executemany(text, map(values, rows))
            else:
                # psycopg2's executemany is one round trip a row; execute_batch sends them
                # in pages (measured in the RADIUS recorder's success batches).
                from psycopg2.extras import execute_batch

                execute_batch(self.raw.cursor(), self._sql(sql), rows, page_size=200)
        except self._error as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc
        self._fresh = False

    def read_alone(self, body: Callable[[Connection], Any]) -> Any:
        """body(self), whose reads are one statement each and need no snapshot shared between
        them: no transaction around them. On SQLite one statement reads one consistent
        snapshot as it is; on PostgreSQL in autocommit, so a login's one read is one round
        trip instead of three (BEGIN, the statement, ROLLBACK)."""
        if self.dialect == "sqlite":
            return body(self)
        try:
            self.raw.autocommit = True
        except self._error as exc:  # a connection closed, or a transaction left open
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc
        self._fresh = True  # nothing ran yet: a connection found lost may be retried
        try:
            return body(self)
        finally:
            try:
                if self.raw.autocommit:
                    self.raw.autocommit = False
                else:  # reconnected meanwhile: the new connection opened a transaction
                    self.rollback()
            except self._error:
                pass  # a connection gone meanwhile: the body's error says so

    def begin(self, write: bool) -> None:
        """Start a transaction; on SQLite a write one takes the write lock at once."""
        if self.dialect == "sqlite":
            self.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        else:
            self._fresh = True  # psycopg2 begins with the first statement

    def commit(self) -> None:
        try:
            self.raw.commit() if self.dialect != "sqlite" else self.raw.execute("COMMIT")
        except self._error as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc

    def rollback(self) -> None:
        try:
            if self.dialect == "sqlite":
                if self.raw.in_transaction:
                    self.raw.execute("ROLLBACK")
            else:
                self.raw.rollback()
        except Exception:  # noqa: BLE001 - a failed rollback leaves nothing more to undo
            pass

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:  # noqa: BLE001
            pass


def _access_hint(path: str) -> str:
    """Why a process that is not root cannot open the SQLite store, when that is why (radiusd
    runs as freerad on Debian), with the fix; else nothing."""
    uid = os.geteuid()
    directory = os.path.dirname(path) or "."
    if uid == 0 or (os.access(path, os.R_OK | os.W_OK) and os.access(directory, os.W_OK | os.X_OK)):
        return ""
    return (
        f" (uid {uid} may not write it or its directory: as root, run "
        f"share-store.sh {directory} USER, from pam-guard's share/ directory)"
    )


def _open_sqlite(sqlite3: Any, target: str, timeout: float) -> Any:
    raw = sqlite3.connect(
        f"file:{target}?mode=rw",
        uri=True,
        timeout=timeout,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        # A file that is not a database fails here, not in the middle of a login.
        raw.execute("SELECT 1 FROM accounts LIMIT 1")
    except BaseException:
        raw.close()
        raise
    return raw


def create_missing(path: str) -> bool:
    """Make the SQLite store at `path` if nothing is there (store.migrate.create_sqlite_store);
    True when this call made it. Raises StoreError."""
    try:
        from store.migrate import create_sqlite_store  # SQLAlchemy, Alembic: only now
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreError(f"cannot create store {path}: {exc}") from exc
    try:
        return create_sqlite_store(path)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the migrations raise: no store
        raise StoreError(f"cannot create store {path}: {type(exc).__name__}: {exc}") from exc


def connect(url: str, timeout: float = 2.0) -> Connection:
    """Open the store at `url`, waiting at most `timeout` seconds for a lock or a server.

    A SQLite store that does not exist is made first, in its directory, which must exist."""
    dialect, target = split_url(url)
    if dialect == "sqlite":
        # The C module alone: the sqlite3 package also imports datetime for adapters the
        # store never uses, ~2 ms of every PAM login process (shared/PERF.md's method).
        import _sqlite3 as sqlite3

        try:
            raw = _open_sqlite(sqlite3, target, timeout)
        except sqlite3.Error as exc:
            if not missing(target):
                raise StoreError(
                    f"cannot open store {target}: {exc}{_access_hint(target)}"
                ) from exc
            create_missing(target)  # first use (or made meanwhile by another process)
            try:
                raw = _open_sqlite(sqlite3, target, timeout)
            except sqlite3.Error as again:
                raise StoreError(
                    f"cannot open store {target}: {again}{_access_hint(target)}"
                ) from again
        return Connection(raw, "sqlite", (sqlite3.Error,))
    try:
        import psycopg2
    except ImportError as exc:  # pragma: no cover - depends on the install
        import sys

        raise StoreError(
            f"the PostgreSQL driver psycopg2 is not installed in {sys.prefix} "
            f"(install it: {sys.prefix}/bin/pip install psycopg2-binary)"
        ) from exc
    millis = int(timeout * 1000)

    def reopen() -> Any:
        try:
            return psycopg2.connect(
                target,
                connect_timeout=max(1, int(timeout)),
                options=f"-c statement_timeout={millis} -c lock_timeout={millis}",
                # A server host that vanishes mid-session (no ACKs) drops the connection
                # after the timeout instead of after the kernel's ~15 minutes of retries.
                tcp_user_timeout=millis,
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=max(1, int(timeout)),
                keepalives_count=3,
            )
        except psycopg2.Error as exc:
            raise StoreError(f"cannot reach store: {exc}".strip()) from exc

    return Connection(reopen(), "postgresql", (psycopg2.Error,), reopen)


__all__ = ["Connection", "StoreError", "connect", "create_missing", "split_url"]
