"""Turns a policy Notice into the text queued in the outbox: recipients, title, body.

Plain text, short lines, readable on a phone: what happened first, then the facts, then the
command that answers the next question. Runs on the login path (inside the event's
transaction), so it imports nothing heavy (no `email`, no `logging`); `pam-guard deliver`
(pam_guard.deliver) wraps the text in an email later.
"""

from __future__ import annotations

import time

from store import statements as sql

_MAX_LISTED = 20  # names or addresses listed in one notice; the rest are counted


def _when(value) -> str:
    if value is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(value)))


def _listed(items) -> str:
    """'a, b, c' with at most _MAX_LISTED items shown (an attack may name thousands)."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f" and {len(items) - _MAX_LISTED} more"
    return shown or "-"


def failure_sources(conn, user: str, now: float, failures: int) -> str:
    """'203.0.113.5 (2x), local (1x)': where the user's last `failures` failures came from.

    These are the failures that caused the lock (the lockout count is consecutive), read
    newest first through the (username, outcome, ts) index.
    """
    rows = conn.all(sql.LAST_FAILURE_SOURCES, {"user": user, "now": now, "limit": max(1, failures)})
    counts: dict[str, int] = {}
    for address, raw in rows:
        source = address or raw or "local"
        counts[source] = counts.get(source, 0) + 1
    return _listed(f"{source} ({n}x)" for source, n in counts.items())


def _stays(f) -> str:
    if f["expires"] is None:
        return "Locked until an admin unlocks it."
    minutes = max(1, round((float(f["expires"]) - float(f["time"])) / 60))
    return f"Unlocks by itself at {_when(f['expires'])} (in {minutes} min)."


def _lock(f, settings):
    user = f["user"]
    stays = _stays(f)
    sources = f.get("sources") or f"{f['address']} ({f['failures']}x)"
    if f.get("scope") == "unfamiliar sources":
        title = f"pam-guard: {user} locked for unfamiliar sources"
        what = (
            f"Logins of {user} from sources unfamiliar to them are refused after "
            f"{f['failures']} failed logins from such sources; familiar places still get in."
        )
    else:
        title = f"pam-guard: account {user} locked"
        what = f"Account {user} was locked after {f['failures']} failed logins."
    return (
        title,
        f"{what}\n"
        f"When: {_when(f['time'])}\n"
        f"From: {sources}\n"
        f"Last try: {f['address']}, service {f['service'] or '-'}\n"
        f"{stays}\n"
        f"\n"
        f"Unlock: pam-guard unlock {user}\n"
        f"See:    pam-guard history {user} --failed\n",
    )


def _ip_alert(f, settings):
    address = f["address"]
    users = [u for u in f["users"].split(", ") if u]
    blocked = ""
    title = f"pam-guard: {f['failures']} failed logins from {address}"
    if "blocked_until" in f:
        until = f["blocked_until"]
        blocked = (
            f"Blocked for every user until {_when(until)}.\n"
            if until is not None
            else "Blocked for every user until an admin unblocks it.\n"
        )
        blocked += f"Unblock: pam-guard unblock {address}\n"
        title = f"pam-guard: {address} blocked after {f['failures']} failed logins"
    return (
        title,
        f"Address {address} failed {f['failures']} logins within {f['minutes']} min"
        f" on {len(users)} account(s).\n"
        f"Accounts tried: {_listed(users)}\n"
        f"{blocked}"
        f"\n"
        f"See: pam-guard history --ip {address} --failed\n",
    )


def _trackstat(f, settings):
    user = f["user"]
    return (
        f"pam-guard: possible password sharing by {user}",
        f"User {user} may be sharing a password: the login was {f['action']}.\n"
        f"Logins used: {f['logins_used']}\n"
        f"Unique addresses: {f['unique_addresses']}\n"
        f"Trackstat figure: {f['percent']}% (rating {f['rating']}% allowed)\n"
        f"Addresses: {_listed(a for a in f['addresses'].split(', ') if a)}\n"
        f"\n"
        f"See: pam-guard trackstat {user}\n",
    )


def _concurrent(f, settings):
    user = f["user"]
    return (
        f"pam-guard: concurrent login by {user}",
        f"User {user} logged in from two addresses at once; the new login was {f['action']}.\n"
        f"New login:  {f['address']} at {_when(f['time'])}\n"
        f"Still open: {f['other_address']} since {_when(f['other_time'])}\n"
        f"\n"
        f"See: pam-guard sessions {user}\n",
    )


def _status(f, settings):
    user = f["user"]
    return (
        f"pam-guard: {user} is now {f['new']}",
        f"User {user} changed status: {f['old']} → {f['new']}\n"
        f"Why: {f['why']}\n"
        f"\n"
        f"See: pam-guard status {user}\n",
    )


def _user_login(f, settings):
    what = "Failed login" if f["outcome"] == "failure" else "Successful login"
    return (
        f"pam-guard: {what.lower()} to your account {f['user']}",
        f"{what} to your account {f['user']}.\n"
        f"When: {_when(f['time'])}\n"
        f"From: {f['address']}\n"
        f"Service: {f['service'] or '-'}\n"
        f"\n"
        f"If this was not you, tell your administrator.\n",
    )


def _user_lock(f, settings):
    if f.get("scope") == "unfamiliar sources":
        what = f"logins to your account {f['user']} from unfamiliar places were locked"
    else:
        what = f"your account {f['user']} was locked"
    return (
        f"pam-guard: {what}",
        f"{what[0].upper()}{what[1:]} after failed logins.\n"
        f"When: {_when(f['time'])}\n"
        f"From: {f.get('sources') or f['address']}\n"
        f"{_stays(f)}\n"
        f"\n"
        f"If these were not you, tell your administrator; if they were, wait or ask for an "
        f"unlock.\n",
    )


_RENDER = {
    "lock": _lock,
    "ip_alert": _ip_alert,
    "trackstat": _trackstat,
    "concurrent": _concurrent,
    "status": _status,
    "user_failure": _user_login,
    "user_success": _user_login,
    "user_lock": _user_lock,
}
KINDS = tuple(_RENDER)  # every kind of notice that is ever queued


def recipients(notice, settings, user_addresses: str = "") -> str:
    """Who gets it: the user's own addresses for their login notices, else the admin.

    An admin notice whose kind is not in `notify.on` goes to nobody (""), and is not queued.
    """
    if notice.kind.startswith("user_"):
        return user_addresses
    if notice.kind not in settings.notify.on:
        return ""
    if notice.kind == "trackstat" and settings.trackstat.email:
        return settings.trackstat.email
    return settings.notify.admin


def render(notice, settings, conn=None) -> tuple[str, str]:
    """(title, body) of a notice; with `conn` (the event's transaction) a lock notice also
    lists every address its failures came from."""
    facts = dict(notice.facts)
    if notice.kind in ("lock", "user_lock") and conn is not None:
        failures = facts.get("failures", 3)
        facts["sources"] = failure_sources(conn, facts["user"], facts["time"], failures)
    return _RENDER[notice.kind](facts, settings)
