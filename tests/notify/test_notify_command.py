"""`pam-guard notify`: on, off, show; bad addresses and bad options refused (exit 2) without
changing anything; every change written to the audit log."""

from __future__ import annotations

import json
import sqlite3

import pytest


def _query(site, statement, params=()):
    with sqlite3.connect(site.url.split(":///", 1)[1]) as conn:
        return conn.execute(statement, params).fetchall()


def _account(site, user):
    rows = _query(site, "SELECT notify_on, notify_to FROM accounts WHERE username = ?", (user,))
    return rows[0] if rows else None


def _audit(site):
    return _query(site, "SELECT action, target, detail FROM audit ORDER BY seq")


def test_on_show_off(make_site):
    site = make_site()
    done = site.cli(
        "notify", "nina", "--on", "success,failure", "--to", "nina@example.org, n@x.example"
    )
    assert done.returncode == 0, done.stderr
    assert "failure and success logins are mailed to nina@example.org, n@x.example" in done.stdout
    assert _account(site, "nina") == ("failure,success", "nina@example.org,n@x.example")

    done = site.cli("--json", "notify", "nina")
    assert json.loads(done.stdout) == {
        "user": "nina",
        "on": ["failure", "success"],
        "to": ["nina@example.org", "n@x.example"],
    }

    done = site.cli("notify", "nina", "--on", "failure", "--to", "nina@example.org")
    assert done.returncode == 0 and _account(site, "nina") == ("failure", "nina@example.org")

    done = site.cli("notify", "nina", "--off")
    assert done.returncode == 0 and "no login notices" in done.stdout
    assert _account(site, "nina") == ("", "")

    audit = _audit(site)
    assert [(action, target) for action, target, _ in audit] == [
        ("notify", "nina"),
        ("notify", "nina"),
        ("notify-off", "nina"),
    ]
    assert audit[0][2] == "on=failure,success to=nina@example.org,n@x.example"
    done = site.cli("audit", "verify")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "bad",
    [
        "nina",  # no domain
        "nina@",  # empty domain
        "@example.org",  # empty local part
        "nina@exa mple.org",  # space
        "Nina <nina@example.org>",  # display names are not taken
        "nina@example.org\r\nBcc: x@evil.example",  # header injection
        "nina@-bad-.example",  # label starting with a hyphen
        "nina@example.org,",  # (a trailing comma is only a separator)
    ],
)
def test_bad_addresses_are_refused(make_site, bad):
    site = make_site()
    assert site.cli("notify", "nina", "--on", "failure", "--to", "old@example.org").returncode == 0
    done = site.cli("notify", "nina", "--on", "success", "--to", bad)
    if bad == "nina@example.org,":
        assert done.returncode == 0  # a trailing comma is only a separator
        return
    assert done.returncode == 2, done
    assert "is not an email address" in done.stderr
    assert _account(site, "nina") == ("failure", "old@example.org")  # nothing changed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--on", "failures", "--to", "a@example.org"], "use failure, success"),
        (["--on", "", "--to", "a@example.org"], "use failure, success"),
        (["--on", "failure"], "--on needs --to"),
        (["--to", "a@example.org"], "--to needs --on"),
        (["--off", "--on", "failure"], "cannot be combined"),
        (["--on", "failure", "--to", ","], "at least one email address"),
    ],
)
def test_bad_options_are_refused(make_site, args, message):
    site = make_site()
    done = site.cli("notify", "nina", *args)
    assert done.returncode == 2 and message in done.stderr
    assert _account(site, "nina") is None


def test_unknown_user_and_bad_name(make_site):
    site = make_site()
    done = site.cli("notify", "nobody")
    assert done.returncode == 1 and "unknown user" in done.stderr
    done = site.cli("notify", "bad\x01name", "--off")
    assert done.returncode == 2 and "invalid user name" in done.stderr
