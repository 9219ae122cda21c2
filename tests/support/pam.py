"""Real-PAM fixtures: test users, /etc/pam.d service files, a private config and store,
and a helper that drives a stack with pamtester, one process a login (as sshd forks one per
connection).

Why not python-pam: pam_python.so embeds the system interpreter, and loading it into a
process that already runs Python crashes that process (SIGSEGV inside pam_authenticate,
even with a do-nothing hook; Debian 12, libpam-python 1.1.0~git20220701). A Python program
cannot drive a pam_python stack, so the tests use pamtester.

Everything global gets a unique name with the `pgpam` prefix and is removed on teardown.
Tests using these run as root.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import namedtuple

from pam_guard.config import toml_value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "/opt/pam-guard"
HOOK = f"{PREFIX}/hook.py"
PAM_GUARD = f"{PREFIX}/bin/pam-guard"
VENV_PYTHON = f"{PREFIX}/bin/python"
EXEC = f"{PREFIX}/bin/pam-guard-exec"
PACKAGED_STACK = os.path.join(ROOT, "packaging", "pam.d", "pam-guard-sshd")
PACKAGED_SU = os.path.join(ROOT, "packaging", "pam.d", "pam-guard-su")
PACKAGED_SUDO = os.path.join(ROOT, "packaging", "pam.d", "pam-guard-sudo")
PAM_D = "/etc/pam.d"
LOGIN_TIMEOUT = 30  # seconds: a login that takes longer than this is a hang, not slowness

LoginResult = namedtuple("LoginResult", "ok returncode output")
LoginResult.__doc__ = (
    "One login: ok (every PAM call succeeded), the exit code, and what was printed."
)

User = namedtuple("User", "name password")


def unique_name(prefix: str = "pgpam") -> str:
    """A short name nobody else uses: prefix + random hex (valid as user and service name)."""
    return f"{prefix}{secrets.token_hex(4)}"


def have_pam_tools() -> str | None:
    """Why real-PAM tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "real PAM tests need root"
    for path in (HOOK, PAM_GUARD, "/usr/bin/pamtester"):
        if not os.path.exists(path):
            return f"{path} missing: run packaging/install.sh (and apt-get install pamtester)"
    if not any(
        os.path.exists(p)
        for p in (
            "/lib/x86_64-linux-gnu/security/pam_python.so",
            "/usr/lib/x86_64-linux-gnu/security/pam_python.so",
            "/lib/security/pam_python.so",
        )
    ):
        return "pam_python.so missing: apt-get install libpam-python"
    return None


# --- users --------------------------------------------------------------------------------------


def create_user(
    name: str | None = None, password: str | None = None, shell: str = "/usr/sbin/nologin"
) -> User:
    """A real local user with a password (no home; no shell unless `shell` names one), for
    pam_unix to check."""
    name = name or unique_name()
    password = password or "pw-" + secrets.token_hex(8)
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", shell, name],
        check=True,
        capture_output=True,
        timeout=30,
    )
    subprocess.run(
        ["chpasswd"],
        input=f"{name}:{password}\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=30,
    )
    return User(name, password)


def remove_user(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True, timeout=30)


# --- PAM service files --------------------------------------------------------------------------


def write_service(text: str, name: str | None = None) -> str:
    """Write /etc/pam.d/<name> (unique by default); returns the service name."""
    name = name or unique_name()
    path = os.path.join(PAM_D, name)
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)
    return name


def remove_service(name: str) -> None:
    try:
        os.unlink(os.path.join(PAM_D, name))
    except FileNotFoundError:
        pass


def packaged_stack(
    config: str, hook: str = HOOK, unix_nodelay: bool = True, stack: str = PACKAGED_STACK
) -> str:
    """A shipped example stack (packaging/pam.d/, the sshd one by default) for a test config.

    Only two things change: `config=PATH` after every reference to either entry (the hook
    file, the exec entry), and (by default) pam_unix's `nodelay`, so that a wrong password
    does not cost the test its ~2 s delay.
    """
    with open(stack) as handle:
        text = handle.read()
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        line = line.replace(f"{HOOK}", f"{hook} config={config}")
        line = line.replace(f"{EXEC} ", f"{EXEC} config={config} ")
        if line.endswith(EXEC):
            line += f" config={config}"
        if unix_nodelay:
            line = re.sub(r"\bpam_unix\.so\b(?!\S)", "pam_unix.so nodelay", line, count=1)
        lines.append(line)
    return "\n".join(lines) + "\n"


# --- a private config and store -----------------------------------------------------------------


class GuardConfig:
    """A config (0600 in a 0700 directory), its audit and digest keys and an SQLite store, in a
    temp dir.

    `env` holds the environment a login or the admin command needs (a private settings cache,
    so no test touches /run/pam-guard).
    """

    def __init__(self, sections: dict | None = None, base: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="pgpam-", dir=base)
        os.chmod(self.dir, 0o700)
        self.store_path = os.path.join(self.dir, "store", "pam-guard.db")
        self.url = f"sqlite:///{self.store_path}"
        self.path = os.path.join(self.dir, "pam-guard.toml")
        self.cache_dir = os.path.join(self.dir, "cache")
        self.env = dict(os.environ, PAM_GUARD_CACHE_DIR=self.cache_dir)
        with open(os.path.join(self.dir, "audit.key"), "w") as handle:
            handle.write(secrets.token_hex(32))
        os.chmod(os.path.join(self.dir, "audit.key"), 0o600)
        # lockout.ignore_repeated_password's key, as packaging/install.sh makes it
        with open(os.path.join(self.dir, "digest.key"), "w") as handle:
            handle.write(secrets.token_hex(32))
        os.chmod(os.path.join(self.dir, "digest.key"), 0o600)
        try:
            self.write(sections or {})
            from store.migrate import create_or_upgrade

            create_or_upgrade(self.url)
        except BaseException:
            self.remove()  # a half-made config is nobody's to clean up later
            raise

    def write(self, sections: dict) -> None:
        """(Re)write the config: {section: {key: value}}; the store URL and a 1 s timeout
        are filled in unless given. The snapshot cache sees the change (mtime/size)."""
        store = {"url": self.url, "timeout_seconds": 1, **sections.get("store", {})}
        body = ["[store]"] + [f"{k} = {toml_value(v)}" for k, v in store.items()]
        for section, values in sections.items():
            if section == "store":
                continue
            body.append(f"\n[{section}]")
            body += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(body) + "\n")
        os.replace(tmp, self.path)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run the installed admin command against this config."""
        proc = subprocess.run(
            [PAM_GUARD, "--config", self.path, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pam-guard {' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}"
            )
        return proc

    def query(self, sql: str, params=()) -> list:
        """Rows from the store, read with plain sqlite3 (what the tests check was recorded)."""
        conn = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def execute(self, sql: str, params=()) -> None:
        """Change the store directly (e.g. age events to step past a time window)."""
        conn = sqlite3.connect(self.store_path, timeout=5)
        try:
            with conn:
                conn.execute(sql, params)
        finally:
            conn.close()

    def events(self, user: str | None = None) -> list:
        """(username, outcome, reasons, address, address_raw) of recorded events, oldest first."""
        sql = "SELECT username, outcome, reasons, address, address_raw FROM events"
        if user is None:
            return self.query(sql + " ORDER BY id")
        return self.query(sql + " WHERE username = ? ORDER BY id", (user,))

    def history(self, user: str) -> list[dict]:
        """`pam-guard history USER --json`, as an admin reads it: newest first."""
        return json.loads(self.cli("history", user, "--json").stdout)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# What a user's history holds, oldest first, after a success, three wrong passwords (the third
# locks), a refusal while locked and the success after an admin's unlock.
LOCKED_THEN_UNLOCKED = ["success", "failure", "failure", "failure", "denied", "success"]


# --- driving a stack ----------------------------------------------------------------------------


def pamtester(
    service: str,
    user,
    password: str | None = None,
    rhost: str | None = None,
    ops=("authenticate", "acct_mgmt"),
    env=None,
) -> LoginResult:
    """One login with pamtester; `user` may be bytes (names that are not valid UTF-8)."""
    cmd: list = ["pamtester"]
    if rhost is not None:
        cmd += ["-I", f"rhost={rhost}"]
    cmd += [service, user, *ops]
    stdin = b"" if password is None else password.encode() + b"\n"
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=LOGIN_TIMEOUT)
    output = (proc.stdout + proc.stderr).decode("utf-8", "backslashreplace")
    return LoginResult(proc.returncode == 0, proc.returncode, output)


# --- syslog -------------------------------------------------------------------------------------


class SyslogCapture:
    """Collects what is sent to /dev/log while it runs (when no syslog daemon owns it).

    `lines(tag)` returns the messages received so far. `available` is False when another
    daemon owns /dev/log; then `lines` reads `journalctl` if there is one.
    """

    def __init__(self, path: str = "/dev/log") -> None:
        import socket
        import threading

        self.path = path
        self._messages: list[str] = []
        self._sock = None
        self._since = time.strftime("%Y-%m-%d %H:%M:%S")
        self.available = False
        if os.path.exists(path):
            self.available = shutil.which("journalctl") is not None
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(path)
        except OSError:
            sock.close()
            return
        os.chmod(path, 0o666)
        sock.settimeout(0.2)
        self._sock = sock
        self.available = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self._messages.append(data.decode("utf-8", "backslashreplace"))

    def lines(self, tag: str = "pam-guard", wait: float = 0.5) -> list[str]:
        """Messages with `tag` received so far (waits briefly for datagrams in flight)."""
        time.sleep(wait)
        if self._sock is None and self.available:
            proc = subprocess.run(
                ["journalctl", "-q", "-o", "cat", "-t", tag, "--since", self._since],
                capture_output=True,
                text=True,
                timeout=30,
            )
            return proc.stdout.splitlines()
        return [m for m in list(self._messages) if f"{tag}[" in m or f"{tag}:" in m]

    def close(self) -> None:
        if self._sock is None:
            return
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._sock = None
