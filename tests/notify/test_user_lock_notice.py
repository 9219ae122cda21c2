"""The user's own lock notice (`pam-guard notify USER --on lock`, issue 18) over the real SMTP
server: the account's lock and smart lockout's lock of unfamiliar places, where the failures
came from and how long it lasts; nothing for users who did not ask; the admin's lock notice
as before."""

from __future__ import annotations

from tests.notify.conftest import ADMIN, body, by_kind

QUIET = {"ip_alert_attempts": 1000}  # keeps address alerts out of these tests
USER_MAIL = "nina@example.org"


def _ask(site, on="lock"):
    done = site.cli("notify", "nina", "--on", on, "--to", USER_MAIL)
    assert done.returncode == 0, done.stderr


def _deliver(site, smtp, count):
    done = site.deliver()
    assert done.returncode == 0, done.stderr
    return smtp.wait_for(count)


def test_the_user_hears_of_the_lock_with_where_and_how_long(make_site, smtp):
    site = make_site(lockout={**QUIET, "unlock_after_minutes": 15})
    _ask(site)
    for address in ("203.0.113.7", "203.0.113.8", "203.0.113.8"):
        site.fail("nina", address)
    received = _deliver(site, smtp, 2)
    [mail] = by_kind(received, "user_lock")
    assert mail.rcpt_tos == [USER_MAIL]
    assert mail.message["Subject"] == "pam-guard: your account nina was locked"
    text = body(mail)
    assert "203.0.113.7" in text and "203.0.113.8" in text
    assert "(in 15 min)" in text
    [admin] = by_kind(received, "lock")  # the admin's, as before
    assert admin.rcpt_tos == [ADMIN]


def test_a_lock_until_an_admin_unlocks_says_so(make_site, smtp):
    site = make_site(lockout=QUIET)
    _ask(site, "failure,lock")
    for _ in range(3):
        site.fail("nina", "203.0.113.7")
    # her first failure (the next two within notify.repeat_minutes are not mailed again),
    # her lock, the admin's lock
    received = _deliver(site, smtp, 3)
    [mail] = by_kind(received, "user_lock")
    assert "Locked until an admin unlocks it." in body(mail)
    assert len(by_kind(received, "user_failure")) == 1


def test_smart_lockouts_lock_is_told_as_unfamiliar_places(make_site, smtp):
    site = make_site(lockout={**QUIET, "unfamiliar_attempts": 2, "unlock_after_minutes": 10})
    _ask(site)
    site.login("nina", "198.51.100.7")  # home
    site.fail("nina", "203.0.113.7")
    site.fail("nina", "192.0.2.9")
    [mail] = by_kind(_deliver(site, smtp, 2), "user_lock")
    subject = " ".join(mail.message["Subject"].split())  # a long subject is folded
    assert subject == "pam-guard: logins to your account nina from unfamiliar places were locked"
    assert "192.0.2.9" in body(mail) and "(in 10 min)" in body(mail)


def test_no_lock_mail_for_a_user_who_did_not_ask_for_it(make_site, smtp):
    site = make_site(lockout=QUIET)
    _ask(site, "success")  # other notices only
    for _ in range(3):
        site.fail("nina", "203.0.113.7")
    site.fail("omar", "203.0.113.7")  # never asked for anything
    received = _deliver(site, smtp, 1)
    assert [m.message["X-Pam-Guard-Kind"] for m in received] == ["lock"]
    assert received[0].rcpt_tos == [ADMIN]
