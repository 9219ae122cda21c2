"""policy/ stays pure and light: no store, adapter or heavy imports (SPEC §1, PERF.md).

Runs the system interpreter that pam_python embeds, in a fresh process, and reads what
`-X importtime` says was really imported: a module already cached by the test run can
not hide an import here.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SUBMODULES = (
    "policy.addresses",
    "policy.decide",
    "policy.rules",
    "policy.settings",
    "policy.types",
    "policy.usernames",
)
FORBIDDEN = (
    "sqlalchemy",
    "store",
    "pam_guard",
    "radius_hook",
    "tomllib",
    "dataclasses",
    "typing",
    "logging",
    "json",
    "sqlite3",
)


def imported_modules(code: str) -> set:
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stderr
    names = set()
    for line in out.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_policy_imports_nothing_forbidden():
    names = imported_modules("import " + ", ".join(SUBMODULES))
    assert set(SUBMODULES) <= names  # the probe really imported every submodule
    bad = sorted(n for n in names if n.split(".")[0] in FORBIDDEN)
    assert bad == []


def test_the_probe_sees_a_forbidden_import():
    # Guards the guard: the same parsing must notice a module that does pull one in.
    names = imported_modules("import policy.types, json")
    assert "json" in names
