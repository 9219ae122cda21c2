"""The daemon entry as admins deploy it: a real sshd (its own PAM service, the shipped sshd
stack) and the real ssh client, keyboard-interactive, from 127.0.0.1."""

from __future__ import annotations

import time

import pytest

from tests.support.pam import LOCKED_THEN_UNLOCKED, create_user, packaged_stack, remove_user
from tests.support.sshd import Sshd, have_ssh_tools

pytestmark = pytest.mark.skipif(have_ssh_tools() is not None, reason=str(have_ssh_tools()))


@pytest.fixture
def shell_user():
    user = create_user(shell="/bin/sh")
    yield user
    remove_user(user.name)


@pytest.fixture
def sshd(make_guard, make_service):
    """(guard, server): sshd whose PAM service holds the shipped sshd stack on a test config."""
    guard = make_guard()
    server = Sshd(make_service(packaged_stack(guard.path)))
    yield guard, server
    server.stop()


def test_ssh_locks_after_three_wrong_passwords_and_shows_the_line(sshd, shell_user):
    guard, server = sshd
    code, output = server.login(shell_user.name, shell_user.password, "echo in")
    assert code == 0 and "in" in output, output + server.output()
    for _ in range(3):
        assert server.login(shell_user.name, "wrong-password")[0] != 0
    code, output = server.login(shell_user.name, shell_user.password, "echo in")
    assert code != 0
    assert "Account locked: too many failed logins" in output, output

    guard.cli("unlock", shell_user.name)
    assert server.login(shell_user.name, shell_user.password)[0] == 0

    records = guard.history(shell_user.name)
    assert [r["outcome"] for r in reversed(records)] == LOCKED_THEN_UNLOCKED
    assert {(r["service"], r["address"]) for r in records} == {(server.service, "127.0.0.1")}


def test_an_ssh_session_is_tracked_and_ended(sshd, shell_user):
    guard, server = sshd
    assert server.login(shell_user.name, shell_user.password, "true")[0] == 0

    def ended():  # sshd closes the PAM session after the client has gone
        return guard.query(
            "SELECT service, address, ended FROM sessions WHERE username = ? AND ended IS NOT NULL",
            (shell_user.name,),
        )

    deadline = time.monotonic() + 15
    while not ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    sessions = guard.query(
        "SELECT service, address, ended FROM sessions WHERE username = ?", (shell_user.name,)
    )
    assert len(sessions) == 1, sessions
    service, address, ended = sessions[0]
    assert (service, address) == (server.service, "127.0.0.1") and ended is not None
