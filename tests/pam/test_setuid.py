"""Setuid programs (issue 15): real su and sudo run by an unprivileged user through the shipped
exec-entry stacks, the PATH hijack that a pam_python line in a setuid program's stack allows
(and that the exec entry does not), and the hook's own refusal inside a setuid process.

These tests replace /etc/pam.d/su and /etc/pam.d/sudo for their duration (su and sudo have no
other service name) and restore them afterwards.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from tests.support import pam as support
from tests.support.pam import (
    EXEC,
    LOCKED_THEN_UNLOCKED,
    PACKAGED_STACK,
    PACKAGED_SU,
    PACKAGED_SUDO,
    PAM_D,
    create_user,
    packaged_stack,
    remove_user,
    unique_name,
)

LOCKED_LINE = "Account locked: too many failed logins"


def _tool(name: str) -> str | None:
    return shutil.which(name, path="/usr/bin:/usr/sbin:/bin:/sbin")


pytestmark = pytest.mark.skipif(
    _tool("sudo") is None or _tool("su") is None or _tool("runuser") is None,
    reason="su, sudo and runuser are needed (scripts/test.sh installs sudo)",
)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def real_service():
    """replace(name, text): /etc/pam.d/<name> holds `text` for this test, restored after."""
    saved: dict[str, str | None] = {}

    def replace(name: str, text: str) -> None:
        path = os.path.join(PAM_D, name)
        if name not in saved:
            saved[name] = open(path).read() if os.path.exists(path) else None
        support.write_service(text, name)

    yield replace
    for name, text in saved.items():
        if text is None:
            support.remove_service(name)
        else:
            support.write_service(text, name)


@pytest.fixture
def people():
    """(caller, target): an unprivileged user who runs su or sudo, and a user with a shell
    for su to switch to; removed afterwards."""
    caller = create_user()
    target = create_user(shell="/bin/sh")
    yield caller, target
    remove_user(caller.name)
    remove_user(target.name)


@pytest.fixture
def sudoers():
    """allow(user, *defaults): a sudoers drop-in letting `user` run anything with their own
    password, one try per run (so one wrong password is one failure); removed afterwards."""
    made = []

    def allow(user: str, *defaults: str) -> None:
        path = os.path.join("/etc/sudoers.d", unique_name())
        options = ", ".join(("passwd_tries=1", "!lecture", *defaults))
        with open(path, "w") as handle:
            handle.write(f"Defaults:{user} {options}\n{user} ALL=(ALL:ALL) ALL\n")
        os.chmod(path, 0o440)
        made.append(path)
        check = subprocess.run(["visudo", "-cf", path], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    yield allow
    for path in made:
        os.unlink(path)


class Hijack:
    """What a local attacker prepares (PLATFORM.md): DIR/bin/python3 (any executable) and a
    copy of the standard library in DIR/lib/python3.11 whose encodings/__init__.py appends
    the effective uid of whoever imports it to a marker file."""

    def __init__(self, owner: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="pgpam-hijack-")
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, "bin"))
        python = os.path.join(self.dir, "bin", "python3")
        with open(python, "w") as handle:
            handle.write("#!/bin/sh\nexit 0\n")
        os.chmod(python, 0o755)
        lib = os.path.join(self.dir, "lib", "python3.11")
        shutil.copytree(
            "/usr/lib/python3.11",
            lib,
            symlinks=True,
            ignore=shutil.ignore_patterns(
                "site-packages",
                "dist-packages",
                "test",
                "idlelib",
                "tkinter",
                "ensurepip",
                "lib2to3",
                "turtledemo",
                "__pycache__",
            ),
        )
        self.marker = os.path.join(self.dir, "marker")
        with open(self.marker, "w"):
            pass
        os.chmod(self.marker, 0o666)
        with open(os.path.join(lib, "encodings", "__init__.py"), "a") as handle:
            handle.write(
                "\nimport posix as _pg_posix\n"
                f"_pg_fd = _pg_posix.open({self.marker!r}, _pg_posix.O_WRONLY | "
                "_pg_posix.O_APPEND)\n"
                "_pg_posix.write(_pg_fd, b'%d\\n' % _pg_posix.geteuid())\n"
                "_pg_posix.close(_pg_fd)\n"
            )
        uid = pwd.getpwnam(owner).pw_uid
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, -1)
        os.chown(self.dir, uid, -1)

    @property
    def path(self) -> str:
        return f"{self.dir}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

    def euids(self) -> list[int]:
        with open(self.marker) as handle:
            return [int(line) for line in handle if line.strip()]

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def hijack():
    made = []

    def make(owner: str) -> Hijack:
        made.append(Hijack(owner))
        return made[-1]

    yield make
    for thing in made:
        thing.remove()


def as_user(user: str, command: list[str], password: str, path: str | None = None):
    """`command` run by `user` (an unprivileged process, as a local user would run it), with
    `password` on its standard input and PATH as given."""
    env = {"PATH": path or "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], *command],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=support.LOGIN_TIMEOUT,
        cwd="/",
    )
    return proc.returncode, proc.stdout + proc.stderr


def su(caller, target, password: str, path: str | None = None):
    return as_user(caller.name, ["su", "-c", "true", target.name], password, path)


def sudo(caller, password: str, path: str | None = None):
    return as_user(caller.name, ["sudo", "-S", "-k", "-p", "", "true"], password, path)


# --- real su and real sudo through the shipped exec-entry stacks -------------------------------


def test_su_locks_after_three_wrong_passwords_and_unlock_restores(make_guard, real_service, people):
    caller, target = people
    guard = make_guard()
    real_service("su", packaged_stack(guard.path, stack=PACKAGED_SU))

    assert su(caller, target, target.password)[0] == 0
    for _ in range(3):
        code, output = su(caller, target, "wrong-password")
        assert code != 0 and "Authentication failure" in output
    code, output = su(caller, target, target.password)
    assert code != 0 and LOCKED_LINE in output
    assert "Password" not in output  # refused before the password was asked for

    guard.cli("unlock", target.name)
    assert su(caller, target, target.password)[0] == 0

    records = guard.history(target.name)
    assert [r["outcome"] for r in reversed(records)] == LOCKED_THEN_UNLOCKED
    assert {r["service"] for r in records} == {"su"}
    assert {r["ruser"] for r in records} == {caller.name}
    assert records[1]["reasons"] == "locked"


def test_sudo_locks_its_caller_after_three_wrong_passwords(
    make_guard, real_service, people, sudoers
):
    caller, _target = people
    guard = make_guard()
    real_service("sudo", packaged_stack(guard.path, stack=PACKAGED_SUDO))
    sudoers(caller.name)

    assert sudo(caller, caller.password)[0] == 0
    for _ in range(3):
        assert sudo(caller, "wrong-password")[0] != 0
    code, output = sudo(caller, caller.password)
    assert code != 0 and LOCKED_LINE in output

    guard.cli("unlock", caller.name)
    assert sudo(caller, caller.password)[0] == 0
    records = guard.history(caller.name)
    assert [r["outcome"] for r in reversed(records)] == LOCKED_THEN_UNLOCKED
    assert {r["service"] for r in records} == {"sudo"}
    assert {r["ruser"] for r in records} == {caller.name}


def test_root_su_to_a_user_goes_through_the_su_example(make_guard, real_service, people):
    _caller, target = people
    guard = make_guard()
    real_service("su", packaged_stack(guard.path, stack=PACKAGED_SU))
    proc = subprocess.run(
        ["su", "-c", "id -un", target.name],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=support.LOGIN_TIMEOUT,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == target.name


# --- the PATH hijack ---------------------------------------------------------------------------


def test_su_through_the_exec_entry_runs_no_code_of_the_caller_as_root(
    make_guard, real_service, people, hijack
):
    caller, target = people
    guard = make_guard()
    real_service("su", packaged_stack(guard.path, stack=PACKAGED_SU))
    trap = hijack(caller.name)

    assert su(caller, target, "wrong-password", trap.path)[0] != 0
    assert su(caller, target, target.password, trap.path)[0] == 0

    assert 0 not in trap.euids()
    # the entry really ran: both attempts are recorded
    assert [r["outcome"] for r in guard.history(target.name)] == ["success", "failure"]


def test_sudo_through_the_exec_entry_runs_no_code_of_the_caller_as_root(
    make_guard, real_service, people, sudoers, hijack
):
    caller, _target = people
    guard = make_guard()
    real_service("sudo", packaged_stack(guard.path, stack=PACKAGED_SUDO))
    sudoers(caller.name, "!secure_path")  # else sudo's own PATH would hide the hole
    trap = hijack(caller.name)

    assert sudo(caller, "wrong-password", trap.path)[0] != 0
    assert sudo(caller, caller.password, trap.path)[0] == 0

    assert 0 not in trap.euids()
    assert [r["outcome"] for r in guard.history(caller.name)] == ["success", "failure"]


@pytest.fixture
def setuid_pamtester():
    """make(caller) -> (path, root): a setuid-root copy of pamtester that only `caller` may
    run, named like the throwaway service it is for, inside `root`/usr/bin (a tree that
    `pam-guard doctor --root` can read). Removed afterwards."""
    made = []

    def make(caller: str, service: str):
        root = tempfile.mkdtemp(prefix="pgpam-root-")
        made.append(root)
        os.chmod(root, 0o755)
        bindir = os.path.join(root, "usr", "bin")
        os.makedirs(bindir, mode=0o755)
        os.chmod(os.path.join(root, "usr"), 0o755)
        path = os.path.join(bindir, service)
        shutil.copy(_tool("pamtester"), path)
        os.chown(path, 0, grp.getgrgid(pwd.getpwnam(caller).pw_gid).gr_gid)
        os.chmod(path, 0o4750)
        return path, root

    yield make
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


def test_pam_python_in_a_setuid_program_runs_the_callers_code_as_root(
    make_guard, make_service, people, hijack, setuid_pamtester, syslog
):
    """Why the exec entry exists: the same hijack through a pam_python line does run the
    caller's code as root, before any hook code (which then refuses, and says why)."""
    caller, _target = people
    guard = make_guard()
    service = make_service(packaged_stack(guard.path))
    program, root = setuid_pamtester(caller.name, service)
    trap = hijack(caller.name)

    code, output = as_user(
        caller.name, [program, service, caller.name, "authenticate"], caller.password, trap.path
    )

    assert 0 in trap.euids()  # the caller's code ran as root
    assert code != 0  # on_store_error = deny
    crit = [line for line in syslog.lines() if "setuid program" in line and service in line]
    assert crit and "pam_exec.so seteuid quiet stdout" in crit[0]
    if crit[0].startswith("<"):  # a raw datagram (not journald's text): authpriv.crit
        assert crit[0].startswith("<82>")
    assert guard.events(caller.name) == []  # decided nothing, recorded nothing

    # doctor flags that service: its stack runs pam_python and a setuid program uses it
    os.makedirs(os.path.join(root, "etc", "pam.d"))
    shutil.copy(os.path.join(PAM_D, service), os.path.join(root, "etc", "pam.d", service))
    doctor = subprocess.run(
        [support.PAM_GUARD, "doctor", "--root", root], capture_output=True, text=True, timeout=60
    )
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert service in doctor.stdout and "pam_exec.so" in doctor.stdout


@pytest.mark.parametrize("answer", ["allow", "deny"])
def test_hook_in_a_setuid_process_answers_per_on_store_error(
    make_guard, make_service, people, setuid_pamtester, syslog, answer
):
    caller, _target = people
    guard = make_guard({"failure": {"on_store_error": answer}})
    service = make_service(packaged_stack(guard.path))
    program, _root = setuid_pamtester(caller.name, service)

    code, output = as_user(
        caller.name, [program, service, caller.name, "authenticate", "acct_mgmt"], caller.password
    )

    assert (code == 0) is (answer == "allow"), output
    assert any("setuid program" in line and service in line for line in syslog.lines())
    assert guard.events(caller.name) == []


# --- every shipped stack, as libpam replays it --------------------------------------------------


@pytest.mark.parametrize(
    "stack", [PACKAGED_STACK, PACKAGED_SU, PACKAGED_SUDO], ids=["sshd", "su", "sudo"]
)
def test_every_shipped_stack_passes_setcred_and_sessions(make_guard, make_service, user, stack):
    guard = make_guard()
    service = make_service(packaged_stack(guard.path, stack=stack))
    result = support.pamtester(
        service,
        user.name,
        user.password,
        ops=("authenticate", "setcred", "acct_mgmt", "open_session", "close_session"),
    )
    assert result.ok, result.output
    assert "credential info has successfully been set" in result.output
    sessions = guard.query("SELECT service, ended FROM sessions WHERE username = ?", (user.name,))
    assert len(sessions) == 1 and sessions[0][0] == service and sessions[0][1] is not None


def test_installed_exec_entry_is_the_packaged_one():
    with open(os.path.join(support.ROOT, "packaging", "pam-guard-exec")) as handle:
        expected = handle.read().replace("@PREFIX@", support.PREFIX)
    with open(EXEC) as handle:
        assert handle.read() == expected
    st = os.stat(EXEC)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o755
