"""The lock on the packaged stack, end to end: real users, pam_unix, pamtester, the admin
command (SPEC §4 `locked`, §8)."""

from __future__ import annotations

from tests.support.pam import pamtester

RHOST = "192.0.2.10"
LOCKED_LINE = "Account locked: too many failed logins"


def login(service, guard, user, password, rhost=RHOST):
    return pamtester(service, user.name, password, rhost=rhost, env=guard.env)


def outcomes(guard, user):
    return [(outcome, reasons) for _u, outcome, reasons, _a, _r in guard.events(user.name)]


def test_three_failures_lock_even_the_right_password_until_unlock(guarded, user, syslog):
    guard, service = guarded()
    assert login(service, guard, user, user.password).ok
    for i in range(3):
        result = login(service, guard, user, f"wrong-{i}")
        assert not result.ok and "Authentication failure" in result.output

    refused = login(service, guard, user, user.password)
    assert not refused.ok
    assert LOCKED_LINE in refused.output
    # Refused at preauth: pam_unix never asked for the password, and PAM says "expired".
    assert "Password:" not in refused.output
    assert "User account has expired" in refused.output
    assert outcomes(guard, user) == [
        ("success", ""),
        ("failure", ""),
        ("failure", ""),
        ("failure", ""),
        ("denied", "locked"),
    ]
    lines = syslog.lines()
    assert any(
        f"event=lock rhost={RHOST} reason=locked user={user.name} service={service} "
        "channel=pam detail=" in line
        for line in lines
    ), lines
    assert any(
        f"event=refused rhost={RHOST} reason=locked user={user.name} "
        f"service={service} channel=pam phase=preauth" in line
        for line in lines
    ), lines

    unlocked = guard.cli("unlock", user.name)
    assert "unlocked" in unlocked.stdout
    assert login(service, guard, user, user.password).ok
    assert outcomes(guard, user)[-1] == ("success", "")


def test_two_failures_then_the_right_password_get_in_and_reset_the_count(guarded, user):
    guard, service = guarded()
    for _round in range(2):
        for i in range(2):
            assert not login(service, guard, user, f"wrong-{i}").ok
        assert login(service, guard, user, user.password).ok
    # 4 failures in all, never 3 in a row: no lock.
    assert guard.query("SELECT locked_at FROM accounts WHERE username = ?", (user.name,)) == [
        (None,)
    ]


def test_a_local_login_without_rhost_is_locked_too(guarded, user):
    guard, service = guarded()
    for i in range(3):
        assert not pamtester(service, user.name, f"wrong-{i}", env=guard.env).ok
    refused = pamtester(service, user.name, user.password, env=guard.env)
    assert not refused.ok and LOCKED_LINE in refused.output
    assert [a for _u, _o, _r, a, _raw in guard.events(user.name)] == [None] * 4


def test_admin_users_need_twice_as_many_failures(guarded, user):
    guard, service = guarded({"lockout": {"admin_users": ["root", user.name]}})
    for i in range(5):
        assert not login(service, guard, user, f"wrong-{i}").ok
    assert login(service, guard, user, user.password).ok  # 5 < 6: still in (and reset)

    for i in range(6):
        assert not login(service, guard, user, f"wrong-{i}").ok
    refused = login(service, guard, user, user.password)
    assert not refused.ok and LOCKED_LINE in refused.output


def test_the_lock_is_per_user(guarded, make_user):
    guard, service = guarded()
    alice, bob = make_user(), make_user()
    for i in range(3):
        assert not login(service, guard, alice, f"wrong-{i}").ok
    assert not login(service, guard, alice, alice.password).ok
    assert login(service, guard, bob, bob.password).ok
