"""Turns a policy Notice into the text queued in the outbox: recipients, title, body.

Plain text, short, readable on a phone. Runs on the login path, so it imports nothing heavy;
`pam-guard deliver` (pam_guard.deliver) wraps it in an email later.
"""

from __future__ import annotations

import time


def _when(value) -> str:
    if value is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(value)))


def _lock(f, settings):
    expires = (
        "until an admin unlocks it" if f["expires"] is None else f"until {_when(f['expires'])}"
    )
    return (
        f"pam-guard: account {f['user']} locked",
        f"Account {f['user']} was locked at {_when(f['time'])} after {f['failures']} failed "
        f"logins (last from {f['address']}, service {f['service']}).\n"
        f"It stays locked {expires}.\n"
        f"History: pam-guard history {f['user']} --failed\n"
        f"Unlock:  pam-guard unlock {f['user']}\n",
    )


def _ip_alert(f, settings):
    return (
        f"pam-guard: {f['failures']} failed logins from {f['address']}",
        f"Address {f['address']} failed {f['failures']} logins within {f['minutes']} min.\n"
        f"Accounts tried: {f['users']}\n"
        f"History: pam-guard history --ip {f['address']} --failed\n",
    )


def _trackstat(f, settings):
    return (
        f"pam-guard: possible password sharing by {f['user']}",
        f"User {f['user']}: {f['unique_addresses']} unique addresses in the last "
        f"{f['logins_used']} logins ({f['percent']}% > rating {f['rating']}%).\n"
        f"Addresses: {f['addresses']}\n"
        f"The login was {f['action']}.\n"
        f"Details: pam-guard trackstat {f['user']}\n",
    )


def _concurrent(f, settings):
    return (
        f"pam-guard: concurrent login by {f['user']}",
        f"User {f['user']} logged in from {f['address']} at {_when(f['time'])} while a login "
        f"from {f['other_address']} at {_when(f['other_time'])} was still open.\n"
        f"The new login was {f['action']}.\n"
        f"Sessions: pam-guard sessions {f['user']}\n",
    )


def _status(f, settings):
    return (
        f"pam-guard: {f['user']} is now {f['new']}",
        f"User {f['user']} changed status: {f['old']} -> {f['new']}.\nWhy: {f['why']}\n"
        f"Details: pam-guard status {f['user']}\n",
    )


def _user_login(f, settings):
    what = "failed login" if f["outcome"] == "failure" else "successful login"
    return (
        f"pam-guard: {what} to your account {f['user']}",
        f"A {what} to your account {f['user']} at {_when(f['time'])} from {f['address']} "
        f"(service {f['service']}).\nIf this was not you, tell your administrator.\n",
    )


_RENDER = {
    "lock": _lock,
    "ip_alert": _ip_alert,
    "trackstat": _trackstat,
    "concurrent": _concurrent,
    "status": _status,
    "user_failure": _user_login,
    "user_success": _user_login,
}


def recipients(notice, settings, user_addresses: str = "") -> str:
    """Who gets it: the user's own addresses for their login notices, else the admin."""
    if notice.kind.startswith("user_"):
        return user_addresses
    if notice.kind not in settings.notify.on:
        return ""
    if notice.kind == "trackstat" and settings.trackstat.email:
        return settings.trackstat.email
    return settings.notify.admin


def render(notice, settings) -> tuple[str, str]:
    """(title, body) of a notice."""
    return _RENDER[notice.kind](dict(notice.facts), settings)
