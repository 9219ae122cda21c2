"""Store tests: the real PostgreSQL fixtures, and one fresh store per engine for each test."""

import pytest

from tests.support.postgres import postgres_server, postgres_url  # noqa: F401


@pytest.fixture
def sqlite_url(tmp_path):
    """URL of a fresh SQLite store made by the migrations, in this test's directory."""
    from store.migrate import create_or_upgrade

    url = f"sqlite:///{tmp_path / 'store' / 'pam-guard.db'}"
    create_or_upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request):
    """A fresh migrated store on each engine in turn."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")
