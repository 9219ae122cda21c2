"""Odd PAM_RHOST values and user names: a clear log line, no crash, nothing recorded wrongly
(SPEC §12)."""

from __future__ import annotations

import pytest

from tests.support.pam import pamtester


@pytest.mark.parametrize(
    "rhost",
    ["host.example.com", "300.1.2.3", "10.0.0.1; rm -rf /", "fe80::1%eth0", "[2001:db8::1]"],
)
def test_rhost_that_is_not_an_address_is_kept_as_given_and_never_matches(guarded, user, rhost):
    guard, service = guarded({"ip_lock": {"enabled": True}})
    assert pamtester(service, user.name, user.password, rhost=rhost, env=guard.env).ok
    expected = {"fe80::1%eth0": "fe80::1", "[2001:db8::1]": "2001:db8::1"}.get(rhost)
    assert guard.events(user.name)[-1][1:] == ("success", "", expected, rhost)

    # With an address list, a login without a usable address is refused (unless `local`).
    guard.cli("ip", "allow", user.name, "0.0.0.0/0")
    guard.cli("ip", "allow", user.name, "::/0")
    result = pamtester(service, user.name, user.password, rhost=rhost, env=guard.env)
    assert result.ok == (expected is not None), result


def test_empty_rhost_is_a_local_login(guarded, user):
    guard, service = guarded()
    assert pamtester(service, user.name, user.password, rhost="", env=guard.env).ok
    assert guard.events(user.name)[-1][3:] == (None, None)


@pytest.mark.parametrize(
    "name, escaped, why",
    [
        ("x" * 10000, None, "longer than 256 bytes"),
        ("bob\x01admin", "bob\\x01admin", "holds control characters"),
        ("bob\x1b[31m", "bob\\x1b[31m", "holds control characters"),
        ("\u202enimda", "\\u202enimda", "holds bidirectional control characters"),
        (b"bob\xff", "bob\\xff", "not valid UTF-8"),
        ("", "", "empty"),
    ],
)
def test_invalid_user_name_is_refused_and_recorded_escaped(guarded, syslog, name, escaped, why):
    guard, service = guarded()
    result = pamtester(service, name, "whatever", rhost="192.0.2.30", env=guard.env)
    assert result.returncode == 1, result  # refused, not crashed
    assert "Login refused." in result.output and "Password:" not in result.output
    events = guard.events()
    assert len(events) == 1
    user, outcome, reasons, address, _raw = events[0]
    assert (outcome, reasons, address) == ("denied", "invalid_user", "192.0.2.30")
    if escaped is not None:
        assert user == escaped
    else:
        assert user.startswith("x" * 100) and len(user) < 400
    assert all(ord(ch) >= 32 for ch in user)
    assert guard.query("SELECT count(*) FROM accounts") == [(0,)]  # no account made
    assert any("preauth" in line and why in line for line in syslog.lines())


def test_unknown_user_wrong_password_records_one_failure(guarded):
    """A name that is valid but has no account: pam_unix fails, authfail records it."""
    guard, service = guarded()
    result = pamtester(service, "pgpam-nosuchuser", "x", rhost="192.0.2.31", env=guard.env)
    assert result.returncode == 1
    assert [e[1] for e in guard.events("pgpam-nosuchuser")] == ["failure"]
