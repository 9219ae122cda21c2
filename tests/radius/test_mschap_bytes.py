"""MS-CHAPv2 over RADIUS on Debian's own raddb: a wrong password counts once whatever MS-CHAP
identifier the client picks. mschap's MS-CHAP-Error begins with that identifier; from 0x80 up
it is not UTF-8, and rlm_python3 3.2 then cannot call Python at all (PLATFORM.md), so the
shipped pam_guard_reject policy moves it aside for the call and puts it back."""

from __future__ import annotations

from tests.radius.helpers import LOCK_MESSAGE, wait_for
from tests.support import radclient


def test_each_identifier_counts_once_and_the_error_reaches_the_client(guard,
                                                                       start_stock_server):
    server = start_stock_server(guard)
    for ident in range(256):
        reply = radclient.send(server, radclient.mschapv2_wrong(f"ms{ident:02x}", ident))
        assert reply.code == "Access-Reject", (ident, reply)
        error = reply.attrs.get("MS-CHAP-Error", b"")
        assert error[:1] == bytes([ident]) and error[1:].startswith(b"E=691 R=1 C="), error
    expected = sorted((f"ms{ident:02x}", "failure") for ident in range(256))
    rows = wait_for(lambda: sorted(guard.query("SELECT username, outcome FROM events"))
                    == expected and expected, timeout=10)
    assert rows, sorted(guard.query("SELECT username, outcome FROM events"))
    assert "UnicodeDecodeError" not in server.log_text()


def test_three_wrong_high_identifiers_lock(guard, start_stock_server):
    server = start_stock_server(guard)
    for ident in (0x80, 0xF6, 0xFF):
        assert radclient.send(server, radclient.mschapv2_wrong("mia", ident)).code \
            == "Access-Reject"
    reply = radclient.send(server, f'User-Name = "mia"\nUser-Password = "{server.password}"\n')
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", b"").decode().startswith(LOCK_MESSAGE), reply
    reply = radclient.send(server, f'User-Name = "other"\nUser-Password = "{server.password}"\n')
    assert reply.code == "Access-Accept", reply
