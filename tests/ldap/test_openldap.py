"""OpenLDAP ppolicy against a real slapd: failed binds lock, pam-guard reads and clears it."""

from __future__ import annotations

import time

import ldap3
import pytest

from pam_guard.errors import DirectoryPermissionError
from tests.support.slapd import MAX_FAILURE, SHORT_LOCKOUT, SHORT_POLICY


def lock_by_binds(slapd, dn: str) -> None:
    """Lock an account the way an attacker does: MAX_FAILURE simple binds with a bad password."""
    for _ in range(MAX_FAILURE):
        assert not slapd.bind_ok(dn, "wrong password")


def test_failed_binds_lock_and_state_says_locked(slapd, directory):
    uid, password, dn = slapd.add_user()
    found = directory()
    assert found.state(uid) is None
    slapd.bind_ok(dn, "wrong password")
    assert found.state(uid) is None, "one failure is not a lock"
    lock_by_binds(slapd, dn)
    assert "pwdAccountLockedTime" in slapd.read(dn, "pwdAccountLockedTime")
    assert not slapd.bind_ok(dn, password), "slapd itself refuses the locked account"
    assert found.state(uid) == "locked"


def test_default_policy_duration_zero_stays_locked(slapd, directory):
    uid, _, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    far = directory(clock=lambda: time.time() + 10 * 365 * 86400)
    assert far.state(uid) == "locked"
    view = far.describe(uid)
    assert view["locked"] and view["locked_until"] is None and "admin" in view["why"]


def test_permanent_lock_value(slapd, directory):
    uid, _, dn = slapd.add_user(policy=SHORT_POLICY)
    slapd.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]})
    # Even under a policy whose locks expire after seconds, this value never expires.
    later = directory(clock=lambda: time.time() + 86400)
    assert later.state(uid) == "locked"
    assert "for good" in later.describe(uid)["why"]


def test_lockout_duration_expiry_follows_pwdPolicySubentry(slapd, directory):
    uid, password, dn = slapd.add_user(policy=SHORT_POLICY)
    lock_by_binds(slapd, dn)
    found = directory()
    assert found.state(uid) == "locked"
    view = found.describe(uid)
    assert view["locked_until"] is not None
    # Past the short policy's duration the lock is over, for pam-guard and for slapd alike.
    assert directory(clock=lambda: time.time() + SHORT_LOCKOUT + 2).state(uid) is None
    time.sleep(SHORT_LOCKOUT + 1.2)
    assert found.state(uid) is None
    assert slapd.bind_ok(dn, password)


def test_default_policy_read_from_cn_config(slapd, directory):
    """The reader may read the overlay's olcPPolicyDefault: a 0 duration there means forever,
    which pam-guard must tell apart from "duration unknown" by reading it."""
    uid, _, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    found = directory()
    assert found.state(uid) == "locked"
    assert found._default_policy is not None and found._default_policy[1].startswith("cn=default")


def test_default_policy_unreadable_is_taken_as_forever(slapd, directory):
    """The rootdn of the data may not read cn=config: with no pwdPolicySubentry the duration
    is unknown, and pam-guard keeps the account locked (saying why) rather than guess."""
    uid, _, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    admin = directory(admin=True, clock=lambda: time.time() + 86400)
    assert admin.state(uid) == "locked"
    assert admin._default_policy is not None and admin._default_policy[1] is None
    assert "unreadable" in admin.describe(uid)["why"]


def test_unlock_clears_the_lock_and_login_works_again(slapd, directory):
    uid, password, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    admin = directory(admin=True)
    assert admin.state(uid) == "locked"
    assert admin.unlock(uid) is True
    left = slapd.read(dn, "pwdAccountLockedTime", "pwdFailureTime")
    assert "pwdAccountLockedTime" not in left and "pwdFailureTime" not in left
    assert admin.state(uid) is None
    assert slapd.bind_ok(dn, password)
    assert admin.unlock(uid) is True, "unlocking an unlocked account is fine"


def test_unlock_unknown_user_is_false(directory):
    assert directory(admin=True).unlock("nobody-here") is False


def test_unlock_without_rights_says_so(slapd, directory):
    uid, _, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    reader = directory()
    with pytest.raises(DirectoryPermissionError, match="lacks the rights"):
        reader.unlock(uid)
    assert reader.state(uid) == "locked", "the refused unlock changed nothing"


def test_describe_shows_the_directory_view(slapd, directory):
    uid, _, dn = slapd.add_user()
    found = directory()
    view = found.describe(uid)
    assert view == {
        **view,
        "kind": "openldap",
        "dn": dn,
        "found": True,
        "locked": False,
        "disabled": False,
    }
    lock_by_binds(slapd, dn)
    view = found.describe(uid)
    assert view["locked"] and view["locked_at"] and "pwdAccountLockedTime" in view["attributes"]
    assert found.describe("nobody-here")["found"] is False
