"""User statuses of SPEC §5 (pure)."""

from policy import decide
from policy.settings import build_settings
from policy.sources import pam_source
from policy.types import DIR_LOCKED, Attempt, History, Session

NOW = 10_000_000.0
DAY = 86400.0


def attempt(address="198.51.100.7", at=NOW):
    return Attempt(
        "alice", "pam", "sshd", address, address, None, None, at, None, pam_source(address)
    )


def status(history, settings=None, **kw):
    return decide.compute_status(history, settings or build_settings({}), **kw)[0]


def test_high_risk_after_more_than_denied_limit_denials():
    assert (
        status(History(denied_recent=5, last_activity=NOW - 60), attempt=attempt(), denied=True)
        == "high_risk"
    )
    assert (
        status(History(denied_recent=5, last_activity=NOW - 60), attempt=attempt()) == "protected"
    )


def test_high_risk_inside_and_outside_at_once():
    s = build_settings({"status": {"inside_outside": True}})
    h = History(last_activity=NOW - 60, open_sessions=(Session("vpn", "10.1.2.3", NOW, NOW),))
    assert status(h, s, attempt=attempt("198.51.100.7")) == "high_risk"
    assert status(h, s, attempt=attempt("10.9.9.9")) == "protected"
    assert status(h, build_settings({}), attempt=attempt("198.51.100.7")) == "protected"


def test_risk_over_session_limits_and_directory_lock():
    s = build_settings({"status": {"session_limits": {"sshd": 1}}})
    h = History(last_activity=NOW - 60, open_sessions=(Session("sshd", "10.0.0.1", NOW, NOW),))
    assert status(h, s, attempt=attempt()) == "risk"
    ca = build_settings({"custom_authentication": {"enabled": True}})
    assert (
        status(History(last_activity=NOW - 60, directory=DIR_LOCKED), ca, attempt=attempt())
        == "risk"
    )


def test_new_without_history_or_after_a_long_gap():
    assert status(History(), attempt=attempt()) == "new"
    assert status(History(last_activity=NOW - 16 * DAY), attempt=attempt()) == "new"
    assert status(History(last_activity=NOW - 14 * DAY), attempt=attempt()) == "protected"
    assert status(History(), now=NOW) == "new"


def test_inactive_without_sessions_and_logins():
    assert status(History(last_activity=NOW - 16 * DAY), now=NOW) == "inactive"
    busy = History(last_activity=NOW - 16 * DAY, open_sessions=(Session("sshd", None, NOW, NOW),))
    assert status(busy, now=NOW) == "protected"


def test_unprotected_when_no_rule_applies():
    off = build_settings({"lockout": {"enabled": False}})
    assert status(History(last_activity=NOW - 60), off, attempt=attempt()) == "unprotected"
    track = build_settings({"lockout": {"enabled": False}, "trackstat": {"enabled": True}})
    assert status(History(last_activity=NOW - 60), track, attempt=attempt()) == "protected"
    assert (
        status(History(last_activity=NOW - 60, exempt=True), track, attempt=attempt())
        == "unprotected"
    )


def test_risk_status_holds_until_the_next_connection():
    h = History(last_activity=NOW - 60, status="high_risk")
    assert status(h, now=NOW) == "high_risk"
    assert status(h, attempt=attempt()) == "protected"


def test_status_change_notices_only_for_risk_changes():
    assert decide.status_notices("a", "protected", "high_risk", "x")[0].kind == "status"
    assert decide.status_notices("a", "high_risk", "protected", "x")
    assert decide.status_notices("a", "new", "protected", "x") == []
    assert decide.status_notices("a", None, "new", "x") == []
    assert decide.status_notices("a", "risk", "risk", "x") == []
