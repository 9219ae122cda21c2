"""Text attributes that are not UTF-8 (SPEC §9, §12): rlm_python3 3.2.1 fails a call before
Python runs when any value of the request, reply or control list is not UTF-8, and cuts text
at a NUL (PLATFORM.md). The shipped `pam_guard` policy moves the user's own bytes and the
admin's local text aside for the call; these tests send them through a real radiusd with
radclient (which writes "\\344" as the byte 0xE4) and check that each outcome is recorded
once and that every byte goes back to FreeRADIUS as it came."""

from __future__ import annotations

from tests.radius.helpers import LOCK_MESSAGE, outcomes, wait_for
from tests.support import radclient

LATIN1_PASSWORD = b"p\xe4ss"  # "päss" as a Latin-1 NAS or users file writes it
LATIN1_GREETING = b"Gr\xfc\xdfe"  # "Grüße"


def _request(name: str, password: str) -> str:
    """radclient lines; name and password may hold C escapes (\\344). The test server's
    client requires a Message-Authenticator (radclient fills it in)."""
    return f'User-Name = "{name}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'


def test_name_not_utf8_is_refused_and_recorded_escaped(guard, server):
    reply = radclient.send(server, _request("w\\377x", server.password))
    assert reply.code == "Access-Reject"
    assert wait_for(lambda: guard.query("SELECT username, reasons FROM events")) == [
        ("w\\xffx", "invalid_user")
    ]
    assert "UnicodeDecodeError" not in server.log_text()


def test_name_with_a_nul_is_refused_whole_not_as_its_start(guard, server):
    # Before the policy, rlm_python3 handed Python "bob" and pam-guard counted bob's failure.
    reply = radclient.send(server, _request("bob\\000admin", server.password))
    assert reply.code == "Access-Reject"
    assert wait_for(lambda: guard.query("SELECT username, reasons FROM events")) == [
        ("bob\\x00admin", "invalid_user")
    ]
    assert radclient.send(server, _request("bob", server.password)).code == "Access-Accept"


def test_printable_names_take_the_plain_path(guard, server):
    # The control: a name and password of printable ASCII reach Python as text.
    assert radclient.send(server, _request("plain", server.password)).code == "Access-Accept"
    assert wait_for(lambda: outcomes(guard, "plain") == [("success", "")])


def test_latin1_password_lets_in_and_wrong_ones_lock(guard, start_server):
    server = start_server(
        guard, users_text=b'"lena" Cleartext-Password := "' + LATIN1_PASSWORD + b'"\n'
    )
    assert radclient.send(server, _request("lena", "p\\344ss")).code == "Access-Accept"
    assert wait_for(lambda: outcomes(guard, "lena") == [("success", "")])
    for wrong in ("p\\344s", "w\\344rong", "\\377\\376"):
        assert radclient.send(server, _request("lena", wrong)).code == "Access-Reject"
    assert wait_for(lambda: [o for o, _ in outcomes(guard, "lena")].count("failure") == 3)
    reply = radclient.send(server, _request("lena", "p\\344ss"))
    assert reply.code == "Access-Reject"
    assert reply.attrs.get("Reply-Message", b"").decode().startswith(LOCK_MESSAGE), reply
    assert "UnicodeDecodeError" not in server.log_text()


def test_admin_latin1_reply_message_reaches_the_client_and_failures_count(guard, start_server):
    users = b'"rita" Cleartext-Password := "right"\n\tReply-Message := "' + LATIN1_GREETING + b'"\n'
    server = start_server(guard, users_text=users)
    reply = radclient.send(server, _request("rita", "right"))
    assert reply.code == "Access-Accept", reply
    assert reply.attrs.get("Reply-Message") == LATIN1_GREETING
    for _ in range(3):
        assert radclient.send(server, _request("rita", "wrong")).code == "Access-Reject"
    assert wait_for(lambda: outcomes(guard, "rita") == [("success", "")] + [("failure", "")] * 3), (
        outcomes(guard, "rita")
    )
    assert radclient.send(server, _request("rita", "right")).code == "Access-Reject"


def test_accounting_with_a_name_not_utf8_changes_nothing_and_is_answered(guard, server):
    record = 'User-Name = "w\\377x"\nAcct-Status-Type = Start\nAcct-Session-Id = "s1"\n'
    reply = radclient.send(server, record, kind="acct")
    assert reply.code == "Accounting-Response"
    assert guard.query("SELECT count(*) FROM sessions") == [(0,)]
    assert "without a usable User-Name" in server.log_text()
