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


@pytest.fixture
def gate_and_copies(sqlite_url):
    """(gate, copies) on a fresh SQLite store under the default settings, as the RADIUS
    recorder has them: the gate's clock stands at 1,800,000,000, and the copies
    (radius_hook.hot.HotAccounts) watch the store's real change counters."""
    from policy.settings import build_settings
    from radius_hook.hot import HotAccounts
    from radius_hook.radius_gate import RadiusGate
    from store import changes

    settings = build_settings({"store": {"url": sqlite_url, "timeout_seconds": 1}}, "<test>")
    gate = RadiusGate(settings, clock=lambda: 1_800_000_000.0)
    copies = HotAccounts(changes.path_for(sqlite_url))
    yield gate, copies
    copies.close()
    gate.close()
