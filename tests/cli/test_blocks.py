"""Issue 18's rules from the admin's side: `blocks` and `unblock` (audited) after real failures
recorded through the Gate, the time left and smart lockout's lock in `status`, familiarity
and the address's block in `explain`, `notify --on lock`, and the metrics gauge of blocks."""

from __future__ import annotations

import re
import time

from tests.cli.test_metrics import parsed, value

SPRAYED = "203.0.113.7"
BLOCKING = {
    "address_block": {"enabled": True, "attempts": 3, "period_minutes": 10, "block_minutes": 60}
}
SMART = {"lockout": {"unfamiliar_attempts": 2, "unlock_after_minutes": 15}}


def spray(site, address=SPRAYED, users=("bob", "carol", "dave"), start=None) -> None:
    """One failure for each user from `address`: three across users block it."""
    start = time.time() - 30 if start is None else start
    for i, user in enumerate(users):
        site.failure(user, address, at=start + i)


def minutes_left(text: str) -> int:
    found = re.search(r"\((\d+) minutes left\)", text)
    assert found, text
    return int(found.group(1))


# --- blocks ------------------------------------------------------------------------------------


def test_blocks_lists_an_address_that_failed_for_many_users(make_site):
    site = make_site(BLOCKING)
    assert site.ok("blocks") == "no address is blocked\n"
    spray(site)
    assert site.gate.preauth(site.attempt("erin", SPRAYED)).reasons == ("source_blocked",)

    [block] = site.json("blocks")
    assert block["address"] == SPRAYED
    assert block["users"] == ["bob", "carol", "dave"]
    assert (block["failures"], block["block_count"], block["in_force"]) == (3, 1, True)
    assert block["left"] in ("59 minutes", "60 minutes")
    [(blocked_at, expires)] = site.query("SELECT blocked_at, expires FROM address_blocks")
    assert expires - blocked_at == 3600

    header, row = site.ok("blocks").splitlines()
    assert header.split() == ["ADDRESS", "BLOCKED", "SINCE", "ENDS", "BLOCKS", "FAILURES"] + [
        "USERS",
        "TRIED",
    ]
    assert row.startswith(SPRAYED + " ") and row.endswith("bob, carol, dave")
    assert minutes_left(row) in (59, 60)


def test_permanent_after_never_makes_a_block_permanent(make_site):
    # permanent_after = 1 would keep the first lock until unlocked; one address may be a
    # whole NAT, so its block still ends after block_minutes
    site = make_site({**BLOCKING, "lockout": {"permanent_after": 1}})
    spray(site)
    [block] = site.json("blocks")
    assert block["ends"] != "until unblocked" and block["left"] in ("59 minutes", "60 minutes")
    assert "until unblocked" not in site.ok("blocks")


def test_an_ipv6_block_takes_the_64_and_any_address_in_it_lifts_it(make_site):
    site = make_site(BLOCKING)
    start = time.time() - 30
    for i, user in enumerate(("bob", "carol", "dave")):
        site.failure(user, f"2001:db8:1::{i + 1}", at=start + i)
    assert [b["address"] for b in site.json("blocks")] == ["2001:db8:1::/64"]
    assert site.json("unblock", "2001:db8:1::99") == {
        "entry": "2001:db8:1::99",
        "unblocked": ["2001:db8:1::/64"],
    }
    assert site.json("blocks") == []


# --- unblock -----------------------------------------------------------------------------------


def test_unblock_lifts_the_block_and_is_audited(make_site):
    site = make_site(BLOCKING)
    spray(site)
    spray(site, "198.51.100.20")
    assert len(site.json("blocks")) == 2

    assert site.ok("unblock", "203.0.113.0/24") == f"{SPRAYED}: unblocked\n"
    assert [b["address"] for b in site.json("blocks")] == ["198.51.100.20"]
    assert site.gate.preauth(site.attempt("erin", SPRAYED, at=time.time())).allowed
    assert not site.gate.preauth(site.attempt("erin", "198.51.100.20", at=time.time())).allowed
    # kept for the next block to grow from, shown with --all as lifted
    lifted = [b for b in site.json("blocks", "--all") if b["address"] == SPRAYED]
    assert len(lifted) == 1 and lifted[0]["in_force"] is False
    assert "(ended)" in site.ok("blocks", "--all")

    [entry] = site.json("audit")
    assert (entry["action"], entry["target"], entry["detail"]) == (
        "unblock",
        "203.0.113.0/24",
        SPRAYED,
    )
    done = site.cli("audit", "verify")
    assert done.returncode == 0 and "audit log intact: 1 entries" in done.stdout


def test_unblock_of_an_address_not_blocked_exits_1_and_logs_nothing(make_site):
    site = make_site(BLOCKING)
    spray(site)
    site.ok("unblock", SPRAYED)
    for entry in ("198.51.100.1", SPRAYED):  # never blocked; no longer blocked
        done = site.cli("unblock", entry)
        assert done.returncode == 1, done.stderr
        assert f"no address block in force matches {entry}" in done.stderr
        assert done.stdout == ""
    assert [e["action"] for e in site.json("audit")] == ["unblock"]


def test_unblock_of_a_malformed_address_exits_2_and_changes_nothing(make_site):
    site = make_site(BLOCKING)
    spray(site)
    for entry in ("not-an-address", "203.0.113.300", "10.0.0.0/33", "local", ""):
        done = site.cli("unblock", entry)
        assert done.returncode == 2, (entry, done.stderr)
        assert "is not an address or CIDR network" in done.stderr
        assert "Traceback" not in done.stderr
    assert [b["address"] for b in site.json("blocks")] == [SPRAYED]
    assert site.json("audit") == []


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_count_the_blocks_in_force(make_site):
    site = make_site(BLOCKING)
    assert value(parsed(site.ok("metrics")), "blocked_addresses") == 0
    spray(site)
    spray(site, "198.51.100.20")
    assert value(parsed(site.ok("metrics")), "blocked_addresses") == 2
    site.ok("unblock", "198.51.100.20")
    assert value(parsed(site.ok("metrics")), "blocked_addresses") == 1


# --- status ------------------------------------------------------------------------------------


def test_status_shows_how_long_a_lock_has_left(make_site):
    site = make_site({"lockout": {"unlock_after_minutes": 30}})
    start = time.time() - 5
    for i in range(3):
        site.failure("frank", "192.0.2.50", at=start + i)
    report = site.json("status", "frank")
    assert report["locked"] is True and report["lock_left"] in ("29 minutes", "30 minutes")
    assert report["locks_in_window"] == 1 and report["lock_window_days"] == 1
    assert report["unfamiliar"] is None  # smart lockout is off
    text = site.ok("status", "frank")
    assert re.search(
        r"^lock: +LOCKED since .* until .*\((29|30) minutes left\): 3 failed", text, re.M
    )
    assert re.search(r"^locks: +1 within 1 day$", text, re.M)
    assert "unfamiliar:" not in text

    site.ok("lock", "grace")  # by hand: no end
    report = site.json("status", "grace")
    assert report["locked"] is True and report["lock_left"] is None
    assert re.search(
        r"^lock: +LOCKED since .* until an admin unlocks: ", site.ok("status", "grace"), re.M
    )


def test_status_and_unlock_show_the_lock_of_unfamiliar_sources(make_site):
    site = make_site(SMART)
    start = time.time() - 30
    site.success("ivy", "192.0.2.10", at=start)  # makes 192.0.2.0/24 familiar
    for i in range(2):
        site.failure("ivy", f"198.51.100.{i + 1}", at=start + 1 + i)
    assert site.gate.preauth(site.attempt("ivy", "198.51.100.9")).reasons == ("locked_unfamiliar",)
    assert site.gate.preauth(site.attempt("ivy", "192.0.2.11")).allowed

    report = site.json("status", "ivy")
    assert report["locked"] is False
    unfamiliar = report["unfamiliar"]
    assert unfamiliar["locked"] is True and unfamiliar["lock_left"] in ("14 minutes", "15 minutes")
    assert (unfamiliar["failures_in_window"], unfamiliar["failure_limit"]) == (2, 2)
    assert report["locks_in_window"] == 1
    text = site.ok("status", "ivy")
    assert re.search(r"^lock: +not locked$", text, re.M)
    assert re.search(
        r"^unfamiliar: +LOCKED since .*\((14|15) minutes left\): unfamiliar sources refused",
        text,
        re.M,
    )
    [row] = site.json("status")
    assert (row["locked"], row["unfamiliar_locked"]) == (False, True)
    assert re.search(r"^ivy +\S+ +unfamiliar ", site.ok("status"), re.M)

    assert site.ok("unlock", "ivy") == (
        "ivy: unlocked (lock of unfamiliar sources lifted); failure count reset\n"
    )
    report = site.json("status", "ivy")
    assert report["unfamiliar"]["locked"] is False and report["locks_in_window"] == 0
    assert site.gate.preauth(site.attempt("ivy", "198.51.100.9", at=time.time())).allowed
    assert site.json("unlock", "ivy")["lifted"] == []


def test_unlock_names_both_locks_when_both_are_in_force(make_site):
    site = make_site(SMART)
    start = time.time() - 30
    site.success("jay", "192.0.2.10", at=start)
    for i in range(2):
        site.failure("jay", f"198.51.100.{i + 1}", at=start + 1 + i)
    for i in range(3):  # from the familiar network: the account lock
        site.failure("jay", "192.0.2.10", at=start + 5 + i)
    report = site.json("status", "jay")
    assert report["locked"] is True and report["unfamiliar"]["locked"] is True
    assert report["locks_in_window"] == 2

    assert site.ok("unlock", "jay") == (
        "jay: unlocked (account lock and lock of unfamiliar sources lifted); failure count reset\n"
    )
    assert site.gate.preauth(site.attempt("jay", "198.51.100.9", at=time.time())).allowed
    assert site.json("status", "jay")["locks_in_window"] == 0


# --- explain -----------------------------------------------------------------------------------


def test_explain_shows_familiarity_and_the_block(make_site):
    site = make_site({**SMART, **BLOCKING})
    site.success("alice", "192.0.2.10", at=time.time() - 60)
    spray(site)

    def explained(address):
        return site.json("explain", "alice", "--ip", address)

    same_network = explained("192.0.2.99")
    assert same_network["source"] == {
        "source": "192.0.2.99",
        "key": "192.0.2.0/24",
        "familiarity": "familiar",
    }
    assert same_network["address_block"]["state"] == "not blocked"
    assert explained("198.51.100.5")["source"]["familiarity"] == "unfamiliar"
    local = explained("local")
    assert local["source"]["familiarity"] == "always familiar (local)"
    assert local["address_block"]["state"] == "never blocked: not an address"
    assert explained("127.0.0.1")["address_block"]["state"] == (
        "never blocked: in address_block.ignore"
    )

    blocked = explained(SPRAYED)
    assert blocked["allowed"] is False and blocked["reasons"] == ["source_blocked"]
    assert blocked["address_block"]["blocked"] is True
    assert blocked["address_block"]["address"] == SPRAYED
    results = {r["rule"]: r["result"] for r in blocked["rules"]}
    assert results["source_blocked"] == "source_blocked"
    assert results["locked_unfamiliar"] == "passes"

    text = site.ok("explain", "alice", "--ip", SPRAYED)
    assert re.search(
        r"^source: +203\.0\.113\.7 \(network 203\.0\.113\.0/24\): unfamiliar$", text, re.M
    )
    assert re.search(rf"^block: +{re.escape(SPRAYED)}: blocked since .* until ", text, re.M)
    assert minutes_left(text.split("block:", 1)[1].splitlines()[0]) in (59, 60)
    assert re.search(r"^  source_blocked +source_blocked -> refuses$", text, re.M)
    assert re.search(r"^verdict: DENY \(source_blocked; (59|60) minutes left\)$", text, re.M)


def test_explain_shows_the_lock_of_unfamiliar_sources(make_site):
    site = make_site(SMART)
    start = time.time() - 30
    site.success("kim", "192.0.2.10", at=start)
    for i in range(2):
        site.failure("kim", f"198.51.100.{i + 1}", at=start + 1 + i)
    report = site.json("explain", "kim", "--ip", "198.51.100.77")
    assert report["reasons"] == ["locked_unfamiliar"] and report["allowed"] is False
    assert "address_block" not in report  # address_block is off
    assert site.json("explain", "kim", "--ip", "192.0.2.77")["allowed"] is True
    text = site.ok("explain", "kim", "--ip", "198.51.100.77")
    assert re.search(r"^  locked_unfamiliar +locked_unfamiliar -> refuses$", text, re.M)


def test_explain_says_nothing_of_rules_that_are_off(site):
    report = site.json("explain", "alice", "--ip", "192.0.2.1")
    assert "source" not in report and "address_block" not in report
    text = site.ok("explain", "alice", "--ip", "192.0.2.1")
    assert "source:" not in text and "block:" not in text


def test_explain_on_radius_takes_a_station_as_the_source(make_site):
    site = make_site(SMART)
    report = site.json("explain", "lee", "--ip", "AA:BB:CC:DD:EE:FF", "--channel", "radius")
    assert report["source"] == {
        "source": "aa-bb-cc-dd-ee-ff",
        "key": "aa-bb-cc-dd-ee-ff",
        "familiarity": "unfamiliar",
    }


# --- notify --on lock --------------------------------------------------------------------------


def test_notify_on_lock_mails_the_user_when_their_account_locks(site):
    done = site.cli("notify", "nina", "--on", "lock,failure", "--to", "nina@example.org")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout
        == "nina: failure logins and locks of the account are mailed to nina@example.org\n"
    )
    assert site.json("notify", "nina") == {
        "user": "nina",
        "on": ["failure", "lock"],
        "to": ["nina@example.org"],
    }
    [entry] = site.json("audit")
    assert (entry["action"], entry["detail"]) == ("notify", "on=failure,lock to=nina@example.org")

    start = time.time() - 30
    for i in range(3):
        site.failure("nina", "192.0.2.60", at=start + i)
    mailed = site.query("SELECT kind, recipients FROM outbox WHERE kind LIKE 'user_%' ORDER BY id")
    assert ("user_lock", "nina@example.org") in mailed
    assert ("user_failure", "nina@example.org") in mailed

    done = site.cli("notify", "nina", "--on", "locks", "--to", "nina@example.org")
    assert done.returncode == 2 and "use failure, success or lock" in done.stderr
