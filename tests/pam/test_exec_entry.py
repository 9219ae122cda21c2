"""The exec entry run as pam_exec runs it: by absolute path, with PAM's variables only.

What the caller of a setuid program controls (PYTHON* variables, PAM_GUARD_* variables put in
PAM's environment, the umask) chooses nothing; odd items are handled as the hook handles them.
"""

from __future__ import annotations

import subprocess

import pam.__internals as libpam

from pam_guard import exec_entry
from tests.support.pam import EXEC, unique_name


def run_entry(guard, pam_type: str, user, *args: str, extra_env=None):
    """One run of the installed entry with pam_exec's environment; (exit status, stdout)."""
    env = {b"PAM_TYPE": pam_type.encode(), b"PAM_SERVICE": b"su", b"PAM_RUSER": b"someone"}
    if user is not None:
        env[b"PAM_USER"] = user if isinstance(user, bytes) else user.encode()
    env.update(extra_env or {})
    proc = subprocess.run(
        [EXEC, *args, f"config={guard.path}"], env=env, capture_output=True, timeout=30, cwd="/"
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def test_pam_codes_are_linux_pams():
    for name in (
        "PAM_SUCCESS",
        "PAM_PERM_DENIED",
        "PAM_AUTH_ERR",
        "PAM_USER_UNKNOWN",
        "PAM_ACCT_EXPIRED",
        "PAM_IGNORE",
        "PAM_ERROR_MSG",
    ):
        assert getattr(exec_entry, name) == getattr(libpam, name), name


def test_each_phase_records_as_the_hook_does(make_guard):
    guard = make_guard()
    user = unique_name()
    assert run_entry(guard, "auth", user, "preauth")[0] == 0
    assert run_entry(guard, "auth", user, "authfail")[0] != 0  # a failure always fails
    assert run_entry(guard, "account", user)[0] == 0
    assert [e[1] for e in guard.events(user)] == ["failure", "success"]
    assert guard.query("SELECT service, ruser FROM events WHERE username = ?", (user,)) == [
        ("su", "someone"),
        ("su", "someone"),
    ]


def test_a_refusal_prints_one_line_and_fails(make_guard):
    guard = make_guard()
    user = unique_name()
    for _ in range(3):
        run_entry(guard, "auth", user, "authfail")
    code, out = run_entry(guard, "auth", user, "preauth")
    assert code != 0
    assert out.splitlines() == [
        "Account locked: too many failed logins. Contact your administrator."
    ]


def test_python_variables_choose_no_code(make_guard, tmp_path):
    """-I: PYTHONPATH, PYTHONSTARTUP and PYTHONINSPECT of the caller are not read."""
    guard = make_guard()
    marker = tmp_path / "ran"
    fake = tmp_path / "pam_guard"
    fake.mkdir()
    trap = f"open({str(marker)!r}, 'w').write('x')\n"
    (fake / "__init__.py").write_text(trap)
    (fake / "exec_entry.py").write_text(trap + "def main():\n    return 0\n")
    (tmp_path / "startup.py").write_text(trap)
    (tmp_path / "sitecustomize.py").write_text(trap)
    user = unique_name()
    code, _out = run_entry(
        guard,
        "auth",
        user,
        "authfail",
        extra_env={
            b"PYTHONPATH": str(tmp_path).encode(),
            b"PYTHONSTARTUP": str(tmp_path / "startup.py").encode(),
            b"PYTHONINSPECT": b"1",
            b"PYTHONHOME": str(tmp_path).encode(),
        },
    )
    assert not marker.exists()
    assert code != 0 and [e[1] for e in guard.events(user)] == ["failure"]


def test_config_comes_from_the_stack_line_only(make_guard):
    guard = make_guard()
    other = make_guard({"failure": {"on_store_error": "allow"}})
    user = unique_name()
    run_entry(
        guard,
        "auth",
        user,
        "authfail",
        extra_env={
            b"PAM_GUARD_CONFIG": other.path.encode(),
            b"PAM_GUARD_CACHE_DIR": other.cache_dir.encode(),
        },
    )
    assert [e[1] for e in guard.events(user)] == ["failure"]
    assert other.events(user) == []


def test_a_name_that_is_not_utf8_is_refused_and_recorded_escaped(make_guard):
    guard = make_guard()
    code, out = run_entry(guard, "auth", b"bad\xffname", "preauth")
    assert code != 0 and "Login refused." in out
    assert guard.events() == [("bad\\xffname", "denied", "invalid_user", None, None)]


def test_no_user_or_unknown_phase(make_guard):
    guard = make_guard()
    assert run_entry(guard, "auth", None, "preauth")[0] != 0  # nobody to let in
    assert run_entry(guard, "password", unique_name())[0] == 0  # not ours: left alone
    assert guard.events() == []
