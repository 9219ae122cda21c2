"""A private OpenSSH server on 127.0.0.1, for logins as admins' users make them.

sshd names its PAM service after the name it was started under (`__progname`), so the server
runs from a symlink named like a throwaway /etc/pam.d service: its own stack, never the host's
sshd file. Host key, config and pid file live in a temp dir; the server runs in the
foreground (-D) and is stopped by `stop`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

from tests.support.fixtures import terminate

SSHD = "/usr/sbin/sshd"


def have_ssh_tools() -> str | None:
    """Why sshd tests cannot run here, or None when they can."""
    for tool in (SSHD, "/usr/bin/ssh", "/usr/bin/sshpass", "/usr/bin/ssh-keygen"):
        if not os.path.exists(tool):
            return f"{tool} missing (scripts/test.sh installs openssh-server, sshpass)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sshd:
    """sshd for PAM service `service` on 127.0.0.1:`port`, keyboard-interactive through PAM
    (so the user sees PAM's messages, as PLATFORM.md notes the password method does not)."""

    def __init__(self, service: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="pgpam-sshd-")
        self.service = service
        self.port = free_port()
        self.program = os.path.join(self.dir, service)
        os.symlink(SSHD, self.program)
        key = os.path.join(self.dir, "host_ed25519")
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as handle:
            handle.write(f"""ListenAddress 127.0.0.1
Port {self.port}
HostKey {key}
PidFile {self.dir}/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
MaxAuthTries 1
LoginGraceTime 20
""")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.log = open(os.path.join(self.dir, "sshd.log"), "w")
        self.proc = subprocess.Popen(
            [self.program, "-D", "-e", "-f", self.config], stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port}: {self.output()}")

    def login(self, user: str, password: str, command: str = "true"):
        """One ssh login with sshpass answering the password prompt: (exit code, output)."""
        proc = subprocess.run(
            [
                "sshpass",
                "-p",
                password,
                "ssh",
                "-p",
                str(self.port),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "PreferredAuthentications=keyboard-interactive",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ConnectTimeout=10",
                f"{user}@127.0.0.1",
                command,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as handle:
            return handle.read()

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
