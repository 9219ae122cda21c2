"""Debian's own FreeRADIUS configuration, copied to a temporary directory, with pam-guard
wired in: the 802.1X tests' server.

`start_stock_radius(guard, outer=..., inner=...)` copies /etc/freeradius/3.0 (its eap module
with the snakeoil certificate Debian points it at, mschap, the `default` and `inner-tunnel`
sites) and changes only what a test needs: log and run directories in the copy, root instead
of freerad, `reject_delay = 0`, one client (127.0.0.1, a fresh secret), the users file, and
listen sections on 127.0.0.1 ports it picks (the inner tunnel's own 127.0.0.1:18120 listener
is dropped: tests run side by side). pam-guard's lines go into the sites as `outer` and
`inner` say: a wiring name from `WIRINGS` ("shipped": packaging/freeradius/sites/*, as an
admin pastes them; "bare": a plain `pam_guard` line in each section, as the first snippets
had it; None: not in that site).

The server is tests.support.radius.RadiusServer: `auth`/`acct` with pyrad, `stop()`.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile

from tests.support import radius as support

STOCK_RADDB = "/etc/freeradius/3.0"

# Each wiring: {site section: lines inserted there}. "post-auth" lines go before the site's
# `Post-Auth-Type REJECT {`, "reject" lines just inside it.
BARE = {
    "authorize": "pam_guard",
    "post-auth": "pam_guard",
    "reject": "update control {\n&Post-Auth-Type := Reject\n}\npam_guard",
    "accounting": "pam_guard",
}


def shipped_wiring(site: str) -> dict:
    """The shipped snippets for `site` ("default" or "inner-tunnel") as {section: lines}."""
    names = {
        "default": ("authorize", "post-auth", "accounting"),
        "inner-tunnel": ("inner-tunnel-authorize", "inner-tunnel-post-auth"),
    }[site]
    wiring: dict = {}
    for name in names:
        body = support.snippet_body(name)
        section = name.removeprefix("inner-tunnel-")
        if section == "post-auth":
            start, end = _block(body, "Post-Auth-Type REJECT")
            wiring["reject"] = body[body.index("{", start) + 1 : end - 1]
            body = body[:start] + body[end:]
        wiring[section] = body
    return wiring


def _block(text: str, opening: str, start: int = 0) -> tuple[int, int]:
    """(start, end) of the block `opening {...}` (braces matched) found from `start`."""
    begin = text.index(opening, start)
    depth = 0
    for i in range(text.index("{", begin), len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return begin, i + 1
    raise ValueError(f"unbalanced block {opening!r}")


def _drop_listeners(text: str) -> str:
    while re.search(r"(?m)^listen \{", text):
        start, end = _block(text, "\nlisten {")
        text = text[:start] + text[end:]
    return text


def _insert(text: str, section: str, lines: str, before: str | None = None) -> str:
    """`lines` put in the site's top-level `section {`: before the first `before` found in
    it, else at its start."""
    start, end = _block(text, f"\n{section} {{")
    at = text.index("{", start) + 1
    if before is not None:
        found = text.find(before, at, end)
        if found < 0:
            raise ValueError(f"no {before!r} in {section}")
        at = text.rindex("\n", 0, found)
    return text[:at] + "\n" + lines + "\n" + text[at:]


def _wire(text: str, wiring: dict | None, eap_line: str) -> str:
    if not wiring:
        return text
    text = _insert(text, "authorize", wiring["authorize"], before=eap_line)
    text = _insert(text, "post-auth", wiring["post-auth"], before="Post-Auth-Type REJECT {")
    start, _end = _block(text, "Post-Auth-Type REJECT {")
    at = text.index("{", start) + 1
    text = text[:at] + "\n" + wiring["reject"] + "\n" + text[at:]
    if "accounting" in wiring and "\naccounting {" in text:  # the inner tunnel has none
        text = _insert(text, "accounting", wiring["accounting"])
    return text


def _edit(path: str, change) -> None:
    with open(path) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(change(text))


def _radiusd_conf(text: str, root: str) -> str:
    text = re.sub(r"(?m)^logdir = .*$", f"logdir = {root}/log", text)
    text = re.sub(r"(?m)^raddbdir = .*$", f"raddbdir = {root}", text)
    text = re.sub(r"(?m)^run_dir = .*$", f"run_dir = {root}/run", text)
    text = re.sub(r"(?m)^(\s*)(user|group) = freerad$", r"\1# \2 = freerad", text)
    return re.sub(r"(?m)^(\s*)reject_delay = \d+$", r"\1reject_delay = 0", text)


def _listeners(auth_port: int, acct_port: int) -> str:
    return (
        f"listen {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {auth_port}\n}}\n"
        f"listen {{\n\ttype = acct\n\tipaddr = 127.0.0.1\n\tport = {acct_port}\n}}\n"
    )


def resolve(wiring, site: str):
    """A wiring argument (name or dict or None) as {section: lines} or None."""
    if wiring is None or isinstance(wiring, dict):
        return wiring
    return {"shipped": lambda: shipped_wiring(site), "bare": lambda: dict(BARE)}[wiring]()


def missing() -> str | None:
    """Why these servers cannot run here, or None when they can."""
    from tests.support.eapol import EAPOL_TEST
    from tests.support.radclient import RADCLIENT

    needs = {
        os.path.join(STOCK_RADDB, "mods-available", "eap"): "freeradius-config",
        RADCLIENT: "freeradius-utils",
        EAPOL_TEST: "eapoltest",
        "/etc/ssl/private/ssl-cert-snakeoil.key": "ssl-cert",
    }
    for path, package in needs.items():
        if not os.path.exists(path):
            return f"{path} missing: apt-get install {package}"
    return None


def start_stock_radius(
    guard,
    *,
    outer="shipped",
    inner="shipped",
    users: dict | None = None,
    password: str = support.DEFAULT_PASSWORD,
    attempts: int = 3,
) -> support.RadiusServer:
    """Copy Debian's raddb, wire pam-guard in as asked, start it on loopback ports."""
    root = tempfile.mkdtemp(prefix="pam-guard-stock-radius-")
    os.chmod(root, 0o700)
    shutil.copytree(STOCK_RADDB, root, symlinks=True, dirs_exist_ok=True)
    for sub in ("log", "run", "python"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    python_dir = os.path.join(root, "python")
    support.render_loader(python_dir)
    with open(os.path.join(root, "mods-enabled", "pam_guard"), "w") as handle:
        handle.write(support.render_module(guard.path, python_dir))
    with open(os.path.join(root, "policy.d", "pam_guard"), "w") as handle:
        handle.write(support.policy_text())
    # a password may be bytes (a Latin-1 one): the users file takes them as they are
    lines = [
        b'"%s" Cleartext-Password := "%s"'
        % (name.encode(), pw if isinstance(pw, bytes) else pw.encode())
        for name, pw in (users or {}).items()
    ]
    lines.append(f'DEFAULT Cleartext-Password := "{password}"'.encode())
    users_file = os.path.realpath(os.path.join(root, "users"))
    with open(users_file, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    with open(os.path.join(root, "pyrad.dictionary"), "w") as handle:
        handle.write(support.PYRAD_DICTIONARY)
    secret = secrets.token_hex(12)
    with open(os.path.join(root, "clients.conf"), "w") as handle:
        handle.write(
            f"client loopback {{\n\tipaddr = 127.0.0.1\n\tsecret = {secret}\n"
            "\trequire_message_authenticator = no\n}\n"
        )
    _edit(os.path.join(root, "radiusd.conf"), lambda text: _radiusd_conf(text, root))
    sites = os.path.join(root, "sites-available")
    # Comments go first: braces in them would upset the matching of sections.
    _edit(
        os.path.join(sites, "inner-tunnel"),
        lambda text: _wire(
            _drop_listeners(support.strip_comments(text)), resolve(inner, "inner-tunnel"), "\teap {"
        ),
    )
    with open(os.path.join(sites, "default")) as handle:
        default = _wire(
            _drop_listeners(support.strip_comments(handle.read())),
            resolve(outer, "default"),
            "\teap {",
        )
    last_error = None
    for _ in range(attempts):  # another process may take a port between probe and bind
        auth_port, acct_port = support.free_udp_port(), support.free_udp_port()
        with open(os.path.join(sites, "default"), "w") as handle:
            handle.write(
                default.replace(
                    "server default {", "server default {\n" + _listeners(auth_port, acct_port), 1
                )
            )
        server = support.RadiusServer(root, auth_port, acct_port, secret, password)
        try:
            server.start(env=guard.env)
            atexit.register(server.stop)
            return server
        except RuntimeError as exc:
            last_error = exc
            support.terminate(server.proc)
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"freeradius would not start: {last_error}")
