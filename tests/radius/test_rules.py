"""Address lists, trackstat and concurrent logins, refused in authorize with a Reply-Message."""

from __future__ import annotations

from tests.radius.helpers import outcomes, wait_for

IP_LOCK = {"ip_lock": {"enabled": True}}


def test_address_list_by_calling_station_id(make_guard, start_server):
    guard = make_guard(IP_LOCK)
    guard.cli("ip", "allow", "erin", "10.1.0.0/16")
    server = start_server(guard)
    assert (
        server.auth("erin", server.password, Calling_Station_Id="10.1.2.3").code == "Access-Accept"
    )
    reply = server.auth("erin", server.password, Calling_Station_Id="10.2.0.1")
    assert reply.code == "Access-Reject"
    assert "not allowed from this address" in reply.attrs["Reply-Message"]
    # Refusals are stored by the module's recorder, a moment after the reply.
    assert wait_for(lambda: outcomes(guard, "erin")[-1:] == [("denied", "ip_restricted")])


def test_address_list_by_framed_ip_when_calling_station_is_a_mac(make_guard, start_server):
    guard = make_guard(IP_LOCK)
    guard.cli("ip", "allow", "frank", "10.1.0.0/16")
    server = start_server(guard)
    mac = "00-11-22-33-44-55"
    ok = server.auth("frank", server.password, Calling_Station_Id=mac, Framed_IP_Address="10.1.9.9")
    assert ok.code == "Access-Accept"
    refused = server.auth(
        "frank", server.password, Calling_Station_Id=mac, Framed_IP_Address="172.16.0.9"
    )
    assert refused.code == "Access-Reject"
    (row,) = wait_for(
        lambda: guard.query("SELECT address, address_raw FROM events WHERE outcome = 'denied'")
    )
    assert row == ("172.16.0.9", "172.16.0.9")


def test_address_list_without_any_address_is_refused_unless_local(make_guard, start_server):
    guard = make_guard(IP_LOCK)
    guard.cli("ip", "allow", "gina", "10.1.0.0/16")
    server = start_server(guard)
    mac = "00:11:22:33:44:55"
    assert server.auth("gina", server.password, Calling_Station_Id=mac).code == "Access-Reject"
    (row,) = wait_for(
        lambda: guard.query("SELECT address, address_raw FROM events WHERE username = 'gina'")
    )
    assert row == (None, mac)  # recorded as given, never resolved
    guard.cli("ip", "allow", "gina", "local")
    assert server.auth("gina", server.password, Calling_Station_Id=mac).code == "Access-Accept"


def test_trackstat_deny(make_guard, start_server):
    guard = make_guard(
        {"trackstat": {"enabled": True, "logins": 5, "rating": 40, "action": "deny"}}
    )
    server = start_server(guard)
    # Steady user: the same address every time, never flagged.
    for _ in range(6):
        assert (
            server.auth("hank", server.password, Calling_Station_Id="10.0.0.1").code
            == "Access-Accept"
        )
    # Sharing user: four logins from four places; the fifth place makes 5/5 unique > 40 %.
    for i in range(4):
        assert (
            server.auth("ivy", server.password, Calling_Station_Id=f"10.0.1.{i}").code
            == "Access-Accept"
        )
    wait_for(lambda: outcomes(guard, "ivy").count(("success", "")) == 4)
    reply = server.auth("ivy", server.password, Calling_Station_Id="10.0.1.99")
    assert reply.code == "Access-Reject"
    assert "unusual login pattern" in reply.attrs["Reply-Message"]
    assert wait_for(lambda: outcomes(guard, "ivy")[-1:] == [("denied", "password_sharing")])


CONCURRENT = {"concurrent": {"enabled": True, "window_minutes": 15, "action": "deny"}}


def test_concurrent_login_refused_within_window_allowed_after_stop(make_guard, start_server):
    guard = make_guard(CONCURRENT)
    server = start_server(guard)
    assert (
        server.auth("jack", server.password, Calling_Station_Id="10.0.0.1").code == "Access-Accept"
    )
    assert (
        server.acct(
            "Start", "jack", "s-1", Calling_Station_Id="10.0.0.1", NAS_IP_Address="192.0.2.1"
        ).code
        == "Accounting-Response"
    )
    assert (
        server.auth("jack", server.password, Calling_Station_Id="10.0.0.1").code == "Access-Accept"
    )
    reply = server.auth("jack", server.password, Calling_Station_Id="10.0.0.2")
    assert reply.code == "Access-Reject"
    assert "already logged in" in reply.attrs["Reply-Message"]
    assert (
        server.acct(
            "Stop", "jack", "s-1", Calling_Station_Id="10.0.0.1", NAS_IP_Address="192.0.2.1"
        ).code
        == "Accounting-Response"
    )
    assert (
        server.auth("jack", server.password, Calling_Station_Id="10.0.0.2").code == "Access-Accept"
    )


def test_concurrent_login_allowed_after_the_window(make_guard, start_server):
    guard = make_guard(CONCURRENT)
    server = start_server(guard)
    assert (
        server.auth("kim", server.password, Calling_Station_Id="10.0.0.1").code == "Access-Accept"
    )
    assert wait_for(lambda: ("success", "") in outcomes(guard, "kim"))
    assert (
        server.auth("kim", server.password, Calling_Station_Id="10.0.0.2").code == "Access-Reject"
    )
    # Move kim's history 16 minutes into the past instead of waiting for the window to pass.
    guard.execute("UPDATE events SET ts = ts - 960 WHERE username = 'kim'")
    assert (
        server.auth("kim", server.password, Calling_Station_Id="10.0.0.2").code == "Access-Accept"
    )
