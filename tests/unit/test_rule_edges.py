"""Edges of the rules that test_rules.py does not reach: odd addresses through the ip_lock
rule, `ip deny USER local`, locks set by hand under custom authentication, failures that
open no session, and status-change notices coming out of a decision (pure: no store)."""

from __future__ import annotations

import pytest

from policy import decide, rules
from policy.addresses import parse_address
from policy.types import IP_RESTRICTED, LOCKED
from tests.unit.build import DAY, MINUTE, NOW, attempt, history, session, settings

IP_ON = settings(ip_lock={"enabled": True})


def ip_verdict(raw, allow=(), deny=()):
    """check() for a login whose source was given as `raw` (parsed as the adapters do)."""
    attempt_ = attempt(address=parse_address(raw))._replace(address_raw=raw)
    return decide.check(attempt_, history(allow_list=allow, deny_list=deny), IP_ON)


@pytest.mark.parametrize(
    "raw,allowed",
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),  # IPv4-mapped IPv6 is the IPv4 address
        ("::ffff:192.0.2.1", False),
        ("2001:db8::7", True),
        ("2001:db9::7", False),
        ("fe80::1%eth0", True),  # zone index dropped, then matched against fe80::/10
        ("fe80::1%", True),
        ("192.0.2.1", False),
        ("00:11:22:33:44:55", False),  # a MAC is no address: refused without `local`
        ("host.example.com", False),  # never resolved
        ("10.1.2.3\x00", False),
        (None, False),
    ],
)
def test_allow_list_with_odd_addresses(raw, allowed):
    verdict = ip_verdict(raw, allow=("10.0.0.0/8", "2001:db8::/32", "fe80::/10"))
    assert verdict.allowed is allowed
    assert verdict.reasons == (() if allowed else (IP_RESTRICTED,))


@pytest.mark.parametrize("raw", ["garbage", "00:11:22:33:44:55", None])
def test_no_address_is_let_in_when_the_list_holds_local(raw):
    assert ip_verdict(raw, allow=("10.0.0.0/8", "local")).allowed


def test_ipv4_mapped_entry_in_the_list_matches_plain_ipv4():
    assert ip_verdict("10.1.2.3", allow=("::ffff:10.0.0.0/104",)).allowed
    assert not ip_verdict("11.1.2.3", allow=("::ffff:10.0.0.0/104",)).allowed


def test_deny_list_alone_refuses_only_what_it_lists():
    deny = ("192.0.2.0/24", "2001:db8:bad::/48")
    assert ip_verdict("192.0.2.9", deny=deny).reasons == (IP_RESTRICTED,)
    assert ip_verdict("::ffff:192.0.2.9", deny=deny).reasons == (IP_RESTRICTED,)
    assert ip_verdict("2001:db8:bad::1", deny=deny).reasons == (IP_RESTRICTED,)
    assert ip_verdict("198.51.100.1", deny=deny).allowed
    assert ip_verdict(None, deny=deny).allowed  # a deny list does not need `local`


def test_deny_local_refuses_logins_without_an_address():
    assert ip_verdict(None, deny=("local",)).reasons == (IP_RESTRICTED,)
    assert ip_verdict("garbage", deny=("local",)).reasons == (IP_RESTRICTED,)
    assert ip_verdict("198.51.100.1", deny=("local",)).allowed


def test_ip_lock_off_ignores_the_lists():
    verdict = decide.check(
        attempt(address=None), history(allow_list=("10.0.0.0/8",), deny_list=("local",)), settings()
    )
    assert verdict.allowed and verdict.reasons == ()


# --- locks ----------------------------------------------------------------------------------


def test_a_lock_set_by_hand_still_holds_with_custom_authentication():
    custom = settings(custom_authentication={"enabled": True})
    held = history(locked_at=NOW - MINUTE)
    assert decide.check_preauth(attempt(), held, custom).reasons == (LOCKED,)
    assert decide.check_preauth(attempt(), history(), custom).reasons == ()


def test_a_lock_without_expiry_holds_a_year_later():
    forever = history(locked_at=NOW - 365 * DAY)
    assert rules.rule_locked(attempt(), forever, settings()) == LOCKED


def test_an_expired_lock_can_be_set_again():
    timed = settings(lockout={"unlock_after_minutes": 10})
    expired = history(failures=3, locked_at=NOW - 20 * MINUTE, lock_expires=NOW - 10 * MINUTE)
    assert decide.after_failure(attempt(), expired, timed).lock == (
        "3 failed logins within 5 min",
        NOW + 10 * MINUTE,
    )


def _earlier(*users):
    """Earlier failures from the attempt's address, a second apart, just before NOW."""
    return tuple((user, NOW - 1 - i) for i, user in enumerate(users))


def test_failures_without_an_address_never_alert():
    verdict = decide.after_failure(
        attempt(address=None), history(failures=1), settings(), _earlier("a", "b", "c", "d")
    )
    assert "ip_alert" not in [n.kind for n in verdict.notices]


def test_ip_alert_threshold_comes_from_config():
    five = settings(lockout={"ip_alert_attempts": 5})
    quiet = decide.after_failure(attempt(), history(failures=1), five, _earlier("a", "b", "c"))
    loud = decide.after_failure(attempt(), history(failures=1), five, _earlier("a", "b", "c", "d"))
    assert "ip_alert" not in [n.kind for n in quiet.notices]
    assert [n.kind for n in loud.notices] == ["ip_alert"]


# --- a failed password opens no session ------------------------------------------------------


def test_a_failure_does_not_count_toward_session_limits():
    limited = settings(status={"session_limits": {"sshd": 1}})
    one_open = history(open_sessions=(session("sshd"),), status="protected")
    assert decide.after_failure(attempt(), one_open, limited).status == "protected"
    # The same attempt let in would make a second sshd session: over the limit.
    assert decide.check(attempt(), one_open, limited).status == "risk"


def test_a_failure_from_outside_is_not_a_session_outside():
    split = settings(status={"inside_outside": True})
    inside = history(open_sessions=(session("vpn", "10.1.2.3"),))
    assert (
        decide.after_failure(attempt(address="198.51.100.7"), inside, split).status == "protected"
    )
    assert decide.check(attempt(address="198.51.100.7"), inside, split).status == "high_risk"


# --- status changes come out of decisions as notices ------------------------------------------


def test_the_denial_that_passes_denied_limit_makes_a_status_notice():
    ip = settings(ip_lock={"enabled": True})
    before = history(status="protected", denied_recent=5, allow_list=("10.0.0.0/8",))
    verdict = decide.check(attempt(address="192.0.2.1"), before, ip)
    assert not verdict.allowed and verdict.status == "high_risk"
    notes = [n for n in verdict.notices if n.kind == "status"]
    assert len(notes) == 1
    facts = dict(notes[0].facts)
    assert (facts["old"], facts["new"]) == ("protected", "high_risk")
    assert "6 denied logons within 30 min" == facts["why"]


def test_a_denial_under_the_limit_makes_no_status_notice():
    ip = settings(ip_lock={"enabled": True})
    before = history(status="protected", denied_recent=4, allow_list=("10.0.0.0/8",))
    verdict = decide.check(attempt(address="192.0.2.1"), before, ip)
    assert verdict.status == "protected"
    assert [n.kind for n in verdict.notices if n.kind == "status"] == []


def test_falling_back_from_high_risk_on_the_next_login_is_told():
    verdict = decide.check(attempt(), history(status="high_risk"), settings())
    assert verdict.status == "protected"
    assert [dict(n.facts)["old"] for n in verdict.notices if n.kind == "status"] == ["high_risk"]


def test_a_failure_that_makes_high_risk_needs_denials_not_failures():
    # Failures lock; only denials (refused logins) count toward high risk.
    assert (
        decide.after_failure(attempt(), history(failures=2, denied_recent=5), settings()).status
        == "protected"
    )


def test_new_user_days_zero_means_only_first_logons_are_new():
    zero = settings(status={"new_user_days": 0})
    assert decide.check(attempt(), history(), zero).status == "protected"
    assert decide.check(attempt(), history(last_activity=None), zero).status == "new"
    assert (
        decide.check(attempt(), history(last_activity=NOW - 400 * DAY), zero).status == "protected"
    )
    assert (
        decide.check(attempt(), history(last_activity=NOW - 16 * DAY), settings()).status == "new"
    )


def test_preauth_that_lets_in_decides_no_status_and_tells_nothing():
    # history as preauth reads it: locks only, so no denials, even for a high_risk user.
    verdict = decide.check_preauth(attempt(), history(status="high_risk"), settings())
    assert verdict.allowed and verdict.status is None and verdict.notices == ()


def test_preauth_that_refuses_decides_the_status():
    held = history(status="protected", locked_at=NOW - MINUTE, denied_recent=5)
    verdict = decide.check_preauth(attempt(), held, settings())
    assert verdict.status == "high_risk"
    assert [n.kind for n in verdict.notices] == ["status"]
