"""Each notice kind, produced by driving the real Gate and delivered by the installed
`pam-guard deliver` to a real SMTP server: right recipients, right content; and the same
situation one step short of the rule, which sends nothing."""

from __future__ import annotations

import os

from tests.notify.conftest import ADMIN, SENDER, body, by_kind

QUIET = {"ip_alert_attempts": 1000}  # keeps address alerts out of tests about other kinds


def _keep(kind: str, received) -> None:
    """Save the message as received when $PAM_GUARD_NOTICE_SAMPLES names a directory."""
    where = os.environ.get("PAM_GUARD_NOTICE_SAMPLES")
    if where:
        with open(os.path.join(where, f"{kind}.eml"), "wb") as handle:
            handle.write(received.raw)


def _deliver_ok(site, expect_sent: int):
    done = site.deliver()
    assert done.returncode == 0, done.stderr
    assert f"sent {expect_sent}," in done.stdout, done.stdout
    return done


def test_lock_notice(make_site, smtp):
    site = make_site(lockout=QUIET)
    site.fail("alice", "203.0.113.5")
    site.fail("alice", "203.0.113.5")
    _deliver_ok(site, 0)  # two failures: no lock yet, nothing to tell
    assert smtp.messages == []

    verdict = site.fail("alice", "198.51.100.7", service="login")
    assert verdict.lock is not None
    _deliver_ok(site, 1)
    [mail] = by_kind(smtp.wait_for(1), "lock")
    assert mail.rcpt_tos == [ADMIN]
    assert mail.mail_from == SENDER
    assert mail.message["To"] == ADMIN
    assert mail.message["Subject"] == "pam-guard: account alice locked"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    text = body(mail)
    assert "locked after 3 failed logins" in text
    assert "From: 198.51.100.7 (1x), 203.0.113.5 (2x)" in text
    assert "Last try: 198.51.100.7, service login" in text
    assert "Locked until an admin unlocks it." in text
    assert "Unlock: pam-guard unlock alice" in text
    _keep("lock", mail)


def test_lock_notice_with_unlock_after(make_site, smtp):
    site = make_site(lockout=dict(QUIET, unlock_after_minutes=30))
    for _ in range(3):
        site.fail("amy", None, service="su")
    _deliver_ok(site, 1)
    text = body(smtp.wait_for(1)[0])
    assert "From: local (3x)" in text
    assert "Unlocks by itself at" in text


def test_ip_alert(make_site, smtp):
    site = make_site(lockout={"ip_alert_attempts": 3, "ip_alert_period_minutes": 5})
    site.fail("bob", "192.0.2.9")
    site.fail("carol", "192.0.2.9")
    site.fail("dave", "192.0.2.10")  # another address: does not count for 192.0.2.9
    _deliver_ok(site, 0)

    site.fail("dave", "192.0.2.9")
    _deliver_ok(site, 1)
    [mail] = by_kind(smtp.wait_for(1), "ip_alert")
    assert mail.rcpt_tos == [ADMIN]
    assert mail.message["Subject"] == "pam-guard: 3 failed logins from 192.0.2.9"
    text = body(mail)
    assert "Address 192.0.2.9 failed 3 logins within 5 min on 3 account(s)." in text
    assert "Accounts tried: bob, carol, dave" in text
    assert "pam-guard history --ip 192.0.2.9 --failed" in text
    _keep("ip_alert", mail)


def test_trackstat(make_site, smtp):
    site = make_site(
        lockout=QUIET,
        trackstat={
            "enabled": True,
            "logins": 4,
            "rating": 50,
            "action": "email",
            "email": "security@example.org",
        },
    )
    for _ in range(6):  # one address every time: never sharing
        assert site.login("steady", "10.9.9.9").allowed
    for i in range(3):  # three logins (with this one's address): not enough data yet
        assert site.login("erin", f"10.0.{i}.1").reasons == ()
    _deliver_ok(site, 0)

    verdict = site.login("erin", "10.0.9.1")
    assert verdict.allowed and "password_sharing" in verdict.reasons
    _deliver_ok(site, 1)
    [mail] = by_kind(smtp.wait_for(1), "trackstat")
    assert mail.rcpt_tos == ["security@example.org"]  # trackstat.email takes the place of admin
    assert mail.message["Subject"] == "pam-guard: possible password sharing by erin"
    text = body(mail)
    assert "the login was let in" in text
    assert "Logins used: 4" in text
    assert "Unique addresses: 4" in text
    assert "Trackstat figure: 100.0% (rating 50% allowed)" in text
    assert "10.0.9.1" in text
    _keep("trackstat", mail)


def test_concurrent(make_site, smtp):
    site = make_site(
        lockout=QUIET,
        concurrent={"enabled": True, "window_minutes": 15, "action": "deny", "notify": True},
    )
    assert site.login("frank", "10.1.1.1").allowed
    assert site.login("frank", "10.1.1.1").allowed  # same address again: not concurrent
    _deliver_ok(site, 0)

    site.clock.advance(120)
    verdict = site.login("frank", "10.2.2.2")
    assert not verdict.allowed and "concurrent_login" in verdict.reasons
    _deliver_ok(site, 1)
    [mail] = by_kind(smtp.wait_for(1), "concurrent")
    assert mail.rcpt_tos == [ADMIN]
    assert mail.message["Subject"] == "pam-guard: concurrent login by frank"
    text = body(mail)
    assert "the new login was refused" in text
    assert "New login:  10.2.2.2 at" in text
    assert "Still open: 10.1.1.1 since" in text
    _keep("concurrent", mail)


def test_status_change(make_site, smtp):
    site = make_site(lockout=QUIET, status={"denied_limit": 1, "denied_period_minutes": 30})
    for _ in range(3):
        site.fail("gina", "198.51.100.20")
    assert not site.login("gina", "198.51.100.20").allowed  # one denial: within the limit
    sent_before = len(smtp.messages)
    _deliver_ok(site, 1)  # the lock notice only
    assert by_kind(smtp.wait_for(sent_before + 1), "status") == []

    assert not site.login("gina", "198.51.100.20").allowed  # two denials > 1: high risk
    _deliver_ok(site, 1)
    [mail] = by_kind(smtp.wait_for(2), "status")
    assert mail.rcpt_tos == [ADMIN]
    assert mail.message["Subject"] == "pam-guard: gina is now high_risk"
    text = body(mail)
    assert "changed status: protected → high_risk" in text
    assert "Why: 2 denied logons within 30 min" in text
    _keep("status", mail)


def test_kind_switched_off_is_not_sent(make_site, smtp):
    site = make_site(lockout=QUIET, notify={"on": ["ip_alert"]})
    for _ in range(3):
        site.fail("hal", "203.0.113.77")
    assert site.outbox() == []  # the lock happened, but nobody wants to hear of it
    _deliver_ok(site, 0)


def test_user_notices(make_site, smtp):
    site = make_site(lockout=QUIET)
    done = site.cli(
        "notify",
        "henry",
        "--on",
        "failure,success",
        "--to",
        "henry@example.org,h.backup@example.net",
    )
    assert done.returncode == 0, done.stderr
    done = site.cli("notify", "ivy", "--on", "success", "--to", "ivy@example.org")
    assert done.returncode == 0, done.stderr

    site.fail("henry", "203.0.113.40")
    site.fail("ivy", "203.0.113.41")  # ivy asked for successes only
    site.fail("jack", "203.0.113.42")  # jack asked for nothing
    _deliver_ok(site, 1)
    [failure] = by_kind(smtp.wait_for(1), "user_failure")
    assert failure.rcpt_tos == ["henry@example.org", "h.backup@example.net"]
    assert failure.message["To"] == "henry@example.org, h.backup@example.net"
    assert failure.message["Subject"] == "pam-guard: failed login to your account henry"
    text = body(failure)
    assert "From: 203.0.113.40" in text and "Service: sshd" in text
    _keep("user_failure", failure)

    assert site.login("henry", "203.0.113.40").allowed
    assert site.login("ivy", "203.0.113.41").allowed
    assert site.login("jack", "203.0.113.42").allowed
    _deliver_ok(site, 2)
    messages = smtp.wait_for(3)
    successes = {tuple(m.rcpt_tos): m for m in by_kind(messages, "user_success")}
    assert set(successes) == {("henry@example.org", "h.backup@example.net"), ("ivy@example.org",)}
    ivy = successes[("ivy@example.org",)]
    assert ivy.message["Subject"] == "pam-guard: successful login to your account ivy"
    assert "From: 203.0.113.41" in body(ivy)
    _keep("user_success", ivy)
    assert not any("jack" in m.message["Subject"] for m in messages)

    assert site.cli("notify", "henry", "--off").returncode == 0
    site.clock.advance(2 * 3600)  # past notify.repeat_minutes: only --off keeps it quiet
    site.fail("henry", "203.0.113.40")
    _deliver_ok(site, 0)
