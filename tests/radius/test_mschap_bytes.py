"""PAP, CHAP and MS-CHAP over RADIUS on Debian's own raddb, with radclient: each success and
failure recorded once. A wrong MS-CHAPv2 password counts once whatever MS-CHAP identifier the
client picks: mschap's MS-CHAP-Error begins with that identifier; from 0x80 up it is not
UTF-8, and rlm_python3 3.2 then cannot call Python at all (PLATFORM.md), so the shipped
pam_guard_reject policy moves it aside for the call and puts it back."""

from __future__ import annotations

from tests.radius.helpers import LOCK_MESSAGE, outcomes, wait_for
from tests.support import radclient


def test_each_identifier_counts_once_and_the_error_reaches_the_client(guard, start_stock_server):
    server = start_stock_server(guard)
    for ident in range(256):
        reply = radclient.send(server, radclient.mschapv2_wrong(f"ms{ident:02x}", ident))
        assert reply.code == "Access-Reject", (ident, reply)
        error = reply.attrs.get("MS-CHAP-Error", b"")
        assert error[:1] == bytes([ident]) and error[1:].startswith(b"E=691 R=1 C="), error
    expected = sorted((f"ms{ident:02x}", "failure") for ident in range(256))
    rows = wait_for(
        lambda: (
            sorted(guard.query("SELECT username, outcome FROM events")) == expected and expected
        ),
        timeout=10,
    )
    got = sorted(guard.query("SELECT username, outcome FROM events"))
    assert rows, (sorted(set(expected) - set(got)), sorted(set(got) - set(expected)))
    assert "UnicodeDecodeError" not in server.log_text()


def test_three_wrong_high_identifiers_lock(guard, start_stock_server):
    server = start_stock_server(guard)
    for ident in (0x80, 0xF6, 0xFF):
        assert (
            radclient.send(server, radclient.mschapv2_wrong("mia", ident)).code == "Access-Reject"
        )
    reply = radclient.send(server, f'User-Name = "mia"\nUser-Password = "{server.password}"\n')
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", b"").decode().startswith(LOCK_MESSAGE), reply
    reply = radclient.send(server, f'User-Name = "other"\nUser-Password = "{server.password}"\n')
    assert reply.code == "Access-Accept", reply


def test_pap_chap_and_mschapv1_record_one_success_and_one_failure(guard, start_stock_server):
    server = start_stock_server(guard)
    methods = {"pap": "User-Password", "chap": "CHAP-Password", "mschap1": "MS-CHAP-Password"}
    for user, attribute in methods.items():
        for password, code in ((server.password, "Access-Accept"), ("wrong", "Access-Reject")):
            reply = radclient.send(server, f'User-Name = "{user}"\n{attribute} = "{password}"\n')
            assert reply.code == code, (user, password, reply)
    for user in methods:
        assert wait_for(
            lambda user=user: outcomes(guard, user) == [("success", ""), ("failure", "")]
        ), (user, outcomes(guard, user))
