"""Delivery over a real SMTP server that goes down, refuses, wants STARTTLS or a login:
notices stay queued, retry with growing backoff, arrive once, or are given up and said so."""

from __future__ import annotations

import json
import time

from pam_guard import deliver
from tests.notify.conftest import ADMIN, by_kind
from tests.support.smtp import SmtpServer, make_certificate

QUIET = {"ip_alert_attempts": 1000}


def _lock(site, user="alice"):
    for _ in range(3):
        site.fail(user, "203.0.113.5")


def test_server_down_then_back(make_site, smtp):
    site = make_site(lockout=QUIET)
    _lock(site)
    smtp.stop()

    done = site.deliver()
    assert done.returncode == 3, done
    assert "mail server unreachable" in done.stderr
    assert "will retry" in done.stderr
    [row] = site.outbox()
    assert row["sent_at"] is None and row["attempts"] == 1
    assert row["last_error"] and "Connection refused" in row["last_error"]
    first_wait = row["next_try"] - time.time()
    assert 50 < first_wait <= 60
    assert row["claimed_by"] is None  # the claim is released, not left to expire

    table = site.deliver("--list").stdout
    assert "waiting" in table and "Connection refused" in table

    # Not due yet: a run in the backoff period does not touch it.
    done = site.deliver()
    assert done.returncode == 0 and "sent 0, failed 0, gave up 0, waiting 1" in done.stdout
    assert site.outbox()[0]["attempts"] == 1

    # Forced again while still down: the wait doubles.
    assert site.deliver("--retry-now").returncode == 3
    row = site.outbox()[0]
    assert row["attempts"] == 2
    assert 110 < row["next_try"] - time.time() <= 120

    smtp.start()  # same port
    done = site.deliver()
    assert done.returncode == 0 and "sent 0," in done.stdout  # still in its backoff
    site.sql("UPDATE outbox SET next_try = ?", (time.time() - 1,))  # its time has come
    done = site.deliver()
    assert done.returncode == 0 and "sent 1, failed 0, gave up 0, waiting 0" in done.stdout
    [mail] = by_kind(smtp.wait_for(1), "lock")
    assert mail.rcpt_tos == [ADMIN]
    row = site.outbox()[0]
    assert row["sent_at"] is not None and row["attempts"] == 3

    assert site.deliver().returncode == 0
    time.sleep(0.2)
    assert len(smtp.messages) == 1  # sent once, never again
    assert site.deliver("--list").stdout == "no notices waiting\n"


def test_gives_up_after_bounded_attempts(make_site, smtp):
    site = make_site(lockout=QUIET)
    _lock(site)
    smtp.stop()
    site.sql("UPDATE outbox SET attempts = ?", (deliver.MAX_ATTEMPTS - 2,))
    assert site.deliver().returncode == 3
    assert site.outbox()[0]["attempts"] == deliver.MAX_ATTEMPTS - 1

    done = site.deliver("--retry-now")
    assert done.returncode == 3
    assert (
        f"gave up on notice 1 (lock: 'pam-guard: account alice locked' to {ADMIN}) after "
        f"{deliver.MAX_ATTEMPTS} tries" in done.stderr
    )
    assert "waiting 0" in done.stdout
    listed = json.loads(site.cli("--json", "deliver", "--list").stdout)
    assert [(n["id"], n["kind"], n["state"], n["attempts"]) for n in listed] == [
        (1, "lock", "given up", deliver.MAX_ATTEMPTS)
    ]
    assert "Connection refused" in listed[0]["last_error"]
    smtp.start()
    done = site.deliver("--retry-now")
    assert done.returncode == 0 and "sent 0," in done.stdout
    time.sleep(0.2)
    assert smtp.messages == []
    assert site.outbox()[0]["sent_at"] is None  # kept, unsent, for the admin to see


def test_backoff_grows_and_is_bounded():
    waits = [deliver.backoff(n) for n in range(1, deliver.MAX_ATTEMPTS + 1)]
    assert waits[:4] == [60, 120, 240, 480]
    assert waits == sorted(waits) and max(waits) == deliver.MAX_BACKOFF
    # Retried for days (a mail server may be down over a weekend), not forever.
    assert 2 * 86400 < sum(waits[:-1]) < 7 * 86400


def test_recipient_refused_for_good(make_site, tmp_path):
    with SmtpServer(refuse={"gone@example.org"}) as server:
        site = make_site(port=server.port, lockout=QUIET)
        assert (
            site.cli("notify", "kim", "--on", "failure", "--to", "gone@example.org").returncode == 0
        )
        assert (
            site.cli(
                "notify", "lou", "--on", "failure", "--to", "gone@example.org,lou@example.org"
            ).returncode
            == 0
        )
        site.fail("kim", "203.0.113.60")
        site.fail("lou", "203.0.113.61")
        done = site.deliver()
        assert done.returncode == 1
        assert "gave up on notice 1" in done.stderr and "550" in done.stderr  # no retry of a 5xx
        assert "notice 2" in done.stderr and "some recipients refused" in done.stderr
        [mail] = server.wait_for(1)
        assert mail.rcpt_tos == ["lou@example.org"]
        kim, lou = site.outbox()
        assert kim["sent_at"] is None and kim["attempts"] == deliver.MAX_ATTEMPTS
        assert lou["sent_at"] is not None and "gone@example.org" in lou["last_error"]


def test_starttls_and_login(make_site, tmp_path):
    cert, key = make_certificate(tmp_path)
    password_file = tmp_path / "smtp.pass"
    password_file.write_text("s3cret pass\n")
    password_file.chmod(0o600)
    with SmtpServer(tls=(cert, key), auth=("relay", "s3cret pass")) as server:
        site = make_site(
            port=server.port,
            lockout=QUIET,
            notify={
                "starttls": True,
                "smtp_user": "relay",
                "smtp_password_file": str(password_file),
            },
        )
        _lock(site)

        # The certificate is checked: one the client does not trust is refused.
        done = site.deliver()
        assert done.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in done.stderr
        assert server.messages == []

        done = site.deliver("--retry-now", env={"SSL_CERT_FILE": cert})
        assert done.returncode == 0, done.stderr
        assert server.logins == ["relay"]
        [mail] = server.wait_for(1)
        assert mail.rcpt_tos == [ADMIN]


def test_wrong_password_keeps_the_notice(make_site, tmp_path):
    cert, key = make_certificate(tmp_path)
    password_file = tmp_path / "smtp.pass"
    password_file.write_text("wrong")
    password_file.chmod(0o600)
    with SmtpServer(tls=(cert, key), auth=("relay", "right")) as server:
        site = make_site(
            port=server.port,
            lockout=QUIET,
            notify={
                "starttls": True,
                "smtp_user": "relay",
                "smtp_password_file": str(password_file),
            },
        )
        _lock(site)
        done = site.deliver(env={"SSL_CERT_FILE": cert})
        assert done.returncode == 3 and "535" in done.stderr
        assert site.outbox()[0]["attempts"] == 1 and server.messages == []


def test_password_file_must_be_private(make_site, tmp_path):
    password_file = tmp_path / "smtp.pass"
    password_file.write_text("pw")
    password_file.chmod(0o644)
    site = make_site(
        lockout=QUIET,
        notify={"starttls": True, "smtp_user": "relay", "smtp_password_file": str(password_file)},
    )
    _lock(site)
    done = site.deliver()
    assert done.returncode == 2 and "mode 0600" in done.stderr
    assert site.outbox()[0]["attempts"] == 0  # a config error costs the notice nothing


def test_login_without_starttls_is_refused(make_site, tmp_path):
    password_file = tmp_path / "smtp.pass"
    password_file.write_text("pw")
    password_file.chmod(0o600)
    site = make_site(
        lockout=QUIET, notify={"smtp_user": "relay", "smtp_password_file": str(password_file)}
    )
    _lock(site)
    done = site.deliver()
    assert done.returncode == 2 and "starttls" in done.stderr


def test_server_that_limits_messages_per_session(make_site, tmp_path):
    """A busy server answers 421 after 3 messages a session: the run reopens and sends all."""
    with SmtpServer(per_session=3) as server:
        site = make_site(port=server.port, lockout=QUIET)
        for i in range(8):
            _lock(site, f"user{i}")
        done = site.deliver()
        assert done.returncode == 0, done.stderr
        assert "sent 8, failed 0" in done.stdout
        assert len(server.wait_for(8)) == 8 and server.dropped == 2
        assert [r["attempts"] for r in site.outbox()] == [1] * 8


def test_server_that_drops_every_session(make_site, tmp_path):
    with SmtpServer(per_session=0) as server:
        site = make_site(port=server.port, lockout=QUIET)
        for i in range(4):
            _lock(site, f"user{i}")
        done = site.deliver()
        assert done.returncode == 3
        assert "dropped 3 sessions in a row" in done.stderr
        assert server.messages == []
        assert all(r["sent_at"] is None and r["attempts"] == 1 for r in site.outbox())
