"""Odd requests and a broken config or store: the reply follows SPEC §12, the server keeps
answering, nothing raises out of the module."""

from __future__ import annotations

from tests.radius.helpers import outcomes, wait_for

UNAVAILABLE = "login service unavailable"


def test_missing_user_name_is_rejected_and_server_goes_on(guard, server):
    reply = server.auth(None, server.password)
    assert reply.code == "Access-Reject"
    assert "request without User-Name" in server.log_text()
    assert server.auth("rita", server.password).code == "Access-Accept"


def test_mac_calling_station_falls_back_to_nas_address(guard, server):
    server.auth("sam", "wrong", Calling_Station_Id="aa:bb:cc:dd:ee:ff", NAS_IP_Address="192.0.2.77")
    (row,) = wait_for(
        lambda: guard.query("SELECT address, address_raw FROM events WHERE username = 'sam'")
    )
    assert row == ("192.0.2.77", "192.0.2.77")


def test_configured_address_order_and_port_type_map(make_guard, start_server):
    guard = make_guard({"radius": {"address_order": ["framed_ip_address", "calling_station_id"]}})
    with open(guard.path, "a") as handle:
        handle.write('port_type_map = { Async = "dialup" }\n')
    server = start_server(guard)
    server.auth(
        "tom",
        "wrong",
        Calling_Station_Id="10.0.0.1",
        Framed_IP_Address="10.9.9.9",
        NAS_Port_Type="Async",
    )
    (row,) = wait_for(
        lambda: guard.query("SELECT address, service FROM events WHERE username = 'tom'")
    )
    assert row == ("10.9.9.9", "dialup")


def test_huge_values_are_bounded(guard, server):
    long_name = "u" * 253  # the longest User-Name RADIUS can carry: a valid name
    assert server.auth(long_name, server.password).code == "Access-Accept"
    junk = "x" * 253
    assert (
        server.auth("uma", "wrong", Calling_Station_Id=junk, NAS_Identifier=junk).code
        == "Access-Reject"
    )
    (row,) = wait_for(
        lambda: guard.query(
            "SELECT address, address_raw, length(client) FROM events WHERE username = 'uma'"
        )
    )
    assert row[0] is None and row[1] == junk and row[2] <= 256
    assert wait_for(lambda: outcomes(guard, long_name) == [("success", "")])


def test_control_characters_in_user_name_are_invalid(guard, server):
    reply = server.auth("vic\x01tor", server.password)
    assert reply.code == "Access-Reject"
    (row,) = guard.query("SELECT username, reasons FROM events")
    assert row == ("vic\\x01tor", "invalid_user")


def test_a_bidirectional_control_in_user_name_is_invalid(guard, server):
    # "\u202enimda" shows as "admin" in a terminal: refused, and recorded escaped.
    assert server.auth("\u202enimda", server.password).code == "Access-Reject"
    (row,) = guard.query("SELECT username, reasons FROM events")
    assert row == ("\\u202enimda", "invalid_user")
    assert server.auth("\u0639\u0644\u064a", server.password).code == "Access-Accept"


def test_user_name_not_utf8_is_rejected_and_server_goes_on(guard, server):
    # The `pam_guard` policy hands the name over as octets (test_text_bytes.py has the rest).
    assert server.auth(b"w\xffx", server.password).code == "Access-Reject"
    assert guard.query("SELECT username, reasons FROM events") == [("w\\xffx", "invalid_user")]
    assert server.auth("wendy", server.password).code == "Access-Accept"


def test_broken_config_refuses_every_request_until_fixed(guard, server):
    assert server.auth("xena", server.password).code == "Access-Accept"
    with open(guard.path) as handle:
        good = handle.read()
    with open(guard.path, "a") as handle:
        handle.write("\n[lockout]\nmax_attempts = 'three'\n")
    # the module looks at its config file at most once a second
    assert wait_for(lambda: server.auth("xena", server.password).code == "Access-Reject")
    reply = server.auth("xena", server.password)
    assert reply.code == "Access-Reject"
    assert UNAVAILABLE in reply.attrs["Reply-Message"]
    assert "max_attempts" in server.log_text()
    with open(guard.path, "w") as handle:
        handle.write(good)
    assert wait_for(lambda: server.auth("xena", server.password).code == "Access-Accept", 8)


def test_server_started_with_broken_config_refuses(guard, start_server):
    with open(guard.path, "a") as handle:
        handle.write("\n[nosuchsection]\nx = 1\n")
    server = start_server(guard)
    reply = server.auth("yan", server.password)
    assert reply.code == "Access-Reject"
    assert UNAVAILABLE in reply.attrs["Reply-Message"]
    assert server.running()
