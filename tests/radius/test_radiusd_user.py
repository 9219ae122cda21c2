"""radiusd as Debian runs it: as user freerad, on the store root also writes (PAM, admin),
with the digest key install.sh makes (0640 root:freerad).

A store only root may write (what install.sh made before FreeRADIUS was asked for) must
refuse logins per failure.on_store_error and say how to fix it; after
packaging/share-store.sh the same radiusd records, locks and sees the admin's unlock, and the
files root and freerad make in the store stay writable by both.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess

import pytest

from tests.radius.helpers import LOCK_MESSAGE, outcomes, wait_for
from tests.support.pam import ROOT

RADIUSD_USER = "freerad"
SHARE_STORE = os.path.join(ROOT, "packaging", "share-store.sh")
ADDR = {"Calling_Station_Id": "192.0.2.10", "NAS_Port_Type": "Virtual"}


@pytest.fixture
def layout(guard):
    """The guard's config readable by radiusd's user, as /etc/pam-guard is (0755, 0644)."""
    try:
        pwd.getpwnam(RADIUSD_USER)
    except KeyError:
        pytest.skip(f"no user {RADIUSD_USER} (the freeradius package makes it)")
    os.chmod(guard.dir, 0o755)
    os.chmod(guard.path, 0o644)
    return guard


def share_store(guard) -> None:
    subprocess.run(
        [SHARE_STORE, os.path.dirname(guard.store_path), RADIUSD_USER],
        check=True,
        capture_output=True,
    )


def start_as_radiusd_user(start_server, guard):
    return start_server(guard, run_as=RADIUSD_USER)


def test_root_only_store_refuses_and_says_how_to_share_it(layout, start_server):
    server = start_as_radiusd_user(start_server, layout)
    reply = server.auth("alice", server.password, **ADDR)
    assert reply.code == "Access-Reject"  # failure.on_store_error = deny (the default)
    assert "unavailable" in reply.attrs["Reply-Message"]
    assert wait_for(lambda: "share-store.sh" in server.log_text())
    assert server.auth("alice", server.password, **ADDR).code == "Access-Reject"
    assert server.running()


def test_shared_store_records_locks_and_sees_the_admins_unlock(layout, start_server):
    share_store(layout)
    server = start_as_radiusd_user(start_server, layout)
    assert server.auth("bob", server.password, **ADDR).code == "Access-Accept"
    for _ in range(3):
        assert server.auth("bob", "wrong", **ADDR).code == "Access-Reject"
    reply = server.auth("bob", server.password, **ADDR)
    assert reply.code == "Access-Reject" and reply.attrs["Reply-Message"].startswith(LOCK_MESSAGE)
    layout.cli("unlock", "bob")  # root writes the store radiusd (freerad) has open
    assert server.auth("bob", server.password, **ADDR).code == "Access-Accept"
    assert wait_for(
        lambda: (
            [o for o, _r in outcomes(layout, "bob")]
            == ["success", "failure", "failure", "failure", "denied", "success"]
        )
    )
    # Whoever made them, the store's files stay the group's to write, and nobody else's.
    group = grp.getgrnam("pam-guard").gr_gid
    store_dir = os.path.dirname(layout.store_path)
    names = os.listdir(store_dir)
    assert any(n.endswith("-wal") for n in names), names  # radiusd still has the store open
    for name in names:
        info = os.stat(os.path.join(store_dir, name))
        assert info.st_gid == group, name
        assert stat.S_IMODE(info.st_mode) & 0o060 == 0o060, name
        assert not stat.S_IMODE(info.st_mode) & 0o007, name


def test_share_store_is_needed_for_the_group_exception_only(layout):
    """check-config accepts the shared directory (group pam-guard, 2770) and still refuses a
    directory any other group, or anyone, may write."""
    share_store(layout)
    assert layout.cli("check-config", check=False).returncode == 0
    store_dir = os.path.dirname(layout.store_path)
    os.chmod(store_dir, 0o2772)
    refused = layout.cli("check-config", check=False)
    assert refused.returncode != 0 and "writable by group or others" in refused.stderr
    os.chmod(store_dir, 0o2770)
    os.chown(store_dir, 0, 0)
    refused = layout.cli("check-config", check=False)
    assert refused.returncode != 0 and "writable by group or others" in refused.stderr


def test_installer_shared_the_default_store_with_radiusd_user():
    """scripts/test.sh installs with --with-freeradius: the default store is radiusd's too."""
    if not os.path.isdir("/opt/pam-guard/share/freeradius"):
        pytest.skip("pam-guard installed without --with-freeradius")
    info = os.stat("/var/lib/pam-guard")
    assert grp.getgrgid(info.st_gid).gr_name == "pam-guard"
    assert stat.S_IMODE(info.st_mode) == 0o2770
    assert RADIUSD_USER in grp.getgrnam("pam-guard").gr_mem
    for name in os.listdir("/var/lib/pam-guard"):
        assert os.stat(os.path.join("/var/lib/pam-guard", name)).st_gid == info.st_gid, name


def _digest_key_for(layout, group: str | None) -> None:
    """digest.key as install.sh leaves it: 0640 root:freerad where FreeRADIUS is, else 0600."""
    key = os.path.join(layout.dir, "digest.key")
    if group is None:
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
    else:
        os.chown(key, 0, grp.getgrnam(group).gr_gid)
        os.chmod(key, 0o640)


def _repeats_counted(layout, start_server, user) -> list:
    layout.write({"lockout": {"ignore_repeated_password": True, "max_attempts": 10}})
    os.chmod(layout.path, 0o644)  # rewritten 0600: readable by radiusd's user again
    share_store(layout)
    server = start_as_radiusd_user(start_server, layout)
    for _ in range(4):
        assert server.auth(user, "Summer2024!", **ADDR).code == "Access-Reject"
    query = "SELECT bucket FROM events WHERE username = ? ORDER BY id"
    rows = wait_for(lambda: len(layout.query(query, (user,))) == 4 and layout.query(query, (user,)))
    return [bucket for (bucket,) in rows], server


def test_radiusd_user_reads_the_digest_key_install_makes(layout, start_server):
    _digest_key_for(layout, RADIUSD_USER)
    buckets, _server = _repeats_counted(layout, start_server, "ivy")
    assert buckets == [None, "repeated", "repeated", "repeated"]


def test_a_digest_key_radiusd_cannot_read_counts_as_usual_and_says_so(layout, start_server):
    _digest_key_for(layout, None)
    buckets, server = _repeats_counted(layout, start_server, "joe")
    assert buckets == [None] * 4  # nothing lost: every failure counts, as without the setting
    assert wait_for(lambda: "no digest key" in server.log_text())
    assert f"chgrp {RADIUSD_USER} {layout.dir}/digest.key && chmod 0640" in server.log_text()
    assert server.running()
