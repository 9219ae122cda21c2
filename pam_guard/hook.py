"""The pam_python hook: PAM calls in, Gate decisions out, PAM return codes back (SPEC §8).

Stack (pam_faillock's pattern):

    auth     requisite                pam_python.so /opt/pam-guard/hook.py preauth
    auth     [success=1 default=bad]  pam_unix.so
    auth     [default=die]            pam_python.so /opt/pam-guard/hook.py authfail
    account  required                 pam_python.so /opt/pam-guard/hook.py
    session  optional                 pam_python.so /opt/pam-guard/hook.py

pam_python loads this file once per login process, so everything imported here is paid by
every login: no SQLAlchemy, no tomllib, no logging (shared/PERF.md). Nothing raises out of a
pam_sm_* function: trouble is logged to syslog (authpriv, tag pam-guard) and the login gets
`failure.on_store_error` (a config that cannot be read means deny).

Never in a setuid program's stack (su, sudo, common-auth): pam_python's interpreter takes its
standard library from the caller's PATH, so the caller's code runs as root before this file
is read. Such stacks use the exec entry (pam_guard.exec_entry, run by pam_exec.so); when this
hook finds itself in a setuid process anyway it says so at LOG_CRIT, records nothing and
answers per `failure.on_store_error`. `pam_guard.exec_entry` drives the same pam_sm_*
functions with an object that reads PAM's environment instead of pamh.
"""

from __future__ import annotations

import os
import syslog

from pam_guard.logline import attempt_line, shown
from pam_guard.logline import send as log
from policy.addresses import parse_address
from policy.messages import USER_MESSAGES, user_message
from policy.types import (
    DIRECTORY_DISABLED,
    DIRECTORY_LOCKED,
    INVALID_USER,
    LOCKED,
    PAM,
    STORE_ERROR,
)

LOCK_REASONS = (LOCKED, DIRECTORY_LOCKED, DIRECTORY_DISABLED)
MODES = ("preauth", "authfail")

_gates: dict = {}  # config path -> Gate, for the life of this login process


def parse_args(argv) -> tuple[str | None, str | None]:
    """(config path, mode word) from the module arguments after the hook file."""
    config = None
    mode = None
    for arg in list(argv)[1:]:
        if arg.startswith("config="):
            config = arg.split("=", 1)[1]
        elif arg in MODES:
            mode = arg
        else:
            log(syslog.LOG_WARNING, f"ignoring unknown module argument {arg!r}")
    return config, mode


def gate_for(config):
    """The Gate for this config, made once per process."""
    gate = _gates.get(config)
    if gate is None:
        from pam_guard.config import load_settings
        from pam_guard.gate import Gate

        gate = Gate(load_settings(config))
        _gates[config] = gate
    return gate


def _item(pamh, name):
    """A PAM item as text; an item that is not valid UTF-8 comes back escaped, never raw."""
    try:
        return getattr(pamh, name)
    except UnicodeDecodeError as exc:  # pam_python decodes items as UTF-8 (PLATFORM.md)
        from policy.usernames import escape

        return escape(exc.object) if isinstance(exc.object, bytes) else None
    except Exception:  # noqa: BLE001 - an unreadable item is an absent one
        return None


def user_of(pamh):
    """The user name as PAM holds it (asking for it if the application has not set it).

    A name that is not valid UTF-8 comes back as its bytes, for the gate to refuse as
    `invalid_user` and record escaped; None when PAM has no name to give.
    """
    try:
        return pamh.get_user(None)
    except UnicodeDecodeError as exc:
        return exc.object if isinstance(exc.object, bytes) else b"\xff"
    except pamh.exception:
        return None


def build_attempt(pamh, gate, user):
    """The Attempt for this PAM call: PAM_RHOST parsed (a host name or garbage is no
    address, kept as given; never resolved), the tty as client detail, PAM_RUSER (who ran
    su or sudo)."""
    rhost = _item(pamh, "rhost") or None  # an empty PAM_RHOST is a local login
    return gate.attempt(
        user,
        PAM,
        _item(pamh, "service") or "",
        parse_address(rhost),
        rhost,
        _item(pamh, "tty"),
        None,
        _item(pamh, "ruser") or None,
    )


def with_digest(pamh, gate, attempt):
    """`attempt` with the keyed digest of the wrong password PAM holds (PAM_AUTHTOK, set by
    the password module that failed), for lockout.ignore_repeated_password."""
    from pam_guard.digests import digest

    def warn(text):
        log(syslog.LOG_WARNING, text)

    password = _item(pamh, "authtok")
    if isinstance(attempt.user, bytes):
        return attempt
    return attempt._replace(digest=digest(gate.settings.source, attempt.user, password, warn))


def in_setuid_process() -> bool:
    """True in a setuid or setgid program (real and effective ids differ): its caller chose
    the environment pam_python's interpreter started in."""
    return os.getuid() != os.geteuid() or os.getgid() != os.getegid()


def refuse_setuid(pamh, argv, phase: str) -> int:
    """The hook runs in a setuid program's stack: say so loudly, decide nothing, answer per
    `failure.on_store_error` (a config that cannot be read means deny)."""
    from pam_guard.entries import exec_module_args, prefix_of_hook

    args = list(argv)
    hook = args[0] if args else ""
    log(
        syslog.LOG_CRIT,
        f"{phase}: pam_python runs in setuid program {shown(_item(pamh, 'service'))} "
        f"(uid {os.getuid()}, euid {os.geteuid()}): any local user can run code as root "
        f"through it. Replace the pam_python.so line by: "
        f"{exec_module_args(args[1:], phase != 'authfail', prefix_of_hook(hook))} "
        f"(examples in {prefix_of_hook(hook)}/share/pam.d/); run 'pam-guard doctor'",
    )
    if phase == "authfail":
        return pamh.PAM_AUTH_ERR
    if phase == "session":
        return pamh.PAM_IGNORE
    try:
        config, _mode = parse_args(argv)
        if gate_for(config).settings.failure.on_store_error == "allow":
            return pamh.PAM_SUCCESS
    except Exception as exc:  # noqa: BLE001 - no settings: deny
        log(syslog.LOG_ERR, f"{phase}: {type(exc).__name__}: {exc}")
    say(pamh, USER_MESSAGES[STORE_ERROR])
    return pamh.PAM_PERM_DENIED


def say(pamh, text: str) -> None:
    try:
        pamh.conversation(pamh.Message(pamh.PAM_ERROR_MSG, text))
    except Exception:  # noqa: BLE001 - a non-interactive caller has no conversation
        pass


def refuse(pamh, verdict, phase: str, attempt, gate) -> int:
    """Tell the user one line, log the details, return the PAM code for this denial."""
    reasons = verdict.reasons or (STORE_ERROR,)
    first = reasons[0]
    say(pamh, user_message(first, verdict.until, attempt.time))
    detail = gate.last_error if first in (STORE_ERROR, INVALID_USER) else ""
    log(
        syslog.LOG_NOTICE,
        attempt_line(
            "refused",
            attempt,
            ",".join(reasons),
            phase=phase,
            **({"detail": detail} if detail else {}),
        ),
    )
    if first in LOCK_REASONS:
        return pamh.PAM_ACCT_EXPIRED
    return pamh.PAM_PERM_DENIED


def on_error(pamh, phase: str, exc: BaseException, config) -> int:
    """Any failure outside the gate's own handling: log it, answer per on_store_error.

    A config that cannot be read gives no on_store_error to follow: deny. `authfail` always
    fails (it only runs after a wrong password).
    """
    log(syslog.LOG_ERR, f"{phase}: {type(exc).__name__}: {exc}; config {config or 'default'}")
    if phase == "authfail":
        return pamh.PAM_AUTH_ERR
    gate = _gates.get(config)
    if gate is not None and gate.settings.failure.on_store_error == "allow":
        return pamh.PAM_SUCCESS
    say(pamh, USER_MESSAGES[STORE_ERROR])
    return pamh.PAM_PERM_DENIED


def _no_user(pamh, phase: str):
    """PAM could not give a user name at all: nothing to record, nobody to let in."""
    log(syslog.LOG_NOTICE, f"{phase}: no user name from PAM: refused")
    return pamh.PAM_USER_UNKNOWN


def pam_sm_authenticate(pamh, flags, argv):
    """`preauth`: refuse a locked account before the password; `authfail`: record a failure."""
    config, mode = None, None
    try:
        config, mode = parse_args(argv)
        if mode is None:
            log(syslog.LOG_ERR, "auth line without 'preauth' or 'authfail': ignored")
            return pamh.PAM_IGNORE
        if in_setuid_process():
            return refuse_setuid(pamh, argv, mode)
        gate = gate_for(config)
        user = user_of(pamh)
        if user is None:
            return _no_user(pamh, mode)
        attempt = build_attempt(pamh, gate, user)
        if mode == "preauth":
            verdict = gate.preauth(attempt)
            if verdict.allowed:
                if verdict.reasons:  # store trouble let in per on_store_error: still say it
                    log(syslog.LOG_WARNING, f"preauth: let in despite {gate.last_error}")
                return pamh.PAM_SUCCESS
            return refuse(pamh, verdict, mode, attempt, gate)
        # Only reached after a failed password: record it and fail, whatever the store says
        # (the stack's [default=die] ends the login with the password module's error).
        if gate.settings.lockout.ignore_repeated_password:
            attempt = with_digest(pamh, gate, attempt)
        verdict = gate.record_failure(attempt)
        if INVALID_USER in verdict.reasons:
            log(syslog.LOG_NOTICE, f"authfail: {gate.last_error}")
        elif STORE_ERROR in verdict.reasons:
            log(
                syslog.LOG_ERR,
                f"authfail: failure of {shown(user)} not recorded: {gate.last_error}",
            )
        if verdict.lock is not None:
            log(syslog.LOG_NOTICE, attempt_line("lock", attempt, LOCKED, detail=verdict.lock[0]))
        return pamh.PAM_AUTH_ERR
    except Exception as exc:  # noqa: BLE001 - never crash the calling program
        return on_error(pamh, mode or "auth", exc, config)


def pam_sm_setcred(pamh, flags, argv):
    """No credentials to set, and success (as pam_faillock's): libpam replays the auth lines
    for setcred, and a stack whose password module's success is a jump (`[success=1 ...]`)
    would otherwise end the replay with no result, and refuse (su, login)."""
    return pamh.PAM_SUCCESS


def pam_sm_acct_mgmt(pamh, flags, argv):
    """The password was good: apply every rule, record the success or the denial."""
    config = None
    try:
        config, _mode = parse_args(argv)
        if in_setuid_process():
            return refuse_setuid(pamh, argv, "account")
        gate = gate_for(config)
        user = user_of(pamh)
        if user is None:
            return _no_user(pamh, "account")
        attempt = build_attempt(pamh, gate, user)
        verdict = gate.login(attempt)
        if verdict.allowed:
            if verdict.reasons:
                log(
                    syslog.LOG_NOTICE,
                    f"account: let in with {','.join(verdict.reasons)}"
                    + (f" ({gate.last_error})" if STORE_ERROR in verdict.reasons else ""),
                )
            return pamh.PAM_SUCCESS
        return refuse(pamh, verdict, "account", attempt, gate)
    except Exception as exc:  # noqa: BLE001 - never crash the calling program
        return on_error(pamh, "account", exc, config)


def _session_key(pamh) -> str:
    # open_session and close_session run in the same login process (the exec entry's parent:
    # its `application_pid`); the host is the `nas`.
    pid = getattr(pamh, "application_pid", None) or os.getpid()
    return f"{pid}:{_item(pamh, 'tty') or '-'}"


def _session(pamh, argv, opening: bool):
    try:
        config, _mode = parse_args(argv)
        if in_setuid_process():
            return refuse_setuid(pamh, argv, "session")
        gate = gate_for(config)
        user = user_of(pamh)
        if not user or isinstance(user, bytes):
            return pamh.PAM_IGNORE
        nas = os.uname().nodename
        if opening:
            tell_failures(pamh, gate, user)
            rhost = _item(pamh, "rhost")
            ok = gate.session_start(
                user,
                PAM,
                _item(pamh, "service") or "",
                _session_key(pamh),
                nas,
                parse_address(rhost) if rhost else None,
                _item(pamh, "tty"),
            )
        else:
            ok = gate.session_stop(user, PAM, _session_key(pamh), nas)
        if not ok:
            log(syslog.LOG_WARNING, f"session: not recorded: {gate.last_error}")
        return pamh.PAM_SUCCESS
    except Exception as exc:  # noqa: BLE001 - sessions never block a login
        log(syslog.LOG_ERR, f"session: internal error {type(exc).__name__}: {exc}")
        return pamh.PAM_IGNORE


def tell_failures(pamh, gate, user) -> None:
    """One line at session open when the user's password failed since their last login
    ("3 failed logins since your last login, last from 203.0.113.7 at 10:42"), as
    pam_lastlog's showfailed does. Never stops the session."""
    try:
        found = gate.failed_since_last_login(user)
    except Exception as exc:  # noqa: BLE001 - store trouble: the session goes on
        log(syslog.LOG_WARNING, f"session: failures since last login not read: {exc}")
        return
    if found is None:
        return
    count, when, where = found
    import time

    at = time.strftime("%H:%M", time.localtime(when))
    if time.time() - when > 86400:
        at = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
    plural = "s" if count != 1 else ""
    text = f"{count} failed login{plural} since your last login, last from {where} at {at}"
    try:
        pamh.conversation(pamh.Message(pamh.PAM_TEXT_INFO, text))
    except Exception:  # noqa: BLE001 - a caller with no conversation
        pass


def pam_sm_open_session(pamh, flags, argv):
    """Track the session (concurrent and session-limit rules); never blocks a login."""
    return _session(pamh, argv, True)


def pam_sm_close_session(pamh, flags, argv):
    """End the session opened by this login process."""
    return _session(pamh, argv, False)
