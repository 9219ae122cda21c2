"""Small builders for the core's unit tests: settings from TOML-like overrides, attempts, history.

Times are plain numbers around NOW so a test reads as "two minutes ago" rather than epochs.
"""

from __future__ import annotations

from policy.settings import build_settings
from policy.sources import pam_source
from policy.types import PAM, Attempt, History, Login, Session

NOW = 1_800_000_000.0
MINUTE = 60.0
DAY = 86400.0


def settings(**sections):
    """Seed defaults with some sections overridden: settings(trackstat={"enabled": True})."""
    return build_settings(sections, "<test>")


def attempt(user="alice", address="203.0.113.5", service="sshd", time=NOW, channel=PAM):
    source = pam_source(address) if channel == "pam" else address
    return Attempt(user, channel, service, address, address, None, None, time, None, source)


def history(**fields):
    """History of a user seen before (last activity an hour ago) unless fields say otherwise."""
    fields.setdefault("known", True)
    fields.setdefault("last_activity", NOW - 60 * MINUTE)
    return History(**fields)


def login(minutes_ago, address):
    return Login(NOW - minutes_ago * MINUTE, address)


def session(service="sshd", address="203.0.113.5", minutes_ago=5):
    start = NOW - minutes_ago * MINUTE
    return Session(service, address, start, start)
