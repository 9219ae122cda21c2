"""Store URLs and the error every store reader raises: what store.db and store.migrate
both need, in a module that imports neither."""

from __future__ import annotations

import os


class StoreError(Exception):
    """The store is down, missing, locked past the timeout, unreadable or corrupt."""


def split_url(url: str) -> tuple[str, str]:
    """('sqlite', path) or ('postgresql', dsn-url) from an SQLAlchemy-style URL."""
    scheme, _, rest = url.partition("://")
    dialect = scheme.split("+")[0]
    if dialect == "sqlite":
        return "sqlite", rest[1:] if rest.startswith("/") else rest
    if dialect in ("postgresql", "postgres"):
        return "postgresql", "postgresql://" + rest
    raise StoreError(f"unsupported store URL {url!r}")


def missing(path: str) -> bool:
    """Whether nothing is at `path` for sure. A path this process may not look at (a
    directory it cannot search) is not missing: it is unreadable, and must never be made
    again in its place."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False
