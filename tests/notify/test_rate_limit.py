"""An attack of 1,000 failures makes one lock notice and one address alert per period, not
1,000 mails; after the period the still-failing address is reported again."""

from __future__ import annotations

from tests.notify.conftest import by_kind

FAILURES = 1000


def test_thousand_failures_one_notice_each(make_site, smtp):
    site = make_site(
        lockout={"max_attempts": 3, "ip_alert_attempts": 3, "ip_alert_period_minutes": 5},
        notify={"repeat_minutes": 60},
    )
    for _ in range(FAILURES):
        site.clock.now += 2  # 1,000 failures within 34 minutes
        site.gate.record_failure(site.gate.attempt("victim", "pam", "sshd", "198.51.100.66", None))
    kinds = [r["kind"] for r in site.outbox()]
    assert sorted(kinds) == ["ip_alert", "lock"]

    done = site.deliver()
    assert done.returncode == 0 and "sent 2," in done.stdout
    messages = smtp.wait_for(2)
    assert len(by_kind(messages, "lock")) == 1
    [alert] = by_kind(messages, "ip_alert")
    assert "failed logins from 198.51.100.66" in alert.message["Subject"]

    # An hour after the first alert the address is still at it: one new alert, no new lock
    # notice (the account is still locked; a lock is announced once).
    site.clock.now += 61 * 60 - 34 * 60
    for _ in range(5):
        site.fail("victim", "198.51.100.66")
    assert sorted(r["kind"] for r in site.outbox()) == ["ip_alert", "ip_alert", "lock"]
    done = site.deliver()
    assert "sent 1," in done.stdout
    assert len(by_kind(smtp.wait_for(3), "ip_alert")) == 2


def test_repeat_zero_sends_each_alert(make_site, smtp):
    """With notify.repeat_minutes = 0 nothing is held back: the limit is what keeps it quiet."""
    site = make_site(
        lockout={"max_attempts": 1000, "ip_alert_attempts": 3}, notify={"repeat_minutes": 0}
    )
    for _ in range(5):
        site.fail("victim", "198.51.100.67")
    assert [r["kind"] for r in site.outbox()] == ["ip_alert"] * 3
