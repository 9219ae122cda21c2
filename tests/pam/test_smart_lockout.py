"""Issue 18 on the packaged sshd stack, end to end: real users, pam_unix, pamtester with a
remote host, the admin command. Smart lockout (SPEC §4 `locked_unfamiliar`), growing locks
and the time left, address blocks (`source_blocked`, `blocks`/`unblock`), repeated wrong
passwords (lockout.ignore_repeated_password) and the session-open line."""

from __future__ import annotations

import json
import re

from tests.support.pam import pamtester

HOME = "198.51.100.7"  # the owner's usual network: 198.51.100.0/24
HOME_TOO = "198.51.100.9"
UNFAMILIAR_LINE = "Login refused: too many failed logins from unfamiliar places"
LOCKED_LINE = "Account locked: too many failed logins"
BLOCKED_LINE = "Login refused: too many failed logins from this address"


def login(guard, service, user, password, rhost, ops=("authenticate", "acct_mgmt")):
    return pamtester(service, user.name, password, rhost=rhost, ops=ops, env=guard.env)


def refused_before_password(result, line):
    """Refused in preauth: the user saw `line`, pam_unix never asked for the password."""
    return not result.ok and line in result.output and "Password:" not in result.output


def rows(guard, user, columns="outcome, reasons, bucket"):
    return guard.query(f"SELECT {columns} FROM events WHERE username = ? ORDER BY id", (user.name,))


def status(guard, user) -> dict:
    return json.loads(guard.cli("--json", "status", user.name).stdout)


# --- smart lockout ---------------------------------------------------------------------------


def test_twenty_unfamiliar_failures_never_stop_the_owner_at_home(guarded, user):
    guard, service = guarded({"lockout": {"unfamiliar_attempts": 5}})
    assert login(guard, service, user, user.password, HOME).ok  # home becomes familiar

    attackers = [f"203.0.113.{i}" if i % 2 else f"192.0.2.{i}" for i in range(1, 21)]
    results = [login(guard, service, user, f"guess-{i}", a) for i, a in enumerate(attackers)]
    assert all(not r.ok for r in results)
    # The first five are wrong passwords; from then on every unfamiliar place is refused
    # before the password is asked for.
    assert all("Password:" in r.output for r in results[:5])
    assert all(refused_before_password(r, UNFAMILIAR_LINE) for r in results[5:])
    recorded = rows(guard, user)
    assert recorded[1:6] == [("failure", "", "unfamiliar")] * 5
    assert recorded[6:] == [("denied", "locked_unfamiliar", None)] * 15

    # The owner, from another address of the same /24, still gets in; the account never
    # counted a failure.
    assert login(guard, service, user, user.password, HOME_TOO).ok
    report = status(guard, user)
    assert report["locked"] is False and report["failures_in_window"] == 0
    assert report["unfamiliar"]["locked"] is True

    # Failures from the familiar network still lock the account, for everyone.
    for i in range(3):
        assert not login(guard, service, user, f"typo-{i}", HOME_TOO).ok
    assert refused_before_password(login(guard, service, user, user.password, HOME), LOCKED_LINE)
    assert status(guard, user)["locked"] is True


def test_without_smart_lockout_unfamiliar_failures_lock_the_owner_out(guarded, user):
    guard, service = guarded()
    assert login(guard, service, user, user.password, HOME).ok
    for i in range(3):
        assert not login(guard, service, user, f"guess-{i}", f"203.0.113.{i + 1}").ok
    assert refused_before_password(login(guard, service, user, user.password, HOME), LOCKED_LINE)
    assert [r[2] for r in rows(guard, user)] == [None] * 5  # no unfamiliar count
    assert "locked_unfamiliar" not in {r[1] for r in rows(guard, user)}


# --- growing locks: the user and the admin see how long is left ----------------------------


def test_a_lock_that_lifts_by_itself_says_how_long_is_left(guarded, user):
    guard, service = guarded({"lockout": {"unlock_after_minutes": 5, "increment": 2.0}})
    for i in range(3):
        assert not login(guard, service, user, f"wrong-{i}", HOME).ok
    refused = login(guard, service, user, user.password, HOME)
    assert refused_before_password(refused, f"{LOCKED_LINE} (5 minutes left).")
    report = status(guard, user)
    assert report["locked"] is True and report["lock_left"] == "5 minutes"

    # The admin's unlock starts the count again; the next lock is 5 minutes once more.
    guard.cli("unlock", user.name)
    assert login(guard, service, user, user.password, HOME).ok
    for i in range(3):
        assert not login(guard, service, user, f"wrong-{i}", HOME).ok
    assert f"{LOCKED_LINE} (5 minutes left)." in login(guard, service, user, "x", HOME).output


def test_a_lock_until_an_admin_unlocks_says_so(guarded, user):
    guard, service = guarded()  # unlock_after_minutes = 0
    for i in range(3):
        assert not login(guard, service, user, f"wrong-{i}", HOME).ok
    refused = login(guard, service, user, user.password, HOME)
    assert refused_before_password(refused, f"{LOCKED_LINE}. Contact your administrator.")
    assert status(guard, user)["lock_left"] is None


# --- address blocks --------------------------------------------------------------------------

SPRAYER = "203.0.113.50"
BLOCKING = {
    # max_attempts high: these tests are about the address, not one account's lock
    "lockout": {"max_attempts": 10},
    "address_block": {
        "enabled": True,
        "attempts": 4,
        "block_minutes": 30,
        "ignore": ["127.0.0.0/8", "::1/128", "203.0.113.60"],
    },
}


def test_a_spraying_address_is_blocked_for_every_user_until_unblocked(guarded, make_user):
    guard, service = guarded(BLOCKING)
    alice, bob = make_user(), make_user()
    for target in (alice, bob, alice, bob):
        assert not login(guard, service, target, "Winter2024!", SPRAYER).ok

    for target in (alice, bob):  # the right password from there: refused before it is asked
        refused = login(guard, service, target, target.password, SPRAYER)
        assert refused_before_password(refused, f"{BLOCKED_LINE} (30 minutes left).")
    assert rows(guard, alice)[-1] == ("denied", "source_blocked", None)
    assert login(guard, service, alice, alice.password, "203.0.113.51").ok  # the next address

    [block] = json.loads(guard.cli("--json", "blocks").stdout)
    assert block["address"] == SPRAYER
    assert guard.cli("unblock", SPRAYER).returncode == 0
    assert json.loads(guard.cli("--json", "blocks").stdout) == []
    assert login(guard, service, bob, bob.password, SPRAYER).ok


def test_an_ignored_address_and_a_slow_sprayer_are_never_blocked(guarded, make_user):
    guard, service = guarded(BLOCKING)
    alice, bob = make_user(), make_user()
    for target in (alice, bob, alice, bob, alice):
        assert not login(guard, service, target, "Winter2024!", "203.0.113.60").ok
    assert login(guard, service, bob, bob.password, "203.0.113.60").ok  # in `ignore`
    # three failures from another address: under `attempts`
    for target in (alice, bob, alice):
        assert not login(guard, service, target, "Winter2024!", "203.0.113.61").ok
    assert login(guard, service, bob, bob.password, "203.0.113.61").ok
    assert json.loads(guard.cli("--json", "blocks").stdout) == []


def test_without_address_blocks_spraying_only_alerts(guarded, make_user):
    guard, service = guarded({"lockout": {"max_attempts": 10}})
    alice, bob = make_user(), make_user()
    for target in (alice, bob) * 6:
        assert not login(guard, service, target, "Winter2024!", SPRAYER).ok
    assert login(guard, service, alice, alice.password, SPRAYER).ok
    kinds = [r[0] for r in guard.query("SELECT kind FROM outbox")]
    assert "ip_alert" in kinds


# --- repeated wrong passwords ----------------------------------------------------------------


def test_the_same_wrong_password_five_times_counts_once(guarded, user):
    guard, service = guarded({"lockout": {"ignore_repeated_password": True}})
    for _ in range(5):
        assert not login(guard, service, user, "Summer2024!", HOME).ok
    assert status(guard, user)["failures_in_window"] == 1
    assert [r[2] for r in rows(guard, user)] == [None] + ["repeated"] * 4
    # Only a keyed digest is kept: 32 hex digits, never the password.
    digests = {r[0] for r in rows(guard, user, "digest")}
    assert len(digests) == 1 and re.fullmatch(r"[0-9a-f]{32}", digests.pop())
    dump = "\n".join(str(r) for r in guard.query("SELECT * FROM events"))
    assert "Summer2024" not in dump
    assert login(guard, service, user, user.password, HOME).ok


def test_three_different_wrong_passwords_still_lock(guarded, user):
    guard, service = guarded({"lockout": {"ignore_repeated_password": True}})
    for password in ("Summer2024!", "Winter2024!", "Autumn2024!"):
        assert not login(guard, service, user, password, HOME).ok
    assert refused_before_password(login(guard, service, user, user.password, HOME), LOCKED_LINE)


def test_without_the_setting_the_same_wrong_password_locks(guarded, user):
    guard, service = guarded()
    for _ in range(3):
        assert not login(guard, service, user, "Summer2024!", HOME).ok
    assert refused_before_password(login(guard, service, user, user.password, HOME), LOCKED_LINE)
    assert {r[0] for r in rows(guard, user, "digest")} == {None}  # nothing kept


# --- the session-open line -------------------------------------------------------------------

SESSION = ("authenticate", "acct_mgmt", "open_session")


def test_the_session_tells_failures_since_the_last_login_once(guarded, user):
    guard, service = guarded()
    first = login(guard, service, user, user.password, HOME, SESSION)
    assert first.ok and "failed login" not in first.output

    for _ in range(2):
        assert not login(guard, service, user, "wrong", "203.0.113.7").ok
    told = login(guard, service, user, user.password, HOME, SESSION)
    assert told.ok
    line = re.search(
        r"2 failed logins since your last login, last from (\S+) at (\d\d:\d\d)", told.output
    )
    assert line and line.group(1) == "203.0.113.7", told.output

    again = login(guard, service, user, user.password, HOME, SESSION)
    assert again.ok and "failed login" not in again.output
