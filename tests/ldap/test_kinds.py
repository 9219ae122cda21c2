"""Unit tests of pam_guard.directory_kinds: attribute meanings, no server needed."""

from __future__ import annotations

import pytest

from pam_guard import directory_kinds as k

NOW = 1_800_000_000.0


def test_generalized_time_forms():
    assert k.parse_generalized_time("20270115080000Z") == 1_800_000_000.0 - 0  # 2027-01-15 08:00
    assert k.parse_generalized_time("20270115080000.123456Z") == 1_800_000_000.0
    assert k.parse_generalized_time("20270115090000+0100") == 1_800_000_000.0
    assert k.parse_generalized_time("202701150800Z") == 1_800_000_000.0
    with pytest.raises(ValueError):
        k.parse_generalized_time("yesterday")


def test_filetime_and_ad_durations():
    assert k.filetime_to_epoch((1_800_000_000 + 11644473600) * 10_000_000) == NOW
    assert k.ad_lockout_duration("-18000000000") == 1800
    assert k.ad_lockout_duration("0") == k.FOREVER
    assert k.ad_lockout_duration(str(-0x8000000000000000)) == k.FOREVER
    assert k.ad_lockout_duration(None) is k.UNKNOWN


def test_openldap_readings():
    at = "20270115080000Z"
    assert k.openldap_reading({}, NOW, 60) == k.NOT_LOCKED
    assert k.openldap_reading({"pwdAccountLockedTime": [at]}, NOW + 30, 60).state == k.LOCKED
    expired = k.openldap_reading({"pwdaccountlockedtime": [at]}, NOW + 60, 60)
    assert expired.state is None and expired.locked_until == NOW + 60
    assert k.openldap_reading({"pwdAccountLockedTime": [at]}, NOW + 1e9, 0).state == k.LOCKED
    unknown = k.openldap_reading({"pwdAccountLockedTime": [at]}, NOW + 1e9, None)
    assert unknown.state == k.LOCKED and "unreadable" in unknown.why
    permanent = k.openldap_reading({"pwdAccountLockedTime": ["000001010000Z"]}, NOW, 1)
    assert permanent.state == k.LOCKED and permanent.locked_until is None
    with pytest.raises(ValueError):
        k.openldap_reading({"pwdAccountLockedTime": ["garbage"]}, NOW, 60)


def test_ad_readings():
    ft = str((1_800_000_000 + 11644473600) * 10_000_000)
    assert k.ad_reading({"userAccountControl": ["512"]}, NOW, None) == k.NOT_LOCKED
    assert k.ad_reading({"userAccountControl": ["514"]}, NOW, None).state == k.DISABLED
    assert k.ad_reading({"lockoutTime": [ft]}, NOW + 10, 1800).state == k.LOCKED
    assert k.ad_reading({"lockoutTime": [ft]}, NOW + 1800, 1800).state is None
    assert k.ad_needs_duration({"lockoutTime": [ft]})
    assert not k.ad_needs_duration({"lockoutTime": ["0"]})
    computed = {"lockoutTime": [ft], "msDS-User-Account-Control-Computed": ["0"]}
    assert not k.ad_needs_duration(computed)
    assert k.ad_reading(computed, NOW + 10, 1800).state is None
    with pytest.raises(ValueError, match="userAccountControl"):
        k.ad_reading({"userAccountControl": ["x"]}, NOW, None)


def test_ds389_readings():
    assert k.ds389_reading({"nsAccountLock": ["True"]}, NOW).state == k.DISABLED
    assert k.ds389_reading({"nsAccountLock": ["false"]}, NOW) == k.NOT_LOCKED
    assert k.ds389_reading({"accountUnlockTime": ["20270115080000Z"]}, NOW - 1).state == k.LOCKED
    assert k.ds389_reading({"accountUnlockTime": ["20270115080000Z"]}, NOW).state is None
    assert k.ds389_reading({"accountUnlockTime": ["19700101000000Z"]}, NOW).state == k.LOCKED


def test_unlock_changes_touch_only_what_is_there():
    assert k.openldap_unlock({}) == {}
    assert k.openldap_unlock({"pwdAccountLockedTime": ["x"]}) == {
        "pwdAccountLockedTime": [("MODIFY_DELETE", [])]
    }
    assert k.ad_unlock({"lockoutTime": ["0"]}) == {}
    assert k.ad_unlock({"lockoutTime": ["5"]}) == {"lockoutTime": [("MODIFY_REPLACE", ["0"])]}
    assert k.ds389_unlock({"nsAccountLock": ["true"]}) == {"nsAccountLock": [("MODIFY_DELETE", [])]}


def test_ad_domain_dn():
    assert (
        k.ad_domain_dn("CN=Bob,OU=Staff,DC=corp,DC=example,DC=com") == "DC=corp,DC=example,DC=com"
    )
    assert k.ad_domain_dn("uid=bob,ou=people,o=example") is None
