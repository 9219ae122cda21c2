"""policy/ stays pure and light: no store, adapter or heavy imports (SPEC §1, PERF.md)."""

import subprocess
import sys

FORBIDDEN = ("sqlalchemy", "store", "pam_guard", "radius_hook", "tomllib", "dataclasses",
             "typing", "logging", "json", "sqlite3")


def imported_modules(code: str) -> set:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                         capture_output=True, text=True, check=True).stderr
    names = set()
    for line in out.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_policy_imports_nothing_forbidden():
    code = "import policy.decide, policy.rules, policy.settings, policy.types, policy.addresses, policy.usernames"
    names = imported_modules(code)
    assert "policy.decide" in names  # the probe really imported the core
    bad = sorted(n for n in names if n.split(".")[0] in FORBIDDEN)
    assert bad == []
