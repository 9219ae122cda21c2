"""pam-guard's PAM entry for setuid programs (su, sudo, chsh, passwd, common-auth...).

pam_exec.so runs it as a process of its own, by absolute path (PREFIX/bin/pam-guard-exec,
whose first line starts the venv's interpreter in isolated mode, -I: no PYTHON* variable,
no user site, no current directory on the path), with PAM's own environment only:

    auth     requisite                pam_exec.so seteuid quiet stdout PREFIX/bin/pam-guard-exec preauth
    auth     [success=1 default=bad]  pam_unix.so
    auth     [default=die]            pam_exec.so seteuid quiet PREFIX/bin/pam-guard-exec authfail
    auth     required                 pam_permit.so
    account  required                 pam_exec.so seteuid quiet stdout PREFIX/bin/pam-guard-exec
    session  optional                 pam_exec.so seteuid quiet PREFIX/bin/pam-guard-exec

Modes, arguments (config=PATH), records and messages are the pam_python hook's: this module
reads PAM_TYPE, PAM_USER, PAM_RHOST, PAM_TTY, PAM_RUSER and PAM_SERVICE from the environment
into an object with pamh's attributes and calls the hook's own pam_sm_* functions. The one
line for the user goes to stdout (pam_exec's `stdout` hands it to the conversation); the PAM
code becomes the exit status (pam_exec answers any non-zero status with PAM_SYSTEM_ERR).
"""

from __future__ import annotations

import os
import sys

from pam_guard import hook

# Linux-PAM's values (security/_pam_types.h); tests/pam/test_exec_entry.py holds them to
# python-pam's copy of the same header.
PAM_SUCCESS = 0
PAM_PERM_DENIED = 6
PAM_AUTH_ERR = 7
PAM_USER_UNKNOWN = 10
PAM_ACCT_EXPIRED = 13
PAM_IGNORE = 25
PAM_ERROR_MSG = 3
PAM_TEXT_INFO = 4

# PAM_TYPE -> the hook function for it (pam_exec sets PAM_TYPE to the management group).
_PHASES = {
    "auth": hook.pam_sm_authenticate,
    "account": hook.pam_sm_acct_mgmt,
    "open_session": hook.pam_sm_open_session,
    "close_session": hook.pam_sm_close_session,
}


class _NoUser(Exception):
    """PAM_USER is not set: pam_exec cannot ask the user for it."""


class ExecPamh:
    """What the hook reads of pamh, from the environment pam_exec gives its command."""

    PAM_SUCCESS = PAM_SUCCESS
    PAM_PERM_DENIED = PAM_PERM_DENIED
    PAM_AUTH_ERR = PAM_AUTH_ERR
    PAM_USER_UNKNOWN = PAM_USER_UNKNOWN
    PAM_ACCT_EXPIRED = PAM_ACCT_EXPIRED
    PAM_IGNORE = PAM_IGNORE
    PAM_ERROR_MSG = PAM_ERROR_MSG
    PAM_TEXT_INFO = PAM_TEXT_INFO
    exception = _NoUser
    # pam_exec hands no password over here (expose_authtok is not used): a repeated wrong
    # password counts again on su and sudo (lockout.ignore_repeated_password).
    authtok = None

    def __init__(self, environ, out=None) -> None:
        self._environ = environ  # bytes -> bytes (os.environb): names may not be UTF-8
        self._out = out or sys.stdout
        # open_session and close_session run in one su/sudo process, this one's parent.
        self.application_pid = os.getppid()

    def _text(self, name: str):
        """An item as text; raises UnicodeDecodeError (as pamh does) when not UTF-8."""
        value = self._environ.get(name.encode())
        return None if value is None else value.decode("utf-8")

    @property
    def service(self):
        return self._text("PAM_SERVICE")

    @property
    def rhost(self):
        return self._text("PAM_RHOST")

    @property
    def tty(self):
        return self._text("PAM_TTY")

    @property
    def ruser(self):
        return self._text("PAM_RUSER")

    def get_user(self, _prompt=None):
        user = self._text("PAM_USER")
        if not user:
            raise _NoUser("PAM_USER is not set")
        return user

    @staticmethod
    def Message(style, text):  # noqa: N802 - pamh's name
        return (style, text)

    def conversation(self, message) -> None:
        """The user's one line, to stdout: pam_exec's `stdout` passes it to the program."""
        self._out.write(message[1] + "\n")
        self._out.flush()


def exit_status(code: int) -> int:
    """The process's exit status for a PAM code: 0 for success (and for a line the hook
    leaves alone, as PAM_IGNORE would), the code itself otherwise."""
    return 0 if code in (PAM_SUCCESS, PAM_IGNORE) else code


def main(argv=None, environ=None) -> int:
    """Run the hook function for PAM_TYPE; returns the exit status."""
    os.umask(0o077)  # the caller's umask must not shape files made as root (a new store)
    # Only the stack line's config=PATH chooses the config, never a variable in PAM's
    # environment (pam_env may put one there).
    for name in [n for n in os.environ if n.startswith("PAM_GUARD_")]:
        del os.environ[name]
    argv = list(sys.argv if argv is None else argv)
    environ = os.environb if environ is None else environ
    pam_type = environ.get(b"PAM_TYPE", b"").decode("ascii", "replace")
    phase = _PHASES.get(pam_type)
    if phase is None:
        hook.log(
            hook.syslog.LOG_WARNING,
            f"exec entry: PAM_TYPE {pam_type!r} is not one "
            "pam-guard guards (auth, account, session): ignored",
        )
        return 0
    return exit_status(phase(ExecPamh(environ), 0, argv))
