"""Real PAM logins and drop-in config files: the next login sees a drop-in added and removed
(the login path's snapshot covers them), and an invalid drop-in refuses logins as a broken
main config does, with a syslog line naming the file."""

from __future__ import annotations

import os

from tests.support.fixtures import write_dropin
from tests.support.pam import pamtester

RHOST = "192.0.2.21"
UNAVAILABLE = "login service unavailable"


def test_a_login_sees_a_dropin_and_its_removal(guarded, user):
    guard, service = guarded({"lockout": {"max_attempts": 1}})

    def wrong_then_right():
        assert not pamtester(service, user.name, "wrong", rhost=RHOST, env=guard.env).ok
        return pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env)

    assert pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env).ok
    path = write_dropin(guard.path, "50-nolock.toml", "[lockout]\nenabled = false\n")
    assert wrong_then_right().ok  # the drop-in's value: no lock
    os.unlink(path)
    refused = wrong_then_right()  # the main file's max_attempts = 1 again: locked
    assert not refused.ok and "expired" in refused.output, refused


def test_an_invalid_dropin_refuses_with_a_log_line(guarded, user, syslog):
    guard, service = guarded({"failure": {"on_store_error": "allow"}})  # not usable: deny
    assert pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env).ok
    bad = write_dropin(guard.path, "50-typo.toml", "[lockout]\nmax_atempts = 3\n")
    result = pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env)
    assert result.returncode == 1 and UNAVAILABLE in result.output
    assert any(
        f"{bad}: lockout.max_atempts" in line and "preauth" in line for line in syslog.lines()
    )
    os.unlink(bad)
    assert pamtester(service, user.name, user.password, rhost=RHOST, env=guard.env).ok
