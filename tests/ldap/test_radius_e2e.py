"""End to end through a real FreeRADIUS: pam-guard's authorize refuses a directory-locked user
(custom authentication on the test slapd), and lets the same user in once it is unlocked."""

from __future__ import annotations

import os

import pytest

from tests.ldap.test_openldap import lock_by_binds
from tests.radius.helpers import wait_for
from tests.support.fixtures import write_secret
from tests.support.slapd import PEOPLE, READER_DN, READER_PASSWORD

radius = pytest.importorskip("tests.support.radius")
pam_support = pytest.importorskip("tests.support.pam")


@pytest.fixture
def radius_on_ldap(slapd):
    why = radius.have_freeradius()
    if why or os.geteuid() != 0:
        pytest.skip(why or "freeradius tests run as root")
    guard = pam_support.GuardConfig()
    secret = write_secret(os.path.join(guard.dir, "bind.pw"), READER_PASSWORD)
    guard.write(
        {
            "custom_authentication": {
                "enabled": True,
                "url": slapd.url,
                "kind": "openldap",
                "bind_dn": READER_DN,
                "bind_password_file": secret,
                "user_base": PEOPLE,
                "timeout_seconds": 2,
            }
        }
    )
    server = radius.start_radius(guard.path, env=guard.env)
    yield guard, server
    server.stop()
    guard.remove()


def test_authorize_refuses_a_directory_locked_user(slapd, radius_on_ldap, directory):
    guard, server = radius_on_ldap
    locked, _, locked_dn = slapd.add_user()
    free, _, _ = slapd.add_user()
    lock_by_binds(slapd, locked_dn)
    assert server.auth(free, server.password).code == "Access-Accept"
    reply = server.auth(locked, server.password)
    assert reply.code == "Access-Reject", server.log_text()[-2000:]
    # The refusal is stored by the module's recorder, a moment after the reply.
    denied = wait_for(lambda: guard.events(locked))
    assert [(e[1], e[2]) for e in denied] == [("denied", "directory_locked")]
    assert guard.query("SELECT locked_at FROM accounts WHERE username = ?", (locked,)) == [(None,)]
    # Unlocked in the directory: the running server (same process, reused LDAP connection)
    # lets the user in again.
    assert directory(admin=True).unlock(locked)
    assert server.auth(locked, server.password).code == "Access-Accept"
    # radiusd stops cleanly: detach closes the LDAP connection (an open one aborted it).
    assert server.proc is not None
    server.proc.terminate()
    assert server.proc.wait(timeout=15) == 0, server.log_text()[-2000:]
