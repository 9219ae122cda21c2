"""Fixtures for the real-PAM tests: users, service files with the packaged stack, a private
config and store per test, and a syslog capture for the whole run."""

from __future__ import annotations

import pytest

from tests.support import pam as support

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
    made = []

    def make(**kw):
        user = support.create_user(**kw)
        made.append(user.name)
        return user

    yield make
    for name in made:
        support.remove_user(name)


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def make_guard():
    """make_guard({section: {key: value}}) -> GuardConfig with its own store, removed after."""
    made = []

    def make(sections=None):
        guard = support.GuardConfig(sections)
        made.append(guard)
        return guard

    yield make
    for guard in made:
        guard.remove()


@pytest.fixture
def make_service():
    """make_service(text) -> a unique /etc/pam.d service name, removed afterwards."""
    made = []

    def make(text):
        name = support.write_service(text)
        made.append(name)
        return name

    yield make
    for name in made:
        support.remove_service(name)


@pytest.fixture
def guarded(make_guard, make_service):
    """guarded(sections) -> (guard, service): the packaged stack on a private config."""

    def make(sections=None):
        guard = make_guard(sections)
        return guard, make_service(support.packaged_stack(guard.path))

    return make
