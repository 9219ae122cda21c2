"""status, trackstat, sessions, explain, prune and init-store against what the Gate recorded."""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.cli.conftest import DAY, HOUR


def test_status_lists_high_risk_first(make_site):
    site = make_site({"ip_lock": {"enabled": True}})
    site.ok("ip", "allow", "mallory", "10.0.0.0/8")
    now = time.time()
    site.success("alice", "192.0.2.1", at=now - 120)
    site.success("zoe", "10.1.1.1", at=now - 100)
    site.success("mallory", "10.9.9.9", at=now - 90)
    for i in range(6):  # six denials in the 30-minute period: more than denied_limit 5
        assert site.success("mallory", f"203.0.113.{i + 1}", at=now - 60 + i).reasons == (
            "ip_restricted",
        )
    for i in range(5):  # five are tolerated
        site.success("zoe", f"203.0.113.{i + 1}", at=now - 50 + i)
    site.ok("lock", "bob")

    rows = site.json("status")
    assert rows[0]["user"] == "mallory" and rows[0]["status"] == "high_risk"
    assert "6 denied logons" in rows[0]["why"]
    assert {r["user"] for r in rows} == {"alice", "bob", "mallory", "zoe"}
    assert all(r["status"] != "high_risk" for r in rows[1:])
    assert [r["locked"] for r in rows if r["user"] == "bob"] == [True]
    table = site.ok("status").splitlines()
    assert table[0].split()[:2] == ["USER", "STATUS"] and table[1].split()[:2] == [
        "mallory",
        "high_risk",
    ]

    report = site.json("status", "mallory")
    assert report["status"] == "high_risk" and report["locked"] is False
    text = site.ok("status", "zoe")
    assert "status:      high_risk" not in text and "user:        zoe" in text


def test_status_of_a_user_shows_failures_trackstat_and_sessions(site):
    now = time.time()
    site.success("alice", "192.0.2.1", at=now - 300)
    site.failure("alice", "192.0.2.66", at=now - 30)
    site.clock.now = now - 20
    assert site.gate.session_start("alice", "pam", "sshd", "host:1:pts/1", "", "192.0.2.1")
    assert site.gate.session_start("alice", "radius", "vpn", "acct-7", "nas1", "2001:db8::7")

    report = site.json("status", "alice")
    assert report["failures_in_window"] == 1 and report["failure_limit"] == 3
    assert report["trackstat"] == {
        "logins_used": 1,
        "unique_addresses": 1,
        "percent": 100.0,
        "determination": "not enough data",
    }
    assert sorted((s["service"], s["address"]) for s in report["open_sessions"]) == [
        ("sshd", "192.0.2.1"),
        ("vpn", "2001:db8::7"),
    ]
    assert "sessions:    2 open" in site.ok("status", "alice")

    sessions = site.json("sessions", "alice")
    assert sorted(s["session"] for s in sessions) == ["acct-7", "host:1:pts/1"]
    assert site.gate.session_stop("alice", "radius", "acct-7", "nas1")
    assert [s["session"] for s in site.json("sessions")] == ["host:1:pts/1"]
    assert "no open sessions for bob" in site.ok("sessions", "bob")


def test_last_active_shows_a_success_the_account_row_was_left_behind(site):
    """A RADIUS recorder with kept copies leaves last_activity alone for a success that changes
    nothing else (policy.account.ACTIVITY_RESOLUTION_SECONDS): `status` still shows when the user was
    last seen, from the newest success; a later failure, which writes the row, wins."""
    from pam_guard.commands.common import when
    from policy.types import FAILURE, SUCCESS
    from radius_hook.hot import HotAccounts
    from store import changes

    start = float(int(time.time()) - 200)
    copies = HotAccounts(changes.path_for(site.url))
    try:
        for at in (start, start, start + 60):  # first sight, known, then only the times
            attempt = site.attempt("carol", "192.0.2.5", service="vpn", at=at, channel="radius")
            site.gate.record_outcomes([(SUCCESS, [attempt])], copies)
        assert site.query("SELECT last_activity FROM accounts WHERE username = 'carol'") == [
            (start,)
        ]
        assert site.json("status", "carol")["last_activity"] == when(start + 60)
        assert "last active: " + when(start + 60) in site.ok("status", "carol")
        (row,) = [r for r in site.json("status") if r["user"] == "carol"]
        assert row["last_activity"] == when(start + 60)

        attempt = site.attempt("carol", "192.0.2.5", service="vpn", at=start + 90, channel="radius")
        site.gate.record_outcomes([(FAILURE, [attempt])], copies)
        assert site.json("status", "carol")["last_activity"] == when(start + 90)
    finally:
        copies.close()


def test_status_takes_the_write_lock_only_to_save_a_changed_status(site):
    """`status` recomputes and saves statuses; one that has not changed is only read, so a
    busy store's write lock (a recorder's batch, a login) does not hold it up, and over
    every user it does not queue for that lock once a user."""
    now = time.time()
    for user in ("alice", "bob"):
        site.success(user, "192.0.2.1", at=now - 300)
        site.success(user, "192.0.2.1", at=now - 200)
    assert site.json("status", "bob")["status"] == "protected"
    # bob has been away for years as far as the account row goes: "inactive" now, to save
    site.execute(
        "UPDATE accounts SET last_activity = ? WHERE username = 'bob'", (now - 1000 * DAY,)
    )

    holder = sqlite3.connect(site.store_path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        assert site.json("status", "alice")["status"] == "protected"
        busy = site.cli("status", "bob")  # changed: must be saved, waits for the lock
        assert busy.returncode == 3, busy
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert site.json("status", "bob")["status"] == "inactive"
    assert site.query("SELECT status FROM accounts WHERE username = 'bob'") == [("inactive",)]
    holder = sqlite3.connect(site.store_path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:  # nothing changes now: every user's status is read alone
        assert {r["user"] for r in site.json("status")} == {"alice", "bob"}
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_trackstat_page(make_site, request, engine):
    url = request.getfixturevalue("postgres_url") if engine == "postgresql" else None
    site = make_site(
        {
            "trackstat": {"enabled": True, "logins": 15, "rating": 20},
            "concurrent": {"enabled": True, "action": "allow"},
        },
        url=url,
    )
    start = time.time() - 2 * DAY
    for i in range(3):  # older than the last 15 logins: not counted
        site.success("sharer", f"10.9.9.{i + 1}", at=start - DAY + i * 1200)
    for i in range(15):  # 20 minutes apart: no concurrent logins among these
        at = start + i * 1200
        site.success("sharer", f"192.0.2.{i % 4 + 1}", at=at)  # 4 of 15 = 26.7 % > 20 %
        site.success("steady", f"198.51.100.{i % 3 + 1}", at=at)  # 3 of 15 = 20 %: not over
    for i in range(5):
        site.success("newbie", "203.0.113.5", at=start + i * 1200)
    site.success("roamer", "192.0.2.10", at=start)
    site.success("roamer", "192.0.2.11", at=start + 60)  # a second place within 15 minutes

    rows = {r["user"]: r for r in site.json("trackstat")}
    assert set(rows) == {"newbie", "roamer", "sharer", "steady"}
    assert (
        rows["sharer"]["figure"],
        rows["sharer"]["percent"],
        rows["sharer"]["determination"],
    ) == ("4/15", 26.7, "sharing")
    assert (rows["steady"]["figure"], rows["steady"]["determination"]) == ("3/15", "ok")
    assert rows["newbie"]["determination"] == "not enough data"
    assert rows["newbie"]["logins_used"] == 5
    assert rows["roamer"]["concurrent_seen"] is True
    assert not any(rows[u]["concurrent_seen"] for u in ("sharer", "steady", "newbie"))
    assert rows["sharer"]["addresses"] == [f"192.0.2.{i}" for i in range(1, 5)]

    page = site.ok("trackstat").splitlines()
    assert page[0].split()[:3] == ["USER", "LOGINS", "USED"]
    sharer = next(line for line in page if line.startswith("sharer"))
    assert "15/15" in sharer and "4/15" in sharer and "26.7%" in sharer and "sharing" in sharer
    assert site.json("trackstat", "steady")["determination"] == "ok"
    for user, row in rows.items():  # the whole page and one user's row agree
        assert site.json("trackstat", user) == row


def _dump(site) -> list[str]:
    conn = sqlite3.connect(site.store_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_explain_shows_every_rule_and_changes_nothing(make_site):
    site = make_site({"ip_lock": {"enabled": True}})
    site.ok("ip", "allow", "dave", "10.0.0.0/8")
    now = time.time()
    for i in range(3):
        site.failure("dave", "10.1.1.1", at=now - 30 + i)
    before = _dump(site)

    report = site.json("explain", "dave", "--ip", "192.0.2.1", "--service", "sshd")
    assert report["allowed"] is False
    assert report["reasons"] == ["locked", "ip_restricted"]
    results = {r["rule"]: (r["result"], r["denies"]) for r in report["rules"]}
    assert results["locked"] == ("locked", True)
    assert results["ip_restricted"] == ("ip_restricted", True)
    assert results["password_sharing"] == ("passes", False)
    assert len(results) == 8
    assert results["locked_unfamiliar"] == results["source_blocked"] == ("passes", False)
    text = site.ok("explain", "dave", "--ip", "192.0.2.1")
    assert "verdict: DENY (locked, ip_restricted)" in text
    assert _dump(site) == before  # nothing written, not even a status

    site.ok("unlock", "dave")
    report = site.json("explain", "dave", "--ip", "10.2.3.4")
    assert report["allowed"] is True and report["reasons"] == []
    assert all(r["result"] == "passes" for r in report["rules"])
    assert site.json("explain", "dave", "--ip", "local")["reasons"] == ["ip_restricted"]


def test_prune_drops_only_what_is_past_retention(make_site):
    site = make_site({"store": {"retention_days": 30}})
    old = time.time() - 40 * DAY
    for i in range(3):  # locks, and queues a lock notice for the admin
        site.failure("erin", "192.0.2.9", at=old + i)
    site.success("erin", "192.0.2.9", at=time.time() - HOUR)
    site.clock.now = old
    for key in ("old-ended", "lost-stop", "alive"):
        site.gate.session_start("erin", "radius", "vpn", key, "nas1", "192.0.2.9")
    site.gate.session_stop("erin", "radius", "old-ended", "nas1")
    site.clock.now = time.time() - HOUR  # a long session, still updated: kept
    site.gate.session_update("erin", "radius", "alive", "nas1")
    notices = site.query("SELECT count(*) FROM outbox")[0][0]
    assert notices >= 1
    site.execute("UPDATE outbox SET sent_at = created")  # as `pam-guard deliver` marks them

    assert site.json("prune") == {
        "retention_days": 30,
        "events": 3,
        "sessions": 2,
        "notices": notices,
        "familiar_sources": 0,
        "address_blocks": 0,
    }
    assert site.query("SELECT outcome, reasons FROM events") == [("denied", "locked")]
    assert site.query("SELECT session_key FROM sessions") == [("alive",)]
    assert site.json("prune") == {
        "retention_days": 30,
        "events": 0,
        "sessions": 0,
        "notices": 0,
        "familiar_sources": 0,
        "address_blocks": 0,
    }


def test_prune_drops_old_familiar_sources_and_ended_blocks(make_site):
    site = make_site(
        {
            "store": {"retention_days": 30},
            "lockout": {"unfamiliar_attempts": 3},
            "address_block": {"enabled": True, "attempts": 2},
        }
    )
    old = time.time() - 40 * DAY
    site.success("fay", "192.0.2.9", at=old)  # familiar since 40 days: dropped
    site.success("fay", "198.51.100.9", at=time.time() - HOUR)  # kept
    for address in ("203.0.113.1", "203.0.113.2"):  # both blocked 40 days ago ...
        for i, user in enumerate(("gus", "hal")):
            site.failure(user, address, at=old + i)
    # ... one for an hour (dropped), one until unblocked (kept, however old)
    site.execute("UPDATE address_blocks SET expires = NULL WHERE address = '203.0.113.2'")

    assert "1 familiar sources, 1 ended address blocks" in site.ok("prune")
    assert site.query("SELECT source FROM familiar_sources") == [("198.51.100.0/24",)]
    assert site.query("SELECT address FROM address_blocks") == [("203.0.113.2",)]


def test_init_store_upgrades_in_place_and_keeps_data(site):
    site.ok("lock", "frank")
    assert "schema revision" in site.ok("init-store")
    assert site.json("status", "frank")["locked"] is True
    assert site.cli("audit", "verify").returncode == 0
