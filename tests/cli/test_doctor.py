"""`pam-guard doctor --root DIR` against pam.d trees made here: include chains, substacks,
comments, continuations, bracket controls; setuid programs found by their mode and libpam
(SPEC §7)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.cli.conftest import PAM_GUARD

HOOK = "pam_python.so /opt/pam-guard/hook.py"
EXEC = "pam_exec.so seteuid quiet stdout /opt/pam-guard/bin/pam-guard-exec"
COMMON_AUTH = """\
# common-auth, as pam-auth-update writes it
auth [success=1 default=ignore] pam_unix.so nullok
auth requisite pam_deny.so
auth required pam_permit.so
"""
SU = "auth sufficient pam_rootok.so\n@include common-auth\n@include common-account\n"
ACCOUNT = "account required pam_unix.so\n"
ELF_WITH_PAM = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64 + b"libpam.so.0\x00libc.so.6\x00"
ELF_WITHOUT_PAM = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64 + b"libc.so.6\x00"


def make_tree(base, files: dict, programs: dict) -> str:
    """A tree with etc/pam.d/<name> for each file and usr/bin/<name> for each program
    (mode, content)."""
    root = str(base / "root")
    os.makedirs(os.path.join(root, "etc", "pam.d"))
    os.makedirs(os.path.join(root, "usr", "bin"))
    for name, text in files.items():
        with open(os.path.join(root, "etc", "pam.d", name), "w") as handle:
            handle.write(text)
    for name, (mode, content) in programs.items():
        path = os.path.join(root, "usr", "bin", name)
        with open(path, "wb") as handle:
            handle.write(content)
        os.chown(path, 0, 0)
        os.chmod(path, mode)
    return root


def doctor(root, *extra):
    done = subprocess.run(
        [PAM_GUARD, "doctor", "--root", root, *extra], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def report(root) -> tuple[int, dict]:
    done = doctor(root, "--json")
    return done.returncode, json.loads(done.stdout)


SETUID_SU = {"su": (0o4755, ELF_WITH_PAM)}


def test_pam_python_only_in_a_daemons_stack_is_safe(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "sshd": f"@include common-auth\nauth requisite {HOOK} preauth\naccount required {HOOK}\n",
            "common-auth": COMMON_AUTH,
            "common-account": ACCOUNT,
            "su": SU,
        },
        SETUID_SU,
    )
    code, found = report(root)
    assert code == 0 and found["safe"] is True and found["unsafe"] == []
    assert found["services"] == [
        {
            "service": "sshd",
            "entry": "pam_python",
            "lines": ["/etc/pam.d/sshd:2", "/etc/pam.d/sshd:3"],
        }
    ]
    assert found["setuid_programs"] == [{"path": "/usr/bin/su", "services": ["su"]}]
    text = doctor(root)
    assert text.returncode == 0 and "OK" in text.stdout and "sshd" in text.stdout


def test_pam_python_in_common_auth_included_by_su_is_flagged(tmp_path):
    common = COMMON_AUTH.replace(
        "auth [success=1", f"auth requisite {HOOK} preauth\nauth [success=1"
    )
    root = make_tree(
        tmp_path,
        {"common-auth": common, "common-account": ACCOUNT, "su": SU, "su-l": "@include su\n"},
        SETUID_SU,
    )
    code, found = report(root)
    assert code == 1 and found["safe"] is False
    assert [(u["service"], u["file"], u["line"]) for u in found["unsafe"]] == [
        ("su", "/etc/pam.d/common-auth", 2),
        ("su-l", "/etc/pam.d/common-auth", 2),
    ]
    first = found["unsafe"][0]
    assert first["via"] == ["/etc/pam.d/su"] and first["program"] == "/usr/bin/su"
    assert first["use_instead"].split() == ["auth", "requisite", *EXEC.split(), "preauth"]
    text = doctor(root)
    assert text.returncode == 1
    assert "/etc/pam.d/common-auth:2" in text.stdout and "via /etc/pam.d/su" in text.stdout
    assert EXEC in text.stdout


def test_the_exec_entry_in_common_auth_is_safe_and_listed(tmp_path):
    common = COMMON_AUTH.replace(
        "auth [success=1", f"auth requisite {EXEC} preauth\nauth [success=1"
    )
    root = make_tree(
        tmp_path, {"common-auth": common, "common-account": ACCOUNT, "su": SU}, SETUID_SU
    )
    code, found = report(root)
    assert code == 0
    assert {"service": "su", "entry": "exec", "lines": ["/etc/pam.d/common-auth:2"]} in found[
        "services"
    ]
    # common-auth is a file of pam.d too: listed as a service of its own
    assert {row["service"] for row in found["services"]} == {"su", "common-auth"}


def test_substack_and_bracket_control_and_continuation(tmp_path):
    guard = (
        f"-auth [success=ok new_authtok_reqd=ok default=die] \\\n"
        f"    {HOOK} preauth config=/etc/pam-guard/pam-guard.toml\n"
    )
    root = make_tree(
        tmp_path,
        {
            "su": "auth substack su-guard\n" + SU,
            "su-guard": guard,
            "common-auth": COMMON_AUTH,
            "common-account": ACCOUNT,
        },
        SETUID_SU,
    )
    code, found = report(root)
    assert code == 1
    (item,) = found["unsafe"]
    assert (item["file"], item["line"], item["via"]) == (
        "/etc/pam.d/su-guard",
        1,
        ["/etc/pam.d/su"],
    )
    assert item["use_instead"].split() == [
        "auth",
        "[success=ok",
        "new_authtok_reqd=ok",
        "default=die]",
        *EXEC.split(),
        "preauth",
        "config=/etc/pam-guard/pam-guard.toml",
    ]


def test_comments_and_other_types_of_an_include_are_not_run(tmp_path):
    included = (
        f"# auth requisite {HOOK} preauth\n"
        f"auth required pam_permit.so  # {HOOK} preauth\n"
        f"session optional {HOOK}\n"
    )
    root = make_tree(
        tmp_path,
        {"su": "auth include su-parts\naccount required pam_unix.so\n", "su-parts": included},
        SETUID_SU,
    )
    code, found = report(root)
    assert code == 0, found  # only su-parts' auth lines are included; none runs pam_python
    root2 = make_tree(
        tmp_path / "b", {"su": "session include su-parts\n", "su-parts": included}, SETUID_SU
    )
    code, found = report(root2)
    assert code == 1 and [u["line"] for u in found["unsafe"]] == [3]
    assert found["unsafe"][0]["use_instead"].split() == [
        "session",
        "optional",
        "pam_exec.so",
        "seteuid",
        "quiet",
        "stdout",
        "/opt/pam-guard/bin/pam-guard-exec",
    ]


def test_programs_that_are_not_setuid_root_or_do_not_run_pam_are_not_counted(tmp_path):
    stack = f"auth requisite {HOOK} preauth\n"
    root = make_tree(
        tmp_path,
        {"su": stack, "chsh": stack, "mount": stack},
        {
            "su": (0o0755, ELF_WITH_PAM),  # not setuid
            "chsh": (0o4755, b"#!/bin/sh\nlibpam.so.0\n"),  # not an ELF program
            "mount": (0o4755, ELF_WITHOUT_PAM),  # setuid, no PAM
        },
    )
    code, found = report(root)
    assert code == 0 and found["setuid_programs"] == []
    os.chmod(os.path.join(root, "usr", "bin", "su"), 0o4755)
    code, found = report(root)
    assert code == 1 and [u["service"] for u in found["unsafe"]] == ["su"]


def test_a_service_without_a_file_runs_other(tmp_path):
    root = make_tree(
        tmp_path, {"other": f"auth required {HOOK} preauth\n"}, {"pkexec": (0o4755, ELF_WITH_PAM)}
    )
    code, found = report(root)
    assert code == 1
    assert found["setuid_programs"] == [{"path": "/usr/bin/pkexec", "services": ["other"]}]
    assert found["unsafe"][0]["service"] == "other"


def test_another_modules_pam_python_line_is_flagged_too(tmp_path):
    root = make_tree(
        tmp_path, {"su": "auth required pam_python.so /usr/lib/sec/otp.py\n"}, SETUID_SU
    )
    code, found = report(root)
    assert code == 1 and "another module" in found["unsafe"][0]["use_instead"]
    assert found["services"] == []  # not pam-guard's


def test_include_loops_end(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "su": "@include a\n",
            "a": "@include b\nauth include su\n",
            "b": f"@include a\nauth requisite {HOOK} preauth\n",
        },
        SETUID_SU,
    )
    code, found = report(root)
    assert code == 1 and {(u["file"], u["line"]) for u in found["unsafe"]} == {("/etc/pam.d/b", 2)}


def test_no_pam_d_is_a_clear_error(tmp_path):
    done = doctor(str(tmp_path))
    assert done.returncode == 1 and "not a directory" in done.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/su"), reason="n/a: no su on this host")
def test_this_host(tmp_path):
    """The host's own stacks: whatever the verdict, su is found with its services."""
    done = subprocess.run(
        [PAM_GUARD, "doctor", "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (0, 1), done.stderr
    found = json.loads(done.stdout)
    su = [p for p in found["setuid_programs"] if p["path"] == "/usr/bin/su"]
    assert su and "su" in su[0]["services"]
