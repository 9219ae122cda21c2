"""Each rule of SPEC §4, firing and not firing, at the seed defaults (pure: no store)."""

from policy import decide
from policy.rules import failure_threshold, trackstat_figure
from policy.settings import build_settings
from policy.sources import pam_source
from policy.types import (
    CONCURRENT_LOGIN,
    DIR_DISABLED,
    DIR_LOCKED,
    DIRECTORY_DISABLED,
    DIRECTORY_LOCKED,
    IP_RESTRICTED,
    LOCKED,
    NOT_ENOUGH_DATA,
    OK,
    PASSWORD_SHARING,
    SESSION_LIMIT,
    SHARING,
    Attempt,
    History,
    Login,
    Session,
)

NOW = 1_000_000.0
MIN = 60.0


def settings(**sections):
    return build_settings(sections)


def attempt(user="alice", address="198.51.100.7", service="sshd", at=NOW):
    return Attempt(
        user, "pam", service, address, address, None, None, at, None, pam_source(address)
    )


# --- lock ------------------------------------------------------------------------------------


def test_three_failures_lock_at_defaults():
    s = settings()
    verdict = decide.after_failure(attempt(), History(failures=3), s)
    assert verdict.lock is not None
    reason, expires = verdict.lock
    assert "3 failed logins" in reason and expires is None
    assert [n.kind for n in verdict.notices] == ["lock"]


def test_two_failures_do_not_lock():
    assert decide.after_failure(attempt(), History(failures=2), settings()).lock is None


def test_root_needs_twice_as_many_failures():
    s = settings()
    assert failure_threshold("root", s) == 6
    assert decide.after_failure(attempt("root"), History(failures=5), s).lock is None
    assert decide.after_failure(attempt("root"), History(failures=6), s).lock is not None


def test_admin_users_and_multiplier_come_from_config():
    s = settings(lockout={"admin_users": ["ops"], "admin_multiplier": 3})
    assert failure_threshold("ops", s) == 9
    assert failure_threshold("root", s) == 3


def test_lock_refuses_at_preauth_and_login():
    history = History(known=True, locked_at=NOW - 10)
    assert decide.check_preauth(attempt(), history, settings()).reasons == (LOCKED,)
    verdict = decide.check(attempt(), history, settings())
    assert not verdict.allowed and verdict.reasons == (LOCKED,)


def test_no_lock_lets_in():
    verdict = decide.check(attempt(), History(known=True), settings())
    assert verdict.allowed and verdict.reasons == ()


def test_unlock_after_minutes_expires_the_lock():
    s = settings(lockout={"unlock_after_minutes": 10})
    verdict = decide.after_failure(attempt(), History(failures=3), s)
    assert verdict.lock[1] == NOW + 10 * MIN
    locked = History(locked_at=NOW, lock_expires=NOW + 10 * MIN)
    assert decide.check(attempt(at=NOW + 9 * MIN), locked, s).reasons == (LOCKED,)
    assert decide.check(attempt(at=NOW + 10 * MIN + 1), locked, s).reasons == ()


def test_an_already_locked_account_is_not_locked_again():
    history = History(failures=5, locked_at=NOW - 5)
    assert decide.after_failure(attempt(), history, settings()).lock is None


def test_lockout_disabled_never_locks():
    s = settings(lockout={"enabled": False})
    assert decide.after_failure(attempt("root"), History(failures=100), s).lock is None


# --- custom authentication -------------------------------------------------------------------


def test_custom_authentication_never_sets_a_lock():
    s = settings(custom_authentication={"enabled": True})
    verdict = decide.after_failure(attempt(), History(failures=50), s)
    assert verdict.lock is None and not [n for n in verdict.notices if n.kind == "lock"]


def test_directory_lock_and_disable_fire_with_custom_authentication():
    s = settings(custom_authentication={"enabled": True})
    assert decide.check(attempt(), History(directory=DIR_LOCKED), s).reasons == (DIRECTORY_LOCKED,)
    assert decide.check(attempt(), History(directory=DIR_DISABLED), s).reasons == (
        DIRECTORY_DISABLED,
    )
    assert decide.check_preauth(attempt(), History(directory=DIR_LOCKED), s).reasons == (
        DIRECTORY_LOCKED,
    )
    assert decide.check(attempt(), History(directory=None), s).reasons == ()


def test_directory_state_ignored_without_custom_authentication():
    assert decide.check(attempt(), History(directory=DIR_LOCKED), settings()).reasons == ()


# --- address lists ---------------------------------------------------------------------------

IP_ON = {"ip_lock": {"enabled": True}}


def test_address_outside_the_list_is_refused():
    h = History(allow_list=("10.0.0.0/8", "2001:db8::/32"))
    s = settings(**IP_ON)
    assert decide.check(attempt(address="192.0.2.1"), h, s).reasons == (IP_RESTRICTED,)
    assert decide.check(attempt(address="2001:db9::1"), h, s).reasons == (IP_RESTRICTED,)


def test_address_inside_the_list_is_let_in():
    h = History(allow_list=("10.0.0.0/8", "2001:db8::/32"))
    s = settings(**IP_ON)
    assert decide.check(attempt(address="10.2.3.4"), h, s).allowed
    assert decide.check(attempt(address="2001:db8::5"), h, s).allowed


def test_no_address_needs_local_in_the_list():
    s = settings(**IP_ON)
    assert decide.check(attempt(address=None), History(allow_list=("10.0.0.0/8",)), s).reasons == (
        IP_RESTRICTED,
    )
    assert decide.check(
        attempt(address=None), History(allow_list=("10.0.0.0/8", "local")), s
    ).allowed


def test_deny_list_refuses_even_inside_allow_list():
    s = settings(**IP_ON)
    h = History(allow_list=("10.0.0.0/8",), deny_list=("10.9.0.0/16",))
    assert decide.check(attempt(address="10.9.1.1"), h, s).reasons == (IP_RESTRICTED,)
    assert decide.check(attempt(address="10.8.1.1"), h, s).allowed


def test_user_without_list_and_ip_lock_off_are_not_restricted():
    assert decide.check(attempt(address="192.0.2.1"), History(), settings(**IP_ON)).allowed
    h = History(allow_list=("10.0.0.0/8",))
    assert decide.check(attempt(address="192.0.2.1"), h, settings()).allowed


# --- trackstat -------------------------------------------------------------------------------

TRACK_DENY = {"trackstat": {"enabled": True, "action": "deny"}}


def _addresses(unique, total=15):
    return tuple(f"198.51.100.{i % unique + 1}" for i in range(total))


def test_trackstat_figure_flags_four_unique_of_fifteen_not_three():
    s = settings(**TRACK_DENY)
    assert trackstat_figure(_addresses(4), s).determination == SHARING
    assert trackstat_figure(_addresses(3), s).determination == OK
    figure = trackstat_figure(_addresses(4), s)
    assert (figure.logins_used, figure.unique_addresses) == (15, 4)


def test_trackstat_not_enough_data_below_fifteen_logins():
    figure = trackstat_figure(_addresses(14, 14), settings(**TRACK_DENY))
    assert figure.determination == NOT_ENOUGH_DATA


def test_login_that_makes_the_share_pass_the_rating_is_refused():
    s = settings(**TRACK_DENY)
    history = History(recent_addresses=_addresses(3, 14))
    assert decide.check(attempt(address="198.51.100.1"), history, s).allowed
    verdict = decide.check(attempt(address="203.0.113.9"), history, s)
    assert verdict.reasons == (PASSWORD_SHARING,) and not verdict.allowed
    assert [n.kind for n in verdict.notices] == ["trackstat"]


def test_trackstat_email_lets_in_and_tells():
    s = settings(trackstat={"enabled": True, "action": "email"})
    verdict = decide.check(
        attempt(address="203.0.113.9"), History(recent_addresses=_addresses(3, 14)), s
    )
    assert verdict.allowed and verdict.reasons == (PASSWORD_SHARING,)
    assert [n.kind for n in verdict.notices] == ["trackstat"]


def test_trackstat_with_too_few_logins_never_flags():
    s = settings(**TRACK_DENY)
    history = History(recent_addresses=tuple(f"198.51.100.{i}" for i in range(13)))
    assert decide.check(attempt(address="203.0.113.9"), history, s).allowed


def test_group_networks_counts_a_slash24_and_a_slash64_as_one():
    plain = settings(**TRACK_DENY)
    grouped = settings(trackstat={"enabled": True, "action": "deny", "group_networks": True})
    same24 = tuple(f"198.51.100.{i}" for i in range(1, 16))
    assert trackstat_figure(same24, plain).determination == SHARING
    assert trackstat_figure(same24, grouped).unique_addresses == 1
    same64 = tuple(f"2001:db8:0:1::{i:x}" for i in range(1, 16))
    assert trackstat_figure(same64, grouped).unique_addresses == 1
    assert trackstat_figure(same64, plain).unique_addresses == 15


# --- concurrent ------------------------------------------------------------------------------

CONC = {"concurrent": {"enabled": True}}


def test_second_address_within_fifteen_minutes_is_concurrent():
    h = History(recent_logins=(Login(NOW - 14 * MIN, "198.51.100.1"),))
    verdict = decide.check(attempt(address="198.51.100.2"), h, settings(**CONC))
    assert verdict.reasons == (CONCURRENT_LOGIN,) and not verdict.allowed
    assert [n.kind for n in verdict.notices] == ["concurrent"]


def test_second_address_after_sixteen_minutes_is_not_concurrent():
    h = History(recent_logins=(Login(NOW - 16 * MIN, "198.51.100.1"),))
    assert decide.check(attempt(address="198.51.100.2"), h, settings(**CONC)).allowed


def test_same_address_is_not_concurrent():
    h = History(recent_logins=(Login(NOW - MIN, "198.51.100.2"),))
    assert decide.check(attempt(address="198.51.100.2"), h, settings(**CONC)).allowed


def test_ended_session_is_not_concurrent():
    h = History(
        recent_logins=(Login(NOW - 10 * MIN, "198.51.100.1"),),
        session_ends=(("198.51.100.1", NOW - 5 * MIN),),
    )
    assert decide.check(attempt(address="198.51.100.2"), h, settings(**CONC)).allowed


def test_concurrent_action_allow_lets_in_and_notify_off_is_quiet():
    s = settings(concurrent={"enabled": True, "action": "allow", "notify": False})
    h = History(recent_logins=(Login(NOW - MIN, "198.51.100.1"),))
    verdict = decide.check(attempt(address="198.51.100.2"), h, s)
    assert verdict.allowed and verdict.reasons == (CONCURRENT_LOGIN,) and verdict.notices == ()


def test_local_logins_never_make_or_meet_concurrency():
    h = History(recent_logins=(Login(NOW - MIN, "198.51.100.1"),))
    assert decide.check(attempt(address=None), h, settings(**CONC)).allowed
    h = History(recent_logins=(Login(NOW - MIN, None),))
    assert decide.check(attempt(address="198.51.100.2"), h, settings(**CONC)).allowed


# --- exemption -------------------------------------------------------------------------------


def test_exempt_user_skips_trackstat_and_concurrent_but_not_the_lock():
    s = settings(trackstat={"enabled": True, "action": "deny"}, concurrent={"enabled": True})
    h = History(
        exempt=True,
        recent_addresses=_addresses(10, 14),
        recent_logins=(Login(NOW - MIN, "198.51.100.1"),),
    )
    assert decide.check(attempt(address="203.0.113.9"), h, s).allowed
    locked = h._replace(locked_at=NOW - 1)
    assert decide.check(attempt(address="203.0.113.9"), locked, s).reasons == (LOCKED,)
    assert decide.after_failure(attempt(), h._replace(failures=3), s).lock is not None


# --- session limits --------------------------------------------------------------------------


def test_session_limit_per_service_is_risk_not_denial_by_default():
    s = settings(status={"session_limits": {"sshd": 1}})
    h = History(open_sessions=(Session("sshd", "198.51.100.1", NOW - 60, NOW - 60),))
    verdict = decide.check(attempt(), h, s)
    assert verdict.allowed and verdict.reasons == (SESSION_LIMIT,) and verdict.status == "risk"
    assert decide.check(attempt(service="vpn"), h, s).reasons == ()


def test_session_limit_denies_when_configured():
    s = settings(status={"session_limits": {"sshd": 1}, "deny_over_limits": True})
    h = History(open_sessions=(Session("sshd", "198.51.100.1", NOW - 60, NOW - 60),))
    assert not decide.check(attempt(), h, s).allowed
    assert decide.check(attempt(), History(), s).allowed


def test_access_point_limit_counts_distinct_addresses():
    s = settings(status={"access_point_limit": 1})
    h = History(open_sessions=(Session("vpn", "198.51.100.1", NOW, NOW),))
    assert decide.check(attempt(address="198.51.100.1"), h, s).reasons == ()
    assert decide.check(attempt(address="198.51.100.2"), h, s).reasons == (SESSION_LIMIT,)


def test_rule_order_reports_every_reason():
    s = settings(ip_lock={"enabled": True}, concurrent={"enabled": True})
    h = History(
        locked_at=NOW - 1,
        allow_list=("10.0.0.0/8",),
        recent_logins=(Login(NOW - MIN, "198.51.100.1"),),
    )
    verdict = decide.check(attempt(address="198.51.100.2"), h, s)
    assert verdict.reasons == (LOCKED, IP_RESTRICTED, CONCURRENT_LOGIN)


def test_spraying_from_one_address_alerts_the_admin():
    s = settings()
    verdict = decide.after_failure(
        attempt("carol"), History(failures=1), s, (("alice", NOW - 2), ("bob", NOW - 1))
    )
    alerts = [n for n in verdict.notices if n.kind == "ip_alert"]
    assert len(alerts) == 1 and dict(alerts[0].facts)["users"] == "alice, bob, carol"
    quiet = decide.after_failure(attempt("carol"), History(failures=1), s, (("bob", NOW - 1),))
    assert not [n for n in quiet.notices if n.kind == "ip_alert"]
