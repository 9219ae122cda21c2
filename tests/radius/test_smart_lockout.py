"""Issue 18 through a real freeradius with pam-guard's module: smart lockout by the
Calling-Station-Id (an address's /24, or a MAC station), never by the NAS; address blocks;
repeated PAP passwords counted once (CHAP has no password to compare); the time left in the
Reply-Message."""

from __future__ import annotations

import json

from tests.radius.helpers import LOCK_MESSAGE, wait_for
from tests.support import radclient

NAS = {"NAS_IP_Address": "10.0.0.1", "NAS_Port_Type": "Wireless-802.11"}
UNFAMILIAR_LINE = "Login refused: too many failed logins from unfamiliar places"
BLOCKED_LINE = "Login refused: too many failed logins from this address"
SMART = {"lockout": {"unfamiliar_attempts": 3}}


def station(value):
    return {"Calling_Station_Id": value, **NAS}


def rows(guard, user):
    return guard.query(
        "SELECT outcome, reasons, bucket FROM events WHERE username = ? ORDER BY id", (user,)
    )


def recorded(guard, user, count):
    """The user's rows once `count` are stored (the recorder commits after the reply)."""
    return wait_for(lambda: len(rows(guard, user)) >= count and rows(guard, user))


def message(reply) -> str:
    return reply.attrs.get("Reply-Message", "")


# --- smart lockout -------------------------------------------------------------------------


def test_unfamiliar_stations_never_stop_the_owner_on_a_familiar_network(make_guard, start_server):
    guard = make_guard(SMART)
    server = start_server(guard)
    assert server.auth("alice", server.password, **station("198.51.100.7")).code == "Access-Accept"
    recorded(guard, "alice", 1)

    attackers = [f"203.0.113.{i}" if i % 2 else f"192.0.2.{i}" for i in range(1, 11)]
    replies = [server.auth("alice", f"guess-{i}", **station(a)) for i, a in enumerate(attackers)]
    assert all(r.code == "Access-Reject" for r in replies)
    assert all(message(r).startswith(UNFAMILIAR_LINE) for r in replies[3:]), replies
    got = recorded(guard, "alice", 11)
    assert got[1:4] == [("failure", "", "unfamiliar")] * 3
    assert got[4:] == [("denied", "locked_unfamiliar", None)] * 7

    # Another address of the owner's /24, behind the same NAS: in.
    assert server.auth("alice", server.password, **station("198.51.100.20")).code == "Access-Accept"
    (account,) = guard.query("SELECT locked_at FROM accounts WHERE username = 'alice'")
    assert account == (None,)

    # Failures from the familiar network lock the account for every station.
    recorded(guard, "alice", 12)
    for _ in range(3):
        assert server.auth("alice", "typo", **station("198.51.100.30")).code == "Access-Reject"
    recorded(guard, "alice", 15)
    reply = server.auth("alice", server.password, **station("198.51.100.7"))
    assert reply.code == "Access-Reject" and message(reply).startswith(LOCK_MESSAGE), reply


def test_a_mac_station_is_familiar_in_any_spelling_and_others_are_not(make_guard, start_server):
    guard = make_guard(SMART)
    server = start_server(guard)
    owners_phone = station("00-11-22-AA-BB-CC")
    assert server.auth("bob", server.password, **owners_phone).code == "Access-Accept"
    recorded(guard, "bob", 1)
    for i in range(3):
        assert server.auth("bob", "guess", **station(f"66:55:44:33:22:1{i}")).code == (
            "Access-Reject"
        )
    recorded(guard, "bob", 4)
    assert [r[2] for r in rows(guard, "bob")[1:]] == ["unfamiliar"] * 3
    refused = server.auth("bob", server.password, **station("66:55:44:33:22:19"))
    assert refused.code == "Access-Reject" and message(refused).startswith(UNFAMILIAR_LINE)
    # the owner's phone, as another NAS spells it
    assert server.auth("bob", server.password, **station("0011.22aa.bbcc")).code == "Access-Accept"
    assert server.auth("bob", server.password, **station("001122AABBCC")).code == "Access-Accept"


def test_the_nas_is_no_source_but_framed_ip_is(make_guard, start_server):
    guard = make_guard(SMART)
    server = start_server(guard)
    assert server.auth("carol", server.password, **station("198.51.100.7")).code == "Access-Accept"
    recorded(guard, "carol", 1)
    # Without Calling-Station-Id, an unfamiliar Framed-IP-Address is the source ...
    framed = {"Framed_IP_Address": "203.0.113.9", **NAS}
    assert server.auth("carol", "guess", **framed).code == "Access-Reject"
    # ... and with neither, nothing tells the person apart from the owner: the request
    # counts toward the account lock, whatever NAS relays it.
    for _ in range(3):
        assert server.auth("carol", "guess", **NAS).code == "Access-Reject"
    got = recorded(guard, "carol", 5)
    assert [r[2] for r in got[1:]] == ["unfamiliar", None, None, None]
    reply = server.auth("carol", server.password, **station("198.51.100.7"))
    assert reply.code == "Access-Reject" and message(reply).startswith(LOCK_MESSAGE)


def test_without_smart_lockout_unfamiliar_stations_lock_the_account(make_guard, start_server):
    guard = make_guard()
    server = start_server(guard)
    assert server.auth("dave", server.password, **station("198.51.100.7")).code == "Access-Accept"
    for i in range(3):
        server.auth("dave", "guess", **station(f"203.0.113.{i + 1}"))
    recorded(guard, "dave", 4)
    reply = server.auth("dave", server.password, **station("198.51.100.7"))
    assert reply.code == "Access-Reject" and message(reply).startswith(LOCK_MESSAGE)


# --- address blocks ------------------------------------------------------------------------

BLOCKING = {
    "lockout": {"max_attempts": 10},
    "address_block": {"enabled": True, "attempts": 4, "block_minutes": 30},
}


def blocks(guard):
    return json.loads(guard.cli("--json", "blocks").stdout)


def test_a_spraying_station_address_is_blocked_for_every_user(make_guard, start_server):
    guard = make_guard(BLOCKING)
    server = start_server(guard)
    sprayer = station("203.0.113.50")
    for user in ("u1", "u2", "u3", "u4"):
        assert server.auth(user, "Winter2024!", **sprayer).code == "Access-Reject"
    assert wait_for(lambda: [b["address"] for b in blocks(guard)] == ["203.0.113.50"])

    refused = server.auth("zed", server.password, **sprayer)
    assert refused.code == "Access-Reject"
    assert message(refused).startswith(f"{BLOCKED_LINE} (30 minutes left)"), refused
    assert wait_for(lambda: rows(guard, "zed") == [("denied", "source_blocked", None)])
    assert server.auth("zed", server.password, **station("203.0.113.51")).code == "Access-Accept"

    guard.cli("unblock", "203.0.113.50")
    assert server.auth("zed", server.password, **sprayer).code == "Access-Accept"


def test_a_mac_station_or_a_slow_sprayer_is_never_blocked(make_guard, start_server):
    guard = make_guard(BLOCKING)
    server = start_server(guard)
    for i in range(6):
        server.auth(f"m{i}", "Winter2024!", **station("aa-bb-cc-dd-ee-ff"))
    for i in range(3):  # under `attempts`
        server.auth(f"s{i}", "Winter2024!", **station("203.0.113.60"))
    wait_for(lambda: len(guard.query("SELECT id FROM events")) == 9)
    assert blocks(guard) == []
    assert server.auth("m0", server.password, **station("aa-bb-cc-dd-ee-ff")).code == (
        "Access-Accept"
    )
    assert server.auth("s0", server.password, **station("203.0.113.60")).code == "Access-Accept"


# --- repeated passwords, and the time left ---------------------------------------------------

REPEATS = {"lockout": {"ignore_repeated_password": True}}


def test_the_same_wrong_pap_password_five_times_counts_once(make_guard, start_server):
    guard = make_guard(REPEATS)
    server = start_server(guard)
    phone = station("198.51.100.7")
    for _ in range(5):
        assert server.auth("erin", "Summer2024!", **phone).code == "Access-Reject"
    got = recorded(guard, "erin", 5)
    assert [r[2] for r in got] == [None] + ["repeated"] * 4
    assert server.auth("erin", server.password, **phone).code == "Access-Accept"

    # three different wrong passwords lock
    for password in ("a-1", "b-2", "c-3"):
        server.auth("fay", password, **phone)
    recorded(guard, "fay", 3)
    reply = server.auth("fay", server.password, **phone)
    assert reply.code == "Access-Reject" and message(reply).startswith(LOCK_MESSAGE)


def test_chap_has_no_password_to_compare_so_each_failure_counts(make_guard, start_stock_server):
    guard = make_guard(REPEATS)
    server = start_stock_server(guard)
    for _ in range(3):
        reply = radclient.send(server, 'User-Name = "gil"\nCHAP-Password = "Summer2024!"\n')
        assert reply.code == "Access-Reject"
    assert [r[2] for r in recorded(guard, "gil", 3)] == [None] * 3
    reply = radclient.send(server, f'User-Name = "gil"\nCHAP-Password = "{server.password}"\n')
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", b"").decode().startswith(LOCK_MESSAGE), reply


def test_the_reject_says_how_long_the_lock_has_left(make_guard, start_server):
    guard = make_guard({"lockout": {"unlock_after_minutes": 5}})
    server = start_server(guard)
    for _ in range(3):
        server.auth("hal", "wrong", **station("198.51.100.7"))
    recorded(guard, "hal", 3)
    reply = server.auth("hal", server.password, **station("198.51.100.7"))
    assert message(reply) == f"{LOCK_MESSAGE} (5 minutes left).", reply
