"""Store URLs and the error every store reader raises: what store.db and store.migrate
both need, in a module that imports neither."""

from __future__ import annotations


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
