"""pam-guard's two PAM entries and the stack line for each, in one place.

- Daemons (sshd, login, dovecot, vsftpd): `pam_python.so PREFIX/hook.py`, the fastest: the
  interpreter lives in the login process.
- Setuid programs (su, sudo, chsh, chfn, passwd, newgrp, pkexec) and files they include
  (common-auth): `pam_exec.so seteuid quiet [stdout] PREFIX/bin/pam-guard-exec`, a separate
  process started from an absolute path in Python's isolated mode. pam_python takes its
  standard library from beside the first `python3` on the caller's PATH, and the caller of a
  setuid program chooses PATH: there pam_python would run the caller's code as root.

Both the hook (when it finds itself in a setuid process) and `pam-guard doctor` name the line
to use instead with `exec_line`.
"""

from __future__ import annotations

import os

DEFAULT_PREFIX = "/opt/pam-guard"
HOOK_FILE = "hook.py"
EXEC_FILE = "bin/pam-guard-exec"


def exec_command(prefix: str = DEFAULT_PREFIX) -> str:
    """The absolute path pam_exec runs."""
    return os.path.join(prefix, EXEC_FILE)


def prefix_of_hook(hook_path: str) -> str:
    """The install prefix a pam_python line's hook file lives in (PREFIX/hook.py)."""
    return os.path.dirname(hook_path) or DEFAULT_PREFIX


def exec_module_args(args, shows_user: bool = True, prefix: str = DEFAULT_PREFIX) -> str:
    """pam_exec.so's arguments for pam-guard's exec entry with the hook's own `args` (mode
    word, config=PATH). `stdout` passes the entry's one line for the user to the program's
    conversation; authfail says nothing, so it goes without."""
    options = "seteuid quiet stdout" if shows_user else "seteuid quiet"
    return " ".join(["pam_exec.so", options, exec_command(prefix), *args])


def exec_line(pam_type: str, control: str, args, prefix: str = DEFAULT_PREFIX) -> str:
    """The whole stack line that runs the exec entry in place of a pam_python line with the
    same type, control and hook arguments."""
    shows_user = "authfail" not in args
    return f"{pam_type:<8} {control:<24} {exec_module_args(args, shows_user, prefix)}"
