"""The one shape of pam-guard's syslog lines about users and addresses, for fail2ban and SIEMs.

    event=refused rhost=203.0.113.7 reason=locked user=alice service=sshd channel=pam phase=preauth

- `event`, `rhost` (`-` for none) and `reason` first, always: a filter anchored there can
  never be fooled by what a user name holds. The rest follow in the order given.
- A value that is empty, or holds a space, a quote, a backslash or `=`, is written in double
  quotes with `\\` and `"` escaped; control characters are escaped as by policy.usernames.
- Events: `refused` (a login refused by a rule: reason is the comma-separated reason codes),
  `lock` (pam-guard locked an account), `unlock`, `admin_lock` (by an admin), `block`,
  `unblock` (address_block).

Cheap on the login path: the syslog C module and policy.usernames (already loaded there).
"""

from __future__ import annotations

import syslog

from policy.usernames import escape

SHOWN_MAX = 200  # characters of a user name or raw source in a line (they may come from anyone)

_QUOTE_IF = (" ", '"', "\\", "=")


def value(text) -> str:
    """One value as it appears after `key=`."""
    if text is None:
        return "-"
    text = str(text)
    if text and not any(c in text for c in _QUOTE_IF) and text.isprintable():
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if not escaped.isprintable():
        escaped = "".join(
            c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
            for c in escaped
        )
    return f'"{escaped}"'


def line(event: str, rhost, reason, **fields) -> str:
    """`event=EVENT rhost=ADDR reason=CODES key=value ...` (None values as `-`)."""
    parts = [f"event={event}", f"rhost={value(rhost)}", f"reason={value(reason)}"]
    parts += [f"{key}={value(text)}" for key, text in fields.items()]
    return " ".join(parts)


def send(priority: int, text: str) -> None:
    """One syslog line, facility authpriv, tag pam-guard (newlines flattened, at most 1000
    characters). Never raises: a log line must not break a login or undo an action."""
    try:
        syslog.openlog("pam-guard", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(priority, text.replace("\n", " ")[:1000])
        syslog.closelog()
    except Exception:  # noqa: BLE001
        pass


def shown(text) -> str:
    """A user name or raw source as a line shows it: escaped and bounded, `-` for none."""
    return escape(text)[:SHOWN_MAX] if text else "-"


def attempt_line(event: str, attempt, reason, **fields) -> str:
    """`line` for an Attempt, over PAM and RADIUS alike: rhost is its parsed address (`-`
    for none), the raw value following as rhost_raw when it is not one (a host name, a
    MAC)."""
    extra = {}
    if attempt.address_raw and attempt.address_raw != attempt.address:
        extra["rhost_raw"] = shown(attempt.address_raw)
    return line(
        event,
        attempt.address,
        reason,
        user=shown(attempt.user),
        service=attempt.service,
        channel=attempt.channel,
        **extra,
        **fields,
    )


def announce(event: str, attempt, reason, **fields) -> str:
    """Send `attempt_line` to syslog (authpriv, notice) and return it, for a log of the
    caller's own too (radiusd's)."""
    text = attempt_line(event, attempt, reason, **fields)
    send(syslog.LOG_NOTICE, text)
    return text
