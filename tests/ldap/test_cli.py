"""`pam-guard unlock` and `pam-guard status` with custom authentication, through the installed
command, against the real slapd."""

from __future__ import annotations

import json

from tests.ldap.test_openldap import lock_by_binds


def test_unlock_clears_the_directory_lock_and_login_works(slapd, make_site):
    uid, password, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    site = make_site(admin=True)
    assert not site.gate.login(site.attempt(uid)).allowed
    done = site.cli("unlock", uid)
    assert done.returncode == 0, done.stderr
    assert "in the directory" in done.stdout
    assert "pwdAccountLockedTime" not in slapd.read(dn, "pwdAccountLockedTime")
    assert slapd.bind_ok(dn, password)
    assert site.gate.login(site.attempt(uid)).allowed
    audit = site.rows("SELECT action, target, detail FROM audit")
    assert [tuple(r) for r in audit] == [("unlock", uid, "store and directory")]


def test_unlock_without_rights_says_so(slapd, make_site):
    uid, _, dn = slapd.add_user()
    lock_by_binds(slapd, dn)
    site = make_site()  # the reader bind: may read, not write
    done = site.cli("unlock", uid)
    assert done.returncode == 1
    assert "lacks the rights" in done.stderr
    assert "pwdAccountLockedTime" in slapd.read(dn, "pwdAccountLockedTime")


def test_unlock_unknown_everywhere_is_refused(make_site):
    done = make_site(admin=True).cli("unlock", "nobody-anywhere")
    assert done.returncode == 1 and "unknown user" in done.stderr


def test_unlock_with_the_directory_down_exits_3(make_site):
    from tests.support.slapd import free_port

    site = make_site(
        admin=True, custom={"url": f"ldap://127.0.0.1:{free_port()}", "timeout_seconds": 1}
    )
    done = site.cli("unlock", "someone")
    assert done.returncode == 3 and "directory unreachable" in done.stderr


def test_status_shows_the_directory_view(slapd, make_site):
    uid, _, dn = slapd.add_user()
    site = make_site()
    site.gate.record_failure(site.attempt(uid))
    done = site.cli("--json", "status", uid)
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)["directory"]
    assert view["dn"] == dn and view["locked"] is False
    lock_by_binds(slapd, dn)
    done = site.cli("status", uid)
    assert done.returncode == 0, done.stderr
    assert "locked=True" in done.stdout and f"dn={dn}" in done.stdout
