"""Active Directory and 389-ds semantics, against the same real slapd (test schema carrying
their attributes: slapd stores them, the tests set them the way those servers do)."""

from __future__ import annotations

import time

import ldap3
import pytest

from pam_guard.errors import DirectoryPermissionError
from tests.support.slapd import SUFFIX

MINUTES_30 = -30 * 60 * 10_000_000  # AD's lockoutDuration: negative 100 ns intervals
NEVER = -0x8000000000000000


def filetime(epoch: float) -> str:
    return str(int((epoch + 11644473600) * 10_000_000))


@pytest.fixture
def domain_duration(slapd):
    """Set (or remove, with None) the domain head's lockoutDuration for one test."""

    def set_to(value) -> None:
        op = (
            (ldap3.MODIFY_REPLACE, [str(value)])
            if value is not None
            else (ldap3.MODIFY_REPLACE, [])
        )
        slapd.modify(SUFFIX, {"lockoutDuration": [op]})

    yield set_to
    set_to(None)


# --- Active Directory ------------------------------------------------------------------------


def test_ad_disabled_bit(slapd, directory):
    disabled, _, _ = slapd.add_user(userAccountControl="514")  # 0x202: NORMAL_ACCOUNT|DISABLE
    enabled, _, _ = slapd.add_user(userAccountControl="512")
    ad = directory(kind="ad")
    assert ad.state(disabled) == "disabled"
    assert ad.state(enabled) is None


def test_ad_lockout_time_within_and_past_the_domain_duration(slapd, directory, domain_duration):
    domain_duration(MINUTES_30)
    recent, _, _ = slapd.add_user(userAccountControl="512", lockoutTime=filetime(time.time() - 60))
    old, _, _ = slapd.add_user(userAccountControl="512", lockoutTime=filetime(time.time() - 3600))
    never, _, _ = slapd.add_user(userAccountControl="512", lockoutTime="0")
    ad = directory(kind="ad")
    assert ad.state(recent) == "locked"
    assert ad.state(old) is None, "an hour-old lockout is over with a 30-minute duration"
    assert ad.state(never) is None
    view = ad.describe(recent)
    assert view["locked"] and view["locked_until"] is not None


@pytest.mark.parametrize("duration", [None, NEVER, 0])
def test_ad_lockout_until_an_admin_unlocks(slapd, directory, domain_duration, duration):
    domain_duration(duration)
    user, _, _ = slapd.add_user(
        userAccountControl="512", lockoutTime=filetime(time.time() - 86400 * 30)
    )
    assert directory(kind="ad").state(user) == "locked"


def test_ad_computed_flags_win(slapd, directory, domain_duration):
    domain_duration(MINUTES_30)
    flagged, _, _ = slapd.add_user(
        **{
            "userAccountControl": "512",
            "lockoutTime": "0",
            "msDS-User-Account-Control-Computed": "16",
        }
    )
    cleared, _, _ = slapd.add_user(
        **{
            "userAccountControl": "512",
            "lockoutTime": filetime(time.time() - 60),
            "msDS-User-Account-Control-Computed": "0",
        }
    )
    ad = directory(kind="ad")
    assert ad.state(flagged) == "locked"
    assert ad.state(cleared) is None


def test_ad_disabled_wins_over_locked(slapd, directory, domain_duration):
    domain_duration(MINUTES_30)
    user, _, _ = slapd.add_user(userAccountControl="514", lockoutTime=filetime(time.time()))
    assert directory(kind="ad").state(user) == "disabled"


def test_ad_unlock_sets_lockout_time_to_zero(slapd, directory, domain_duration):
    domain_duration(MINUTES_30)
    user, _, dn = slapd.add_user(userAccountControl="512", lockoutTime=filetime(time.time()))
    with pytest.raises(DirectoryPermissionError):
        directory(kind="ad").unlock(user)
    admin = directory(kind="ad", admin=True)
    assert admin.unlock(user) is True
    assert slapd.read(dn, "lockoutTime")["lockoutTime"] == ["0"]
    assert admin.state(user) is None
    assert admin.unlock("nobody-here") is False


# --- 389-ds ------------------------------------------------------------------------------------


def _stamp(epoch: float) -> str:
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(epoch))


def test_389ds_nsaccountlock_is_disabled(slapd, directory):
    locked, _, _ = slapd.add_user(nsAccountLock="TRUE")
    unlocked, _, _ = slapd.add_user(nsAccountLock="false")
    plain, _, _ = slapd.add_user()
    ds = directory(kind="389ds")
    assert ds.state(locked) == "disabled"
    assert ds.state(unlocked) is None
    assert ds.state(plain) is None


def test_389ds_account_unlock_time(slapd, directory):
    future, _, _ = slapd.add_user(accountUnlockTime=_stamp(time.time() + 600))
    past, _, _ = slapd.add_user(accountUnlockTime=_stamp(time.time() - 600))
    forever, _, _ = slapd.add_user(accountUnlockTime="19700101000000Z")
    ds = directory(kind="389ds")
    assert ds.state(future) == "locked"
    assert ds.state(past) is None
    assert ds.state(forever) == "locked"


def test_389ds_unlock_removes_the_lock_attributes(slapd, directory):
    user, _, dn = slapd.add_user(
        nsAccountLock="true", accountUnlockTime="19700101000000Z", passwordRetryCount="3"
    )
    admin = directory(kind="389ds", admin=True)
    assert admin.unlock(user) is True
    left = slapd.read(dn, "nsAccountLock", "accountUnlockTime", "passwordRetryCount")
    assert left == {}
    assert admin.state(user) is None
