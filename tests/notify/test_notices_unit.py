"""Pure checks of pam_guard.notices (texts, recipients, import weight) and of deliver's
message building; the end-to-end proof is in test_kinds.py."""

from __future__ import annotations

import subprocess
import sys

from pam_guard import deliver, notices
from policy.settings import build_settings
from policy.types import Notice
from tests.notify.conftest import ADMIN, PAM_GUARD, SENDER


def _settings(**notify):
    return build_settings({"notify": dict({"admin": ADMIN, "from": SENDER}, **notify)})


def test_address_alert_lists_at_most_twenty_accounts():
    users = ", ".join(f"user{i:02}" for i in range(35))
    notice = Notice(
        "ip_alert",
        "192.0.2.1",
        (("address", "192.0.2.1"), ("failures", 35), ("minutes", 5), ("users", users)),
    )
    title, body = notices.render(notice, _settings())
    assert title == "pam-guard: 35 failed logins from 192.0.2.1"
    assert "on 35 account(s)" in body
    assert "user19 and 15 more" in body and "user20" not in body
    assert len(body.splitlines()) <= 6  # short: a phone shows it without scrolling


def test_recipients():
    settings = _settings(on=["lock"])
    lock = Notice("lock", "a", ())
    assert notices.recipients(lock, settings) == ADMIN
    assert notices.recipients(Notice("status", "a", ()), settings) == ""  # switched off
    user = Notice("user_failure", "a", ())
    assert notices.recipients(user, settings, "a@example.org") == "a@example.org"
    tracked = build_settings({"trackstat": {"email": "sec@example.org"}})
    assert notices.recipients(Notice("trackstat", "a", ()), tracked) == "sec@example.org"
    assert notices.recipients(lock, tracked) == "root@localhost"


def test_notices_import_stays_light():
    """It runs inside every login process: no email, no logging, no SQLAlchemy."""
    code = (
        "import sys, pam_guard.notices, pam_guard.gate; "
        "print(sorted(m for m in ('email', 'logging', 'sqlalchemy', 'smtplib') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


class _Row:
    def __init__(self, **kw):
        self.__dict__.update(
            dict(
                id=7,
                created=1_800_000_000.0,
                kind="lock",
                recipients="a@example.org, b@example.org",
                title="t",
                body="b\n",
                attempts=0,
            ),
            **kw,
        )


def test_message_headers():
    msg = deliver.build_message(_Row(), _settings().notify)
    assert msg["From"] == SENDER
    assert msg["To"] == "a@example.org, b@example.org"
    assert msg["Message-ID"].startswith("<pam-guard.7.1800000000@")
    assert msg["X-Pam-Guard-Kind"] == "lock"


def test_a_line_break_in_a_title_is_never_sendable(make_site, smtp):
    site = make_site()
    site.sql(
        "INSERT INTO outbox (created, kind, subject, recipients, title, body, attempts, "
        "next_try) VALUES (0, 'lock', 'x', ?, ?, 'b', 0, 0)",
        (ADMIN, "bad\r\nBcc: someone@example.org"),
    )
    site.sql(
        "INSERT INTO outbox (created, kind, subject, recipients, title, body, attempts, "
        "next_try) VALUES (0, 'lock', 'y', ?, 'good', 'b', 0, 0)",
        (ADMIN,),
    )
    done = subprocess.run(
        [PAM_GUARD, "--config", site.config, "deliver"],
        capture_output=True,
        text=True,
        env=site.env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "gave up on notice 1" in done.stderr
    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "good" and mail.rcpt_tos == [ADMIN]
