"""Fixtures for the FreeRADIUS tests: a private pam-guard config and store per test, and a
real freeradius (tests/support/radius.py) using pam-guard's packaged module against it."""

from __future__ import annotations

import pytest

from tests.support import radius as support
from tests.support import stock_radius
from tests.support.fixtures import made_then_removed
from tests.support.pam import GuardConfig

pytestmark = pytest.mark.radius


def pytest_collection_modifyitems(items):
    why = support.have_freeradius()
    for item in items:
        if "tests/radius/" in str(item.fspath):
            item.add_marker(pytest.mark.radius)
            if why:
                item.add_marker(pytest.mark.skip(reason=why))
            elif "start_stock_server" in getattr(item, "fixturenames", ()):
                why = stock_radius.missing()
                if why:
                    item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def make_guard():
    """make_guard({section: {key: value}}) -> GuardConfig (config + SQLite store), removed after."""
    yield from made_then_removed(GuardConfig, GuardConfig.remove)


@pytest.fixture
def guard(make_guard):
    return make_guard()


@pytest.fixture
def start_server():
    """start_server(guard, **kw) -> RadiusServer using pam-guard with guard's config; stopped after."""
    yield from made_then_removed(
        lambda guard, **kw: support.start_radius(guard.path, env=guard.env, **kw),
        lambda server: server.stop(),
    )


@pytest.fixture
def server(guard, start_server):
    return start_server(guard)


@pytest.fixture
def start_stock_server():
    """start_stock_server(guard, **kw) -> Debian's own raddb with pam-guard wired in
    (tests/support/stock_radius.py); stopped after."""
    yield from made_then_removed(stock_radius.start_stock_radius, lambda server: server.stop())
