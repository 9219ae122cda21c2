"""The pam-auth-update profiles (/usr/share/pam-configs/pam-guard, pam-guard-authfail) as
Debian's own tool writes them into common-auth/-account/-session, and real su through them.

pam-auth-update edits /etc/pam.d and keeps state in /var/lib/pam and debconf: it runs here in
a mount namespace of its own (unshare -m) over copies of those directories, and so do the
logins that read what it wrote. The host's files are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.pam.test_setuid import LOCKED_LINE, people  # noqa: F401 - a fixture
from tests.support import pam as support

PROFILES = ("/usr/share/pam-configs/pam-guard", "/usr/share/pam-configs/pam-guard-authfail")
PRIVATE = {"/etc/pam.d": "pamd", "/var/lib/pam": "varlib", "/var/cache/debconf": "debconf"}

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(p) for p in PROFILES)
    or shutil.which("pam-auth-update") is None
    or shutil.which("unshare") is None,
    reason="needs pam-auth-update, unshare and the installed profiles (packaging/install.sh)",
)


class Namespace:
    """Copies of /etc/pam.d, /var/lib/pam and debconf's cache, mounted over the real ones
    only inside the commands `run` starts."""

    def __init__(self, base) -> None:
        self.base = str(base)
        for real, name in PRIVATE.items():
            shutil.copytree(real, os.path.join(self.base, name), symlinks=True)
        os.chmod(self.base, 0o755)

    def path(self, real: str) -> str:
        return os.path.join(self.base, PRIVATE[real])

    def run(self, *command: str, input_text: str | None = None) -> subprocess.CompletedProcess:
        mounts = " && ".join(f"mount --bind {self.path(real)} {real}" for real in PRIVATE)
        script = f'{mounts} && exec "$@"'
        return subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *command],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
            env={
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "DEBIAN_FRONTEND": "noninteractive",
                "LANG": "C.UTF-8",
            },
        )

    def stack(self, name: str) -> list[str]:
        with open(os.path.join(self.path("/etc/pam.d"), name)) as handle:
            return [
                " ".join(line.split())
                for line in handle
                if line.strip() and not line.lstrip().startswith("#")
            ]

    def point_at(self, config: str) -> None:
        """config=PATH on every exec-entry line of the common-* files (a test store)."""
        pamd = self.path("/etc/pam.d")
        for name in os.listdir(pamd):
            if not name.startswith("common-"):
                continue
            path = os.path.join(pamd, name)
            with open(path) as handle:
                text = handle.read()
            text = re.sub(r"(pam-guard-exec)(?=[ \t\n])", rf"\1 config={config}", text)
            with open(path, "w") as handle:
                handle.write(text)


@pytest.fixture
def namespace(tmp_path):
    made = Namespace(tmp_path)
    done = made.run("pam-auth-update", "--enable", "pam-guard", "pam-guard-authfail")
    assert done.returncode == 0, done.stdout + done.stderr
    return made


def _index(lines: list[str], pattern: str) -> int:
    found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert len(found) == 1, (pattern, lines)
    return found[0]


def test_profiles_put_the_exec_entry_in_pam_faillocks_positions(namespace):
    auth = namespace.stack("common-auth")
    preauth = _index(auth, r"pam_exec\.so .*pam-guard-exec preauth$")
    unix = _index(auth, r"pam_unix\.so")
    authfail = _index(auth, r"pam_exec\.so .*pam-guard-exec authfail$")
    deny = _index(auth, r"pam_deny\.so")
    assert preauth < unix < authfail < deny
    # pam_unix's success jumps over authfail and pam_deny
    assert re.search(r"success=2", auth[unix]), auth[unix]
    account = namespace.stack("common-account")
    assert _index(account, r"pam_exec\.so .*pam-guard-exec$") > _index(account, r"pam_unix\.so")
    assert any("pam-guard-exec" in line for line in namespace.stack("common-session"))
    assert not any(
        "pam-guard-exec" in line for line in namespace.stack("common-session-noninteractive")
    )
    assert not any(
        "pam_python" in line
        for name in ("common-auth", "common-account", "common-session")
        for line in namespace.stack(name)
    )
    # and the host's own files were left alone
    with open("/etc/pam.d/common-auth") as handle:
        assert "pam-guard-exec" not in handle.read()


def test_su_through_common_auth_locks_and_unlock_restores(namespace, make_guard, people):  # noqa: F811
    caller, target = people
    guard = make_guard()
    namespace.point_at(guard.path)

    def su(password: str):
        return namespace.run(
            "runuser",
            "-u",
            caller.name,
            "--",
            "su",
            "-c",
            "true",
            target.name,
            input_text=password + "\n",
        )

    assert su(target.password).returncode == 0
    for _ in range(3):
        assert su("wrong-password").returncode != 0
    refused = su(target.password)
    assert refused.returncode != 0 and LOCKED_LINE in refused.stdout + refused.stderr
    guard.cli("unlock", target.name)
    assert su(target.password).returncode == 0

    records = guard.history(target.name)
    assert [r["outcome"] for r in reversed(records)] == support.LOCKED_THEN_UNLOCKED
    assert {(r["service"], r["ruser"]) for r in records} == {("su", caller.name)}


def test_cron_is_not_a_login(namespace, make_guard, user):
    """common-account reaches cron's jobs too: the profile leaves them alone."""
    guard = make_guard()
    namespace.point_at(guard.path)
    pamd = namespace.path("/etc/pam.d")
    other = support.unique_name()
    for name in ("cron", other):
        if name == other or not os.path.exists(os.path.join(pamd, name)):
            with open(os.path.join(pamd, name), "w") as handle:
                handle.write("@include common-account\n")
    done = namespace.run("pamtester", "cron", user.name, "acct_mgmt")
    assert done.returncode == 0, done.stdout + done.stderr
    assert guard.events(user.name) == []
    done = namespace.run("pamtester", other, user.name, "acct_mgmt")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [e[1] for e in guard.events(user.name)] == ["success"]
