"""FreeRADIUS's own client, radclient, against a test server: one request, its answer.

radclient reads attributes with FreeRADIUS's dictionaries (MS-CHAP and the rest, which the
pyrad dictionary of tests/support/radius.py does not have) and prints string values with
C escapes (`"\\366E=691 ..."`); `send` gives them back as bytes.
"""

from __future__ import annotations

import os
import re
import subprocess

from tests.support.radius import Reply

RADCLIENT = "/usr/bin/radclient"
_RECEIVED = re.compile(r"^Received (\S+) Id")
_ATTRIBUTE = re.compile(r"^\t(\S+) = (.*)$")
_ESCAPE = re.compile(rb"\\([0-7]{3}|.)", re.S)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t"}


def _unescape(text: str) -> bytes:
    """A value as radclient prints it: "..." with C escapes -> bytes; else its text."""
    if not (text.startswith('"') and text.endswith('"')):
        return text.encode()

    def one(match):
        code = match.group(1)
        if len(code) == 3:
            return bytes([int(code, 8)])
        return _SIMPLE.get(code, code)

    return _ESCAPE.sub(one, text[1:-1].encode("latin-1"))


def send(server, attributes: str, kind: str = "auth", timeout: float = 3.0) -> Reply:
    """Send one request (radclient's `Name = value` lines) to `server`; Reply.code is the
    received packet's name (None when nothing came back), attrs {name: bytes}."""
    port = server.auth_port if kind == "auth" else server.acct_port
    proc = subprocess.run(
        [RADCLIENT, "-x", "-r", "1", "-t", str(timeout), f"127.0.0.1:{port}", kind, server.secret],
        input=attributes.encode(),
        capture_output=True,
        timeout=30,
    )
    code, attrs = None, {}
    for line in proc.stdout.decode("latin-1").splitlines():
        received = _RECEIVED.match(line)
        if received:
            code = received.group(1)
            continue
        attribute = _ATTRIBUTE.match(line)
        if code and attribute:
            attrs[attribute.group(1)] = _unescape(attribute.group(2))
    return Reply(code, attrs)


def mschapv2_wrong(user: str, ident: int, extra: str = "") -> str:
    """An MS-CHAPv2 Access-Request whose response is wrong for any password, with MS-CHAP
    identifier `ident` (which mschap echoes as the first byte of MS-CHAP-Error)."""
    response = (bytes([ident, 0]) + os.urandom(16) + bytes(8) + os.urandom(24)).hex()
    return (
        f'User-Name = "{user}"\nMS-CHAP-Challenge = 0x{os.urandom(16).hex()}\n'
        f"MS-CHAP2-Response = 0x{response}\n{extra}"
    )
