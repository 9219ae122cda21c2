"""The numbers behind trackstat and concurrency: network keys, figures, which login is "the
other one" (pure)."""

from __future__ import annotations

import pytest

from policy import decide, rules
from policy.addresses import in_any, network_key, parse_network
from policy.types import NOT_ENOUGH_DATA, OK, SHARING
from tests.unit.build import MINUTE, NOW, attempt, history, login, settings

TRACK = settings(trackstat={"enabled": True})


@pytest.mark.parametrize(
    "address,grouped",
    [
        ("198.51.100.7", "198.51.100.0/24"),
        ("10.0.0.255", "10.0.0.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("fe80::1", "fe80::/64"),
    ],
)
def test_network_key_groups_a_slash24_and_a_slash64(address, grouped):
    assert network_key(address, True) == grouped
    assert network_key(address, False) == address


def test_figure_counts_the_attempt_and_reports_its_numbers():
    figure = rules.attempt_trackstat(
        attempt(address="203.0.113.9"), history(recent_addresses=("198.51.100.1",) * 14), TRACK
    )
    assert figure.logins_used == 15 and figure.unique_addresses == 2
    assert figure.percent == pytest.approx(200 / 15)
    assert figure.determination == OK
    assert figure.addresses == ("198.51.100.1", "203.0.113.9")


def test_figure_uses_only_the_last_logins():
    # 14 recent logins from one place, older ones (beyond `logins`) from many: ignored.
    recent = ("198.51.100.1",) * 14 + tuple(f"192.0.2.{i}" for i in range(1, 30))
    figure = rules.attempt_trackstat(
        attempt(address="198.51.100.1"), history(recent_addresses=recent), TRACK
    )
    assert (figure.logins_used, figure.unique_addresses, figure.determination) == (15, 1, OK)


def test_local_logins_count_as_one_place():
    figure = rules.trackstat_figure((None,) * 10 + ("198.51.100.1",) * 5, TRACK)
    assert figure.unique_addresses == 2 and "local" in figure.addresses


def test_rating_and_logins_come_from_config():
    strict = settings(trackstat={"enabled": True, "logins": 5, "rating": 40})
    addresses = ("a1", "a2", "a1", "a1", "a1")
    assert rules.trackstat_figure(addresses, strict).determination == OK  # 2/5 = 40 %
    assert rules.trackstat_figure(addresses[:4] + ("a3",), strict).determination == SHARING
    assert rules.trackstat_figure(addresses[:4], strict).determination == NOT_ENOUGH_DATA


def test_trackstat_off_never_flags():
    many = history(recent_addresses=tuple(f"192.0.2.{i}" for i in range(1, 15)))
    assert rules.rule_password_sharing(attempt(), many, settings()) is None
    assert rules.rule_password_sharing(attempt(), many, TRACK) == "password_sharing"


def test_concurrent_notice_names_the_other_login():
    conc = settings(concurrent={"enabled": True})
    h = history(recent_logins=(login(20, "192.0.2.1"), login(3, "198.51.100.1")))
    verdict = decide.check(attempt(address="203.0.113.9"), h, conc)
    facts = dict(next(n for n in verdict.notices if n.kind == "concurrent").facts)
    assert facts["other_address"] == "198.51.100.1"
    assert facts["other_time"] == NOW - 3 * MINUTE
    assert facts["action"] == "refused"


def test_a_session_ended_before_the_login_does_not_end_it():
    # The address's last session ended before this login: the login's own session is live.
    conc = settings(concurrent={"enabled": True})
    h = history(
        recent_logins=(login(5, "198.51.100.1"),),
        session_ends=(("198.51.100.1", NOW - 10 * MINUTE),),
    )
    assert decide.check(attempt(address="203.0.113.9"), h, conc).reasons == ("concurrent_login",)


def test_concurrent_window_comes_from_config():
    wide = settings(concurrent={"enabled": True, "window_minutes": 60})
    h = history(recent_logins=(login(45, "198.51.100.1"),))
    assert decide.check(attempt(address="203.0.113.9"), h, wide).reasons == ("concurrent_login",)
    assert (
        decide.check(
            attempt(address="203.0.113.9"), h, settings(concurrent={"enabled": True})
        ).reasons
        == ()
    )


def test_inside_networks_membership():
    inside = settings().status.inside_networks
    assert in_any("10.1.2.3", inside) and in_any("fd00::1", inside) and in_any("fe80::9", inside)
    assert not in_any("198.51.100.1", inside) and not in_any(None, inside)


def test_ipv4_mapped_networks_shorter_than_96_stay_ipv6():
    assert str(parse_network("::ffff:0:0/96")) == "0.0.0.0/0"
    assert str(parse_network("::/64")) == "::/64"
