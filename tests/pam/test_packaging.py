"""The installed hook file and the printed PAM lines are the shipped ones."""

from __future__ import annotations

import os
import re
import subprocess

from tests.support.pam import HOOK, PACKAGED_STACK, ROOT, VENV_PYTHON


def test_installed_hook_file_is_the_packaged_one_with_the_venv_path():
    site = subprocess.run(
        [VENV_PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(os.path.join(ROOT, "packaging", "hook.py")) as handle:
        expected = handle.read().replace("@SITE_PACKAGES@", site)
    with open(HOOK) as handle:
        assert handle.read() == expected
    st = os.stat(HOOK)
    assert st.st_uid == 0 and not st.st_mode & 0o022


def _pam_lines(text: str) -> list[str]:
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if re.match(r"^(auth|account|session)\s", line) and "pam_python.so" in line
    ]


def test_installer_prints_the_packaged_stack_lines():
    with open(PACKAGED_STACK) as handle:
        shipped = _pam_lines(handle.read())
    with open(os.path.join(ROOT, "packaging", "install.sh")) as handle:
        printed = _pam_lines(handle.read().replace("$PREFIX", "/opt/pam-guard"))
    assert shipped and shipped == printed


def _exec_lines(text: str) -> list[str]:
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if re.match(r"^(auth|account|session)\s", line) and "pam-guard-exec" in line
    ]


def test_installer_prints_the_su_examples_exec_lines():
    with open(os.path.join(ROOT, "packaging", "pam.d", "pam-guard-su")) as handle:
        shipped = _exec_lines(handle.read())
    with open(os.path.join(ROOT, "packaging", "install.sh")) as handle:
        printed = _exec_lines(handle.read().replace("$PREFIX", "/opt/pam-guard"))
    assert len(shipped) == 4 and shipped == printed


def test_setuid_examples_never_run_pam_python():
    for name in ("pam-guard-su", "pam-guard-sudo"):
        with open(os.path.join(ROOT, "packaging", "pam.d", name)) as handle:
            text = handle.read()
        assert "pam-guard-exec" in text
        assert not [
            line
            for line in text.splitlines()
            if "pam_python" in line and not line.lstrip().startswith("#")
        ]


def test_installer_made_the_dropin_directory():
    """packaging/install.sh makes /etc/pam-guard/pam-guard.d (root, 0755) for admins' drop-ins."""
    st = os.stat("/etc/pam-guard/pam-guard.d")
    assert st.st_uid == 0 and st.st_gid == 0 and st.st_mode & 0o7777 == 0o755
