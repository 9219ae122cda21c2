"""End to end through real PAM (pamtester): a stack that authenticates against the test slapd
(tests/ldap/pam_ldap_bind.py) guarded by pam-guard's hook with custom authentication on."""

from __future__ import annotations

import pytest

from tests.support.slapd import MAX_FAILURE

support = pytest.importorskip("tests.support.pam")


@pytest.fixture
def ldap_guard(ldap_pam):
    return ldap_pam()


def test_pam_refuses_a_directory_locked_user_until_unlocked(slapd, ldap_guard):
    guard, service = ldap_guard
    uid, password, dn = slapd.add_user()
    ok = support.pamtester(service, uid, password, rhost="192.0.2.44", env=guard.env)
    assert ok.ok, ok.output
    for _ in range(MAX_FAILURE):
        bad = support.pamtester(service, uid, "wrong", rhost="192.0.2.44", env=guard.env)
        assert not bad.ok
    # The failed binds went to slapd through the stack: the directory has locked the account.
    assert "pwdAccountLockedTime" in slapd.read(dn, "pwdAccountLockedTime")
    refused = support.pamtester(service, uid, password, rhost="192.0.2.44", env=guard.env)
    assert not refused.ok
    events = guard.events(uid)
    assert [e[1] for e in events] == ["success"] + ["failure"] * MAX_FAILURE + ["denied"]
    assert events[-1][2] == "directory_locked"
    assert guard.query("SELECT locked_at FROM accounts WHERE username = ?", (uid,)) == [(None,)]
    guard.cli("unlock", uid)
    assert "pwdAccountLockedTime" not in slapd.read(dn, "pwdAccountLockedTime")
    again = support.pamtester(service, uid, password, rhost="192.0.2.44", env=guard.env)
    assert again.ok, again.output


@pytest.fixture(scope="module")
def syslog_capture():
    capture = support.SyslogCapture()
    yield capture
    capture.close()


def test_pam_with_the_directory_down_answers_per_on_store_error(slapd, ldap_guard, syslog_capture):
    """slapd paused (a hung directory): the login is refused within the timeout, and logged."""
    import time

    guard, service = ldap_guard
    uid, password, _ = slapd.add_user()
    slapd.pause()
    try:
        started = time.monotonic()
        refused = support.pamtester(service, uid, password, rhost="192.0.2.45", env=guard.env)
        elapsed = time.monotonic() - started
    finally:
        slapd.resume()
    assert not refused.ok
    assert elapsed < 10, "one 2 s directory timeout, not a hang"
    # The gate does not record a refusal whose cause is the directory (see the report):
    # the proof of the answer is PAM's refusal and the log line naming the directory.
    if syslog_capture.available:
        lines = syslog_capture.lines()
        assert any(
            uid in line and "store_error" in line and "directory" in line for line in lines
        ), lines
