"""Address lists, trackstat, concurrent logins and flag exemption on the packaged stack,
end to end (SPEC §4), each shown firing and not firing."""

from __future__ import annotations

import pytest

from tests.support.pam import pamtester


def login(service, guard, user, rhost, ops=("authenticate", "acct_mgmt")):
    return pamtester(service, user.name, user.password, rhost=rhost, env=guard.env, ops=ops)


def last_event(guard, user):
    return guard.events(user.name)[-1]


# --- address lists (ip_lock) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "allowed_net, inside, outside",
    [
        ("10.1.0.0/16", "10.1.2.3", "10.2.0.1"),
        ("2001:db8:1::/48", "2001:db8:1::5", "2001:db8:2::5"),
    ],
)
def test_address_list_refuses_outside_and_accepts_inside(
    guarded, user, allowed_net, inside, outside
):
    guard, service = guarded({"ip_lock": {"enabled": True}})
    guard.cli("ip", "allow", user.name, allowed_net)

    assert login(service, guard, user, inside).ok
    assert last_event(guard, user)[1:4] == ("success", "", inside)

    refused = login(service, guard, user, outside)
    assert not refused.ok
    assert "not allowed from this address" in refused.output
    assert "Permission denied" in refused.output  # PAM_PERM_DENIED from the account phase
    assert last_event(guard, user)[1:4] == ("denied", "ip_restricted", outside)


def test_address_list_matches_an_ipv4_mapped_rhost_as_ipv4(guarded, user):
    guard, service = guarded({"ip_lock": {"enabled": True}})
    guard.cli("ip", "allow", user.name, "10.1.0.0/16")
    assert login(service, guard, user, "::ffff:10.1.2.3").ok
    assert last_event(guard, user)[3] == "10.1.2.3"


def test_address_list_refuses_a_local_login_unless_it_allows_local(guarded, user):
    guard, service = guarded({"ip_lock": {"enabled": True}})
    guard.cli("ip", "allow", user.name, "10.1.0.0/16")
    refused = login(service, guard, user, None)
    assert not refused.ok and "not allowed from this address" in refused.output

    guard.cli("ip", "allow", user.name, "local")
    assert login(service, guard, user, None).ok


def test_address_list_off_lets_everyone_in(guarded, user):
    guard, service = guarded({"ip_lock": {"enabled": False}})
    guard.cli("ip", "allow", user.name, "10.1.0.0/16")
    assert login(service, guard, user, "10.2.0.1").ok


# --- trackstat ---------------------------------------------------------------------------------

TRACKSTAT = {"trackstat": {"enabled": True, "logins": 3, "rating": 50, "action": "deny"}}


def test_trackstat_deny_refuses_the_login_that_passes_the_rating(guarded, user):
    guard, service = guarded(TRACKSTAT)
    # Three logins from one place: 1 unique of 3 = 33 %, within the 50 % rating.
    for _ in range(3):
        assert login(service, guard, user, "198.51.100.1").ok
    # A fourth from elsewhere would make 2 unique of the last 3 = 67 %: refused.
    refused = login(service, guard, user, "198.51.100.2")
    assert not refused.ok and "unusual login pattern" in refused.output
    assert last_event(guard, user)[1:3] == ("denied", "password_sharing")


def test_trackstat_email_lets_the_login_in(guarded, user):
    guard, service = guarded({"trackstat": {**TRACKSTAT["trackstat"], "action": "email"}})
    for _ in range(3):
        assert login(service, guard, user, "198.51.100.1").ok
    assert login(service, guard, user, "198.51.100.2").ok
    assert last_event(guard, user)[1:3] == ("success", "password_sharing")


# --- concurrent logins -------------------------------------------------------------------------

CONCURRENT = {"concurrent": {"enabled": True, "window_minutes": 1, "action": "deny"}}


def test_second_address_within_the_window_is_refused_after_it_accepted(guarded, user):
    guard, service = guarded(CONCURRENT)
    assert login(service, guard, user, "203.0.113.1").ok  # no session end: still on
    refused = login(service, guard, user, "203.0.113.2")
    assert not refused.ok and "already logged in from another address" in refused.output
    assert last_event(guard, user)[1:3] == ("denied", "concurrent_login")
    assert login(service, guard, user, "203.0.113.1").ok  # the same address is no second place

    # Step past the 1-minute window by ageing the stored logins (no sleeping).
    guard.execute("UPDATE events SET ts = ts - 120 WHERE username = ?", (user.name,))
    assert login(service, guard, user, "203.0.113.2").ok


def test_a_closed_session_is_no_concurrent_login(guarded, user):
    guard, service = guarded(CONCURRENT)
    full = ("authenticate", "acct_mgmt", "open_session", "close_session")
    assert login(service, guard, user, "203.0.113.1", ops=full).ok
    rows = guard.query("SELECT address, ended FROM sessions WHERE username = ?", (user.name,))
    assert len(rows) == 1 and rows[0][0] == "203.0.113.1" and rows[0][1] is not None
    assert login(service, guard, user, "203.0.113.2").ok


def test_an_open_session_stays_open_until_closed(guarded, user):
    guard, service = guarded()
    assert login(service, guard, user, "203.0.113.1", ops=("open_session",)).ok
    rows = guard.query(
        "SELECT service, address, ended FROM sessions WHERE username = ?", (user.name,)
    )
    assert rows == [(service, "203.0.113.1", None)]


# --- flag exemption ----------------------------------------------------------------------------


def test_exempt_user_passes_trackstat_and_concurrent(guarded, make_user):
    guard, service = guarded({**TRACKSTAT, **CONCURRENT})
    exempt, other = make_user(), make_user()
    guard.cli("exempt", exempt.name)
    for user in (exempt, other):
        for _ in range(3):
            assert login(service, guard, user, "198.51.100.1").ok
    assert login(service, guard, exempt, "198.51.100.2").ok  # sharing figure and a 2nd place
    assert login(service, guard, exempt, "198.51.100.3").ok
    assert not login(service, guard, other, "198.51.100.2").ok


def test_exempt_user_is_still_locked(guarded, user):
    guard, service = guarded()
    guard.cli("exempt", user.name)
    for i in range(3):
        assert not pamtester(service, user.name, f"wrong-{i}", rhost="192.0.2.1", env=guard.env).ok
    refused = login(service, guard, user, "192.0.2.1")
    assert not refused.ok and "Account locked" in refused.output
