"""lock, unlock, exempt and ip lists: each changes what the Gate decides, and is audited."""

from __future__ import annotations

import json
import time

from tests.cli.conftest import HOUR


def test_lock_by_hand_refuses_and_unlock_lets_in(site):
    site.success("alice", "192.0.2.10")
    assert site.gate.preauth(site.attempt("alice", "192.0.2.10")).allowed

    out = site.ok("lock", "alice", "--reason", "left the company")
    assert "alice: locked (left the company)" in out
    verdict = site.gate.preauth(site.attempt("alice", "192.0.2.10"))
    assert not verdict.allowed and verdict.reasons == ("locked",)
    status = site.json("status", "alice")
    assert status["locked"] is True and status["lock_reason"] == "left the company"

    assert site.json("unlock", "alice") == {
        "user": "alice",
        "unlocked": True,
        "store": True,
        "directory": False,
        "lifted": ["locked"],
    }
    assert site.gate.preauth(site.attempt("alice", "192.0.2.10")).allowed
    assert site.json("status", "alice")["locked"] is False


def test_unlock_clears_a_failure_lock_and_the_count(site):
    # Real time: `status` counts failures in the 5-minute window before its own clock.
    start = time.time() - 60
    for i in range(3):
        site.failure("bob", "198.51.100.7", at=start + i)
    assert not site.gate.preauth(site.attempt("bob", "198.51.100.7", at=start + 10)).allowed
    assert site.json("status", "bob")["failures_in_window"] == 3

    site.ok("unlock", "bob")
    # Failures before the unlock no longer count: two more do not lock (three would).
    later = time.time() + 1
    for i in range(2):
        site.failure("bob", "198.51.100.7", at=later + i)
    assert site.gate.preauth(site.attempt("bob", "198.51.100.7", at=later + 5)).allowed
    report = site.json("status", "bob")
    assert report["failures_in_window"] == 2 and report["locked"] is False
    site.failure("bob", "198.51.100.7", at=later + 6)
    assert not site.gate.preauth(site.attempt("bob", "198.51.100.7", at=later + 7)).allowed


def test_unlock_and_status_of_an_unknown_user_exit_1(site):
    for args in (("unlock", "nobody"), ("status", "nobody"), ("trackstat", "nobody")):
        done = site.cli(*args)
        assert done.returncode == 1, args
        assert "unknown user 'nobody'" in done.stderr
    assert site.query("SELECT count(*) FROM audit") == [(0,)]  # nothing done, nothing logged


def test_exempt_skips_concurrent_but_not_the_lock(make_site):
    site = make_site({"concurrent": {"enabled": True}})
    t = site.clock.now - HOUR
    site.success("carol", "192.0.2.1", at=t)
    verdict = site.gate.login(site.attempt("carol", "192.0.2.2", at=t + 60))
    assert verdict.reasons == ("concurrent_login",) and not verdict.allowed

    assert site.json("exempt", "carol") == {"user": "carol", "exempt": True}
    assert site.gate.login(site.attempt("carol", "192.0.2.3", at=t + 120)).allowed
    site.ok("lock", "carol")
    assert site.gate.preauth(site.attempt("carol", "192.0.2.3", at=t + 180)).reasons == ("locked",)

    site.ok("unlock", "carol")
    assert site.json("exempt", "carol", "--off") == {"user": "carol", "exempt": False}
    assert site.gate.login(site.attempt("carol", "192.0.2.4", at=t + 240)).reasons == (
        "concurrent_login",
    )


def test_ip_lists_change_the_gate(make_site):
    site = make_site({"ip_lock": {"enabled": True}})
    assert site.json("ip", "allow", "dave", "10.1.2.3/16") == {
        "user": "dave",
        "action": "allow",
        "entry": "10.1.0.0/16",
        "changed": True,
    }
    site.ok("ip", "allow", "dave", "2001:DB8::/32")
    site.ok("ip", "deny", "dave", "10.1.66.0/24")
    assert "(already listed)" in site.ok("ip", "allow", "dave", "10.1.0.0/16")

    assert site.success("dave", "10.1.9.9").allowed
    assert site.success("dave", "2001:db8:5::1").allowed
    assert site.success("dave", "::ffff:10.1.7.7").allowed  # IPv4-mapped is the IPv4 address
    assert site.success("dave", "10.1.66.5").reasons == ("ip_restricted",)
    assert site.success("dave", "10.2.0.1").reasons == ("ip_restricted",)
    assert site.success("dave", None).reasons == ("ip_restricted",)  # no address: needs 'local'

    site.ok("ip", "allow", "dave", "LOCAL")
    assert site.success("dave", None).allowed

    listed = site.json("ip", "list", "dave")
    assert listed == [
        {"user": "dave", "kind": "allow", "entry": "10.1.0.0/16"},
        {"user": "dave", "kind": "allow", "entry": "2001:db8::/32"},
        {"user": "dave", "kind": "allow", "entry": "local"},
        {"user": "dave", "kind": "deny", "entry": "10.1.66.0/24"},
    ]
    site.ok("ip", "remove", "dave", "10.1.66.0/24")
    assert site.success("dave", "10.1.66.5").allowed
    done = site.cli("ip", "remove", "dave", "10.1.66.0/24")
    assert done.returncode == 1 and "no address-list entry 10.1.66.0/24" in done.stderr
    assert "dave" in site.ok("ip", "list") and "no address lists for erin" in site.ok(
        "ip", "list", "erin"
    )

    actions = [r[0] for r in site.query("SELECT action FROM audit ORDER BY seq")]
    assert actions == ["ip-allow", "ip-allow", "ip-deny", "ip-allow", "ip-remove"]


def test_malformed_cidr_is_exit_2_and_changes_nothing(site):
    for bad in ("10.0.0.0/33", "10.0.0.256", "2001:db8::/129", "example.org", "", "10.0.0.0/8x"):
        done = site.cli("ip", "allow", "erin", bad)
        assert done.returncode == 2, bad
        assert "is not a CIDR network" in done.stderr
    assert site.query("SELECT count(*) FROM address_rules") == [(0,)]
    assert site.query("SELECT count(*) FROM audit") == [(0,)]


def test_json_flag_before_or_after_the_subcommand(site):
    site.ok("lock", "frank")
    before = json.loads(site.ok("--json", "status", "frank"))
    after = json.loads(site.ok("status", "frank", "--json"))
    assert before == after and before["user"] == "frank"
    assert json.loads(site.ok("ip", "list", "--json")) == []


def test_invalid_user_name_is_exit_2(site):
    done = site.cli("lock", "bad\nname")
    assert done.returncode == 2 and "invalid user name" in done.stderr
    done = site.cli("status", "x" * 300)
    assert done.returncode == 2 and "longer than 256 bytes" in done.stderr
