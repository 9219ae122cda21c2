"""The gate with custom authentication on, against the real slapd and a real SQLite store:
the directory's lock refuses, pam-guard never locks by itself, failures are still recorded
and alert the admin, and a directory that cannot answer follows failure.on_store_error."""

from __future__ import annotations

import time

from tests.ldap.test_openldap import lock_by_binds


def test_directory_lock_refuses_and_pam_guard_sets_no_lock(slapd, make_site, directory):
    uid, password, dn = slapd.add_user()
    site = make_site()
    # Failures go through pam-guard (authfail) and, separately, slapd counts its own binds.
    for _ in range(5):
        verdict = site.gate.record_failure(site.attempt(uid))
        assert verdict.lock is None
    lock_by_binds(slapd, dn)
    pre = site.gate.preauth(site.attempt(uid))
    assert not pre.allowed and "directory_locked" in pre.reasons
    login = site.gate.login(site.attempt(uid))
    assert not login.allowed and login.reasons == ("directory_locked",)
    assert login.status == "risk"
    account = site.rows("SELECT locked_at, status FROM accounts WHERE username = ?", (uid,))[0]
    assert account["locked_at"] is None, "pam-guard must not lock when the directory does"
    assert account["status"] == "risk"
    outcomes = [
        r["outcome"]
        for r in site.rows("SELECT outcome FROM events WHERE username = ? ORDER BY id", (uid,))
    ]
    assert outcomes == ["failure"] * 5 + ["denied", "denied"]
    # The directory's admin unlocks: the same gate lets the user in again.
    assert directory(admin=True).unlock(uid)
    assert slapd.bind_ok(dn, password)
    again = site.gate.login(site.attempt(uid))
    assert again.allowed and "directory_locked" not in again.reasons
    assert again.status != "risk"


def test_without_custom_authentication_pam_guard_locks_itself(slapd, make_site):
    """The control: the same failures with custom authentication off do lock locally."""
    uid, _, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    site = make_site(custom={"enabled": False})
    for _ in range(3):
        site.gate.record_failure(site.attempt(uid))
    account = site.rows("SELECT locked_at FROM accounts WHERE username = ?", (uid,))[0]
    assert account["locked_at"] is not None
    pre = site.gate.preauth(site.attempt(uid))
    assert pre.reasons == ("locked",), "the directory is not asked when custom auth is off"


def test_unlocked_directory_account_is_let_in(slapd, make_site):
    uid, _, _ = slapd.add_user()
    site = make_site()
    assert site.gate.preauth(site.attempt(uid)).allowed
    login = site.gate.login(site.attempt(uid))
    assert login.allowed and login.reasons == ()
    assert login.status not in ("risk", "high_risk")


def test_directory_disabled_refuses(slapd, make_site):
    uid, _, _ = slapd.add_user(nsAccountLock="true")
    site = make_site(custom={"kind": "389ds"})
    login = site.gate.login(site.attempt(uid))
    assert not login.allowed and login.reasons == ("directory_disabled",)
    assert login.status == "risk"


def test_failures_are_recorded_and_alert_the_admin(slapd, make_site):
    """With custom auth: no lock notice (no local lock), but the spraying alert still fires."""
    users = [slapd.add_user()[0] for _ in range(3)]
    site = make_site(lockout={"ip_alert_attempts": 3})
    for user in users:
        site.gate.record_failure(site.attempt(user, "198.51.100.7"))
    kinds = [r["kind"] for r in site.rows("SELECT kind FROM outbox")]
    assert "ip_alert" in kinds and "lock" not in kinds
    assert len(site.rows("SELECT id FROM events WHERE outcome = 'failure'")) == 3


def test_other_rules_still_apply(slapd, make_site):
    uid, _, _ = slapd.add_user()
    site = make_site(ip_lock={"enabled": True})
    done = site.cli("ip", "allow", uid, "10.0.0.0/8")
    assert done.returncode == 0, done.stderr
    login = site.gate.login(site.attempt(uid, "192.0.2.10"))
    assert not login.allowed and login.reasons == ("ip_restricted",)


def _down_site(make_site, policy):
    from tests.support.slapd import free_port

    return make_site(
        custom={"url": f"ldap://127.0.0.1:{free_port()}", "timeout_seconds": 1},
        failure={"on_store_error": policy},
    )


def test_directory_down_denies_per_on_store_error(make_site):
    site = _down_site(make_site, "deny")
    started = time.monotonic()
    verdict = site.gate.preauth(site.attempt("someone"))
    assert time.monotonic() - started < 2
    assert not verdict.allowed and verdict.reasons == ("store_error",)
    assert site.gate.last_error.startswith("directory: ")
    # The store still works, so the refusal is recorded like any denial (SPEC §4).
    rows = site.rows("SELECT outcome, reasons FROM events WHERE username = 'someone'")
    assert [tuple(r) for r in rows] == [("denied", "store_error")]


def test_directory_down_allows_per_on_store_error(make_site):
    site = _down_site(make_site, "allow")
    verdict = site.gate.login(site.attempt("someone"))
    assert verdict.allowed and verdict.reasons == ("store_error",)
    assert "unreachable" in site.gate.last_error
    assert site.rows("SELECT outcome FROM events WHERE username = 'someone'") == []
