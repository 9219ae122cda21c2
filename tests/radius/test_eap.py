"""802.1X over a copy of Debian's own raddb (eap with its snakeoil certificate, the default
and inner-tunnel sites) with pam-guard wired in as packaging/freeradius/sites/* show, and
eapol_test logging in with an anonymous outer identity: the real user is guarded in the
inner tunnel, the outer identity never."""

from __future__ import annotations

import pytest

from tests.radius.helpers import LOCK_MESSAGE, outcomes, wait_for
from tests.support import radclient
from tests.support.eapol import ANONYMOUS, eap_login

METHODS = ("TTLS", "PEAP")  # EAP-TTLS/PAP, PEAP/MSCHAPv2
NAS = "192.0.2.1"
STATION = "02:00:00:00:00:01"


def no_outer_identity(guard) -> bool:
    return not guard.query(
        "SELECT 1 FROM events WHERE username = ? UNION ALL "
        "SELECT 1 FROM accounts WHERE username = ?",
        (ANONYMOUS, ANONYMOUS),
    )


@pytest.mark.parametrize("method", METHODS)
def test_real_user_recorded_with_address_and_service(guard, start_stock_server, method):
    server = start_stock_server(guard)
    good = eap_login(server, method, "alice", server.password, station=STATION, nas=NAS)
    assert good.ok, good.output[-2000:]
    assert good.accept_user == "alice"  # the NAS's accounting will name the real user
    assert not eap_login(server, method, "alice", "wrong").ok
    rows = wait_for(
        lambda: guard.query(
            "SELECT outcome, address, service, client FROM events WHERE username = 'alice' "
            "ORDER BY id"
        ),
        timeout=5,
    )
    assert [row[0] for row in rows] == ["success", "failure"], rows
    for _outcome, address, service, client in rows:
        assert (address, service) == (NAS, "wifi")
        assert "csid=02-00-00-00-00-01" in client
    assert no_outer_identity(guard)


def test_three_wrong_inner_passwords_lock_the_real_user_only(guard, start_stock_server):
    server = start_stock_server(guard)
    for method in ("PEAP", "TTLS", "PEAP"):
        assert not eap_login(server, method, "alice", "wrong").ok
    assert wait_for(
        lambda: guard.query(
            "SELECT 1 FROM accounts WHERE username = 'alice' AND locked_at IS NOT NULL"
        )
    )
    for method in METHODS:
        assert not eap_login(server, method, "alice", server.password).ok
        assert eap_login(server, method, "bob", server.password).ok
    assert wait_for(lambda: outcomes(guard, "alice")[-2:] == [("denied", "locked")] * 2)
    # A lock made in the tunnel holds in the outer site's own (PAP) requests too.
    reply = radclient.send(server, f'User-Name = "alice"\nUser-Password = "{server.password}"\n')
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", b"").decode().startswith(LOCK_MESSAGE)
    guard.cli("unlock", "alice")
    for method in METHODS:
        assert eap_login(server, method, "alice", server.password).ok
    assert no_outer_identity(guard)


def test_a_latin1_inner_password_lets_in_and_wrong_ones_lock(guard, start_stock_server):
    # TTLS/PAP: the inner User-Password is the client's bytes; the `pam_guard` policy keeps
    # it aside for the call (rlm_python3 cannot hand non-UTF-8 text to Python).
    server = start_stock_server(guard, users={"lena": b"p\xe4ss"})
    assert eap_login(server, "TTLS", "lena", b"p\xe4ss").ok
    for wrong in (b"p\xe4s", b"w\xe4rong", b"\xff\xfe"):
        assert not eap_login(server, "TTLS", "lena", wrong).ok
    assert wait_for(lambda: outcomes(guard, "lena") == [("success", "")] + [("failure", "")] * 3), (
        outcomes(guard, "lena")
    )
    assert not eap_login(server, "TTLS", "lena", b"p\xe4ss").ok  # locked
    assert "UnicodeDecodeError" not in server.log_text()
    assert no_outer_identity(guard)


def test_wrong_peap_passwords_each_count_once_whatever_the_identifier(
    make_guard, start_stock_server
):
    # In PEAP the server picks the MS-CHAPv2 identifier (at random): enough attempts to see
    # several from 0x80 up, whose MS-CHAP-Error rlm_python3 cannot hand to Python as text.
    guard = make_guard({"lockout": {"max_attempts": 1000}})
    server = start_stock_server(guard)
    ids: set = set()
    attempts = 0
    while attempts < 40 and (attempts < 10 or sum(i >= 0x80 for i in ids) < 3):
        result = eap_login(server, "PEAP", "carol", "wrong")
        assert not result.ok
        ids.update(result.mschapv2_ids)
        attempts += 1
    assert sum(i >= 0x80 for i in ids) >= 3, sorted(ids)
    assert wait_for(lambda: outcomes(guard, "carol") == [("failure", "")] * attempts, timeout=5), (
        outcomes(guard, "carol")
    )
    assert "UnicodeDecodeError" not in server.log_text()


def test_module_only_in_the_outer_site_never_refuses_another_user(guard, start_stock_server):
    # The first snippets' wiring: pam_guard in the outer site's authorize and post-auth, not
    # in the inner tunnel. EAP is left alone there (and the inner-tunnel wiring logged once);
    # the site's own PAP requests are still guarded.
    server = start_stock_server(guard, outer="bare", inner=None)
    for _ in range(4):
        assert not eap_login(server, "PEAP", "alice", "wrong").ok
    assert eap_login(server, "PEAP", "bob", server.password).ok
    assert eap_login(server, "TTLS", "carol", server.password).ok
    log = server.log_text()
    assert log.count("left to the inner tunnel") == 1
    assert "pam_guard_tunnel_facts" in log
    for _ in range(3):
        radclient.send(server, 'User-Name = "dave"\nUser-Password = "wrong"\n')
    reply = radclient.send(server, f'User-Name = "dave"\nUser-Password = "{server.password}"\n')
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", b"").decode().startswith(LOCK_MESSAGE)
    assert eap_login(server, "PEAP", "erin", server.password).ok
    assert wait_for(lambda: outcomes(guard, "dave")[-1:] == [("denied", "locked")])
    assert no_outer_identity(guard)


def _nas_start(server, login, session: str, station: str, nas: str):
    """The Accounting Start a NAS sends after an 802.1X login: it names the user as the
    Access-Accept did (RFC 2865 5.1)."""
    return server.acct(
        "Start",
        login.accept_user,
        session,
        NAS_IP_Address=nas,
        Calling_Station_Id=station.replace(":", "-"),
        NAS_Port_Type="Wireless-802.11",
    )


def test_accounting_start_after_an_eap_login_is_the_real_users_session(guard, start_stock_server):
    server = start_stock_server(guard)
    for method, user, session in (("TTLS", "alice", "s-1"), ("PEAP", "bob", "s-2")):
        login = eap_login(server, method, user, server.password, station=STATION, nas=NAS)
        assert login.ok and login.accept_user == user
        assert _nas_start(server, login, session, STATION, NAS).code == "Accounting-Response"
    rows = guard.query(
        "SELECT username, service, session_key, nas, ended FROM sessions ORDER BY id"
    )
    assert rows == [("alice", "wifi", "s-1", NAS, None), ("bob", "wifi", "s-2", NAS, None)]
    assert no_outer_identity(guard)


def test_concurrent_rule_across_two_stations(make_guard, start_stock_server):
    # Wi-Fi stations are MACs, so a login's address is its NAS's (SPEC §9): two stations
    # behind two access points are two places.
    guard = make_guard({"concurrent": {"enabled": True, "action": "deny"}})
    server = start_stock_server(guard)
    first = eap_login(
        server, "PEAP", "alice", server.password, station="02:00:00:00:00:0a", nas="192.0.2.1"
    )
    assert first.ok and first.accept_user == "alice"
    assert (
        _nas_start(server, first, "ap1-7", "02:00:00:00:00:0a", "192.0.2.1").code
        == "Accounting-Response"
    )
    for method in METHODS:
        assert not eap_login(
            server, method, "alice", server.password, station="02:00:00:00:00:0b", nas="192.0.2.2"
        ).ok
    assert wait_for(
        lambda: outcomes(guard, "alice")[-2:] == [("denied", "concurrent_login")] * 2
    ), outcomes(guard, "alice")
    assert eap_login(
        server, "PEAP", "bob", server.password, station="02:00:00:00:00:0b", nas="192.0.2.2"
    ).ok
    # The NAS's Stop (under the name the Accept gave) ends the first session.
    assert (
        server.acct("Stop", "alice", "ap1-7", NAS_IP_Address="192.0.2.1").code
        == "Accounting-Response"
    )
    assert eap_login(
        server, "TTLS", "alice", server.password, station="02:00:00:00:00:0b", nas="192.0.2.2"
    ).ok


def test_session_limit_counts_802_1x_sessions(make_guard, start_stock_server):
    guard = make_guard({"status": {"session_limits": {"wifi": 1}, "deny_over_limits": True}})
    server = start_stock_server(guard)
    first = eap_login(server, "TTLS", "alice", server.password, station=STATION, nas=NAS)
    assert first.ok
    assert _nas_start(server, first, "s-9", STATION, NAS).code == "Accounting-Response"
    assert wait_for(lambda: outcomes(guard, "alice") == [("success", "")])
    assert not eap_login(
        server, "PEAP", "alice", server.password, station="02:00:00:00:00:0c", nas=NAS
    ).ok
    assert wait_for(lambda: outcomes(guard, "alice")[-1:] == [("denied", "session_limit")])
    assert server.acct("Stop", "alice", "s-9", NAS_IP_Address=NAS).code == "Accounting-Response"
    assert eap_login(
        server, "PEAP", "alice", server.password, station="02:00:00:00:00:0c", nas=NAS
    ).ok
