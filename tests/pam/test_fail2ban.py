"""The shipped fail2ban filter (packaging/fail2ban/filter.d/pam-guard.conf) against the lines
real PAM logins make, read by the real fail2ban-regex: every refusal kind from an address
matches, with that address; store_error, locks, local logins and successes never do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest

from tests.pam.test_store_failures import corrupt
from tests.support.pam import ROOT, packaged_stack, pamtester

FILTER = os.path.join(ROOT, "packaging", "fail2ban", "filter.d", "pam-guard.conf")
COMMON = "/etc/fail2ban/filter.d/common.conf"

pytestmark = pytest.mark.skipif(
    shutil.which("fail2ban-regex") is None or not os.path.exists(COMMON),
    reason="fail2ban-regex missing (scripts/test.sh installs fail2ban)",
)


class Scene:
    """A guarded throwaway service with its own config; logins from addresses."""

    def __init__(self, make_guard, make_service, sections=None) -> None:
        self.guard = make_guard(sections or {})
        self.service = make_service(packaged_stack(self.guard.path))

    def login(self, user, password, rhost=None, ops=("authenticate", "acct_mgmt")):
        return pamtester(self.service, user, password, rhost, ops)


def refusals(make_guard, make_service, user, make_user) -> dict[str, str]:
    """Drive one refusal of each kind; returns {reason: address it came from}."""
    expected = {}
    # locked: three wrong passwords, then a refusal in preauth
    scene = Scene(make_guard, make_service)
    for _ in range(3):
        scene.login(user.name, "wrong", "198.51.100.1")
    assert not scene.login(user.name, user.password, "198.51.100.1").ok
    expected["locked"] = "198.51.100.1"
    # ip_restricted
    scene = Scene(make_guard, make_service, {"ip_lock": {"enabled": True}})
    other = make_user()
    scene.guard.cli("ip", "allow", other.name, "10.0.0.0/8")
    assert not scene.login(other.name, other.password, "198.51.100.2").ok
    expected["ip_restricted"] = "198.51.100.2"
    # concurrent_login (IPv6: fail2ban reads either family)
    scene = Scene(make_guard, make_service, {"concurrent": {"enabled": True}})
    third = make_user()
    assert scene.login(third.name, third.password, "2001:db8::1").ok
    assert not scene.login(third.name, third.password, "2001:db8:1::3").ok
    expected["concurrent_login"] = "2001:db8:1::3"
    # password_sharing
    scene = Scene(
        make_guard,
        make_service,
        {"trackstat": {"enabled": True, "logins": 2, "rating": 50, "action": "deny"}},
    )
    fourth = make_user()
    assert scene.login(fourth.name, fourth.password, "192.0.2.11").ok
    assert not scene.login(fourth.name, fourth.password, "192.0.2.12").ok
    expected["password_sharing"] = "192.0.2.12"
    # session_limit
    scene = Scene(make_guard, make_service, {"status": {"session_limits": {"x": 1}}})
    scene.guard.write({"status": {"session_limits": {scene.service: 1}, "deny_over_limits": True}})
    fifth = make_user()
    assert scene.login(
        fifth.name, fifth.password, "192.0.2.21", ("authenticate", "acct_mgmt", "open_session")
    ).ok
    assert not scene.login(fifth.name, fifth.password, "192.0.2.22").ok
    expected["session_limit"] = "192.0.2.22"
    # invalid_user
    scene = Scene(make_guard, make_service)
    assert not scene.login(b"bad\x01name", "x", "192.0.2.31").ok
    expected["invalid_user"] = "192.0.2.31"
    return expected


def not_banned(make_guard, make_service, user) -> None:
    """Lines the filter must miss: store trouble, a lock, a local refusal, a success."""
    scene = Scene(make_guard, make_service)
    assert scene.login(user.name, user.password, "203.0.113.1").ok  # success: no line
    with corrupt(scene.guard):  # the store cannot be read: store_error
        assert not scene.login(user.name, user.password, "203.0.113.2").ok
    local = Scene(make_guard, make_service)
    for _ in range(3):
        local.login(user.name, "wrong")  # the third locks: an event=lock line
    assert not local.login(user.name, user.password).ok  # refused, but from no address
    assert local.guard.cli("unlock", user.name).returncode == 0  # event=unlock
    assert local.guard.cli("lock", user.name).returncode == 0  # event=admin_lock


def as_syslog_file(lines: list[str], path: str) -> None:
    """Captured datagrams (`<PRI>Mon DD HH:MM:SS tag[pid]: msg`) as a syslog file writes
    them, with a host name; journald's message-only lines get a header of now."""
    with open(path, "w") as handle:
        for line in lines:
            match = re.match(r"^<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)$", line)
            if match:
                handle.write(f"{match.group(1)} testhost {match.group(2)}\n")
            else:
                handle.write(f"{time.strftime('%b %e %H:%M:%S')} testhost pam-guard[1]: {line}\n")


def test_the_filter_matches_each_refusal_kind_and_nothing_else(
    make_guard, make_service, user, make_user, syslog, tmp_path
):
    before = len(syslog.lines(wait=0))
    expected = refusals(make_guard, make_service, user, make_user)
    not_banned(make_guard, make_service, user)
    lines = syslog.lines()[before:]
    log = str(tmp_path / "auth.log")
    as_syslog_file(lines, log)
    # the filter beside the common.conf it includes, as in /etc/fail2ban/filter.d
    (tmp_path / "filter.d").mkdir()
    shutil.copy(COMMON, tmp_path / "filter.d")
    shutil.copy(FILTER, tmp_path / "filter.d")

    proc = subprocess.run(
        [
            "fail2ban-regex",
            "--print-all-matched",
            "--print-all-missed",
            log,
            str(tmp_path / "filter.d" / "pam-guard.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    matched_block = proc.stdout.split("Matched line(s):")[1].split("Missed line(s):")[0]
    matched = [line for line in matched_block.splitlines() if "event=" in line]
    found = {
        re.search(r"reason=(\S+)", line).group(1): re.search(r"rhost=(\S+)", line).group(1)
        for line in matched
    }
    assert found == expected, proc.stdout
    assert len(matched) == len(expected), matched
    summary = re.search(
        r"Lines: (\d+) lines, \d+ ignored, (\d+) matched, (\d+) missed", proc.stdout
    )
    total, hits, missed = map(int, summary.groups())
    assert hits == len(expected) and missed == total - hits
    missed_text = proc.stdout.split("Missed line(s):")[1]
    for kind in (
        "reason=store_error",
        "event=lock",
        "rhost=- reason=locked",
        f"event=unlock rhost=- reason=admin user={user.name} channel=admin by=",
        f"event=admin_lock rhost=- reason=admin user={user.name} channel=admin by=",
    ):
        assert kind in missed_text, (kind, proc.stdout)
