"""Accounting Start / Interim-Update / Stop and Accounting-On change `pam-guard sessions`."""

from __future__ import annotations

import json


def sessions(guard) -> list:
    return json.loads(guard.cli("--json", "sessions").stdout)


def test_start_interim_stop(guard, server):
    reply = server.acct(
        "Start",
        "lena",
        "acct-1",
        NAS_IP_Address="192.0.2.1",
        Framed_IP_Address="10.7.0.5",
        NAS_Port_Type="Virtual",
    )
    assert reply.code == "Accounting-Response"
    (row,) = sessions(guard)
    assert (
        row["user"],
        row["channel"],
        row["service"],
        row["session"],
        row["nas"],
        row["address"],
    ) == ("lena", "radius", "vpn", "acct-1", "192.0.2.1", "10.7.0.5")
    guard.execute("UPDATE sessions SET last_update = last_update - 100")
    (before,) = guard.query("SELECT last_update FROM sessions")
    assert (
        server.acct("Interim-Update", "lena", "acct-1", NAS_IP_Address="192.0.2.1").code
        == "Accounting-Response"
    )
    (after,) = guard.query("SELECT last_update FROM sessions")
    assert after[0] > before[0] + 50
    assert (
        server.acct("Stop", "lena", "acct-1", NAS_IP_Address="192.0.2.1").code
        == "Accounting-Response"
    )
    assert sessions(guard) == []


def test_accounting_on_closes_only_that_nas(guard, server):
    for user, key, nas in (
        ("mia", "a", "192.0.2.1"),
        ("ned", "b", "192.0.2.1"),
        ("oli", "c", "192.0.2.2"),
    ):
        server.acct("Start", user, key, NAS_IP_Address=nas)
    assert len(sessions(guard)) == 3
    assert server.acct("Accounting-On", NAS_IP_Address="192.0.2.1").code == "Accounting-Response"
    assert [s["user"] for s in sessions(guard)] == ["oli"]


def test_stop_of_another_nas_changes_nothing(guard, server):
    server.acct("Start", "pia", "same-id", NAS_IP_Address="192.0.2.1")
    server.acct("Stop", "pia", "same-id", NAS_IP_Address="192.0.2.9")
    assert [s["user"] for s in sessions(guard)] == ["pia"]


def test_accounting_without_session_id_changes_nothing(guard, server):
    reply = server.acct("Start", "quin", None, NAS_IP_Address="192.0.2.1")
    assert reply.code == "Accounting-Response"
    assert sessions(guard) == []
    assert "without a usable User-Name or Acct-Session-Id" in server.log_text()
