"""Fixtures for the real-PAM tests: users, service files with the packaged stack, a private
config and store per test, and a syslog capture for the whole run."""

from __future__ import annotations

import pytest

from tests.support import pam as support
from tests.support.fixtures import made_then_removed

pytestmark = pytest.mark.pam


def pytest_collection_modifyitems(items):
    why = support.have_pam_tools()
    for item in items:
        if "tests/pam/" in str(item.fspath):
            item.add_marker(pytest.mark.pam)
            if why:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def syslog():
    """What pam-guard sent to syslog during the run (see SyslogCapture)."""
    capture = support.SyslogCapture()
    yield capture
    capture.close()


@pytest.fixture
def make_user():
    """make_user() -> User: a real local user with a password, removed afterwards."""
    yield from made_then_removed(support.create_user, lambda user: support.remove_user(user.name))


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def make_guard():
    """make_guard({section: {key: value}}) -> GuardConfig with its own store, removed after."""
    yield from made_then_removed(support.GuardConfig, support.GuardConfig.remove)


@pytest.fixture
def make_service():
    """make_service(text) -> a unique /etc/pam.d service name, removed afterwards."""
    yield from made_then_removed(support.write_service, support.remove_service)


@pytest.fixture
def guarded(make_guard, make_service):
    """guarded(sections) -> (guard, service): the packaged stack on a private config."""

    def make(sections=None):
        guard = make_guard(sections)
        return guard, make_service(support.packaged_stack(guard.path))

    return make
