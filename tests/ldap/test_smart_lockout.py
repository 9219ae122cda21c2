"""Smart lockout with custom authentication, through real PAM against the real slapd with
ppolicy (pwdMaxFailure 5): pam-guard never sets a lock of its own, but refuses unfamiliar
places after `unfamiliar_attempts` (3) in preauth, before any bind, so an attacker's guesses
never reach the directory's own lockout and the owner keeps their account (SPEC §4)."""

from __future__ import annotations

import pytest

from tests.support.slapd import FIVE_FAILURES, FIVE_POLICY

support = pytest.importorskip("tests.support.pam")

HOME = "198.51.100.7"
UNFAMILIAR_LINE = "Login refused: too many failed logins from unfamiliar places"


def _login(guard, service, uid, password, rhost):
    return support.pamtester(service, uid, password, rhost=rhost, env=guard.env)


def _failures_seen_by_directory(slapd, dn) -> int:
    return len(slapd.read(dn, "pwdFailureTime").get("pwdFailureTime", []))


def test_twenty_unfamiliar_guesses_leave_the_directory_account_unlocked(slapd, ldap_pam):
    guard, service = ldap_pam({"lockout": {"unfamiliar_attempts": 3}})
    uid, password, dn = slapd.add_user(policy=FIVE_POLICY)
    assert _login(guard, service, uid, password, HOME).ok  # home becomes familiar

    results = [_login(guard, service, uid, f"guess-{i}", f"203.0.113.{i + 1}") for i in range(20)]
    assert all(not r.ok for r in results)
    # Three guesses were binds the directory counted; the other 17 never reached it.
    assert all(UNFAMILIAR_LINE in r.output for r in results[3:])
    assert _failures_seen_by_directory(slapd, dn) == 3
    assert "pwdAccountLockedTime" not in slapd.read(dn, "pwdAccountLockedTime")
    outcomes = [(e[1], e[2]) for e in guard.events(uid)]
    assert outcomes[1:4] == [("failure", "")] * 3
    assert outcomes[4:] == [("denied", "locked_unfamiliar")] * 17

    # The owner, at home: in, and pam-guard set no lock of its own.
    assert _login(guard, service, uid, password, "198.51.100.20").ok
    assert guard.query("SELECT locked_at FROM accounts WHERE username = ?", (uid,)) == [(None,)]


def test_without_smart_lockout_the_guesses_lock_the_directory_account(slapd, ldap_pam):
    guard, service = ldap_pam()
    uid, password, dn = slapd.add_user(policy=FIVE_POLICY)
    assert _login(guard, service, uid, password, HOME).ok
    for i in range(FIVE_FAILURES):
        assert not _login(guard, service, uid, f"guess-{i}", f"203.0.113.{i + 1}").ok
    assert "pwdAccountLockedTime" in slapd.read(dn, "pwdAccountLockedTime")
    refused = _login(guard, service, uid, password, HOME)  # the owner too
    assert not refused.ok
    assert guard.events(uid)[-1][2] == "directory_locked"
