"""eapol_test (Debian package eapoltest): an 802.1X supplicant and its NAS in one, for EAP
logins against a test server.

`eap_login(server, "PEAP", "alice", password)` runs one login with an anonymous outer
identity, as a station (Calling-Station-Id, a MAC) behind a NAS (NAS-IP-Address) on a
Wi-Fi port, and returns whether it succeeded, the User-Name of the Access-Accept (what the
NAS would put in its accounting) and the MS-CHAPv2 identifiers the server picked (PEAP).
The server's certificate is not checked: the test server uses Debian's snakeoil one.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections import namedtuple

EAPOL_TEST = "/usr/bin/eapol_test"
PHASE2 = {"PEAP": "auth=MSCHAPV2", "TTLS": "auth=PAP"}
WIRELESS = 19  # NAS-Port-Type Wireless-802.11
ANONYMOUS = "anonymous"

EapResult = namedtuple("EapResult", "ok accept_user mschapv2_ids output")
EapResult.__doc__ = "One login: success, the Access-Accept's User-Name, MS-CHAPv2 ids, log."

_ACCEPT = re.compile(r"RADIUS message: code=2 \(Access-Accept\)")
_USER_NAME = re.compile(r"Attribute 1 \(User-Name\) length=\d+\n\s+Value: '([^']*)'")
_MSCHAPV2_ID = re.compile(r"EAP-MSCHAPV2: RX identifier \d+ mschapv2_id (\d+)")


def _network(method: str, user: str, password: str | bytes, outer: str) -> str:
    # bytes (a Latin-1 password): wpa_supplicant reads an unquoted password as hex
    secret = password.hex() if isinstance(password, bytes) else f'"{password}"'
    return (
        f'network={{\n\tkey_mgmt=WPA-EAP\n\teap={method}\n\tidentity="{user}"\n'
        f'\tanonymous_identity="{outer}"\n\tpassword={secret}\n'
        f'\tphase2="{PHASE2[method]}"\n}}\n'
    )


def eap_login(
    server,
    method: str,
    user: str,
    password: str | bytes,
    *,
    station: str = "02:00:00:00:00:01",
    nas: str = "192.0.2.1",
    outer: str = ANONYMOUS,
    timeout: int = 15,
) -> EapResult:
    """One EAP-TTLS/PAP or PEAP/MSCHAPv2 login through `server` (RadiusServer)."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="eapol-") as conf:
        conf.write(_network(method, user, password, outer))
        conf.flush()
        nas_hex = bytes(int(part) for part in nas.split(".")).hex()
        proc = subprocess.run(
            [
                EAPOL_TEST,
                "-c",
                conf.name,
                "-a",
                "127.0.0.1",
                "-p",
                str(server.auth_port),
                "-s",
                server.secret,
                "-t",
                str(timeout),
                "-r",
                "0",
                "-M",
                station,
                "-N",
                f"4:x:{nas_hex}",
                "-N",
                f"61:d:{WIRELESS}",
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout + 15,
        )
    output = proc.stdout + proc.stderr
    accept_user = None
    accept = list(_ACCEPT.finditer(output))
    if accept:
        found = _USER_NAME.findall(output[accept[-1].start() :])
        accept_user = found[0] if found else None
    ids = [int(value) for value in _MSCHAPV2_ID.findall(output)]
    return EapResult(proc.returncode == 0 and "SUCCESS" in output, accept_user, ids, output)


def have_eapol_test() -> bool:
    return os.access(EAPOL_TEST, os.X_OK)
