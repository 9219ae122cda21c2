"""What a login pays for: the modules the hook pulls into pam_python's interpreter.

pam_python starts an interpreter in every login process, so every import on the login path
is paid by every login (shared/PERF.md). These tests load the real hook on a real stack and
list what it imported beyond a do-nothing hook; and time the same path with
`/usr/bin/python3 -X importtime`.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.pam import HOOK, packaged_stack, pamtester

# Each costs 10-900 % of a do-nothing hook's login (PERF.md); none may be on the login path.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "tomllib",
    "dataclasses",
    "typing",
    "logging",
    "json",
    "email",
    "psycopg2",
    "ldap3",
    "cryptography",
    "argparse",
)

_WRAPPER = """
import sys as _sys
_OUT = {out!r}
_HOOK = {hook!r}
if _HOOK:
    exec(compile(open(_HOOK).read(), _HOOK, "exec"))
else:
    def pam_sm_authenticate(pamh, flags, argv):
        return pamh.PAM_SUCCESS
    pam_sm_acct_mgmt = pam_sm_open_session = pam_sm_close_session = pam_sm_authenticate


def _dumping(call):
    def wrapped(pamh, flags, argv):
        try:
            return call(pamh, flags, argv)
        finally:
            with open(_OUT, "w") as handle:
                handle.write("\\n".join(sorted(_sys.modules)))
    return wrapped


pam_sm_authenticate = _dumping(pam_sm_authenticate)
pam_sm_acct_mgmt = _dumping(pam_sm_acct_mgmt)
pam_sm_open_session = _dumping(pam_sm_open_session)
pam_sm_close_session = _dumping(pam_sm_close_session)
"""


def modules_after_login(guard, make_service, user, hook):
    """sys.modules of pam_python's interpreter after a full login through `hook`."""
    out = os.path.join(guard.dir, f"modules-{bool(hook)}.txt")
    wrapper = os.path.join(guard.dir, f"wrapper-{bool(hook)}.py")
    with open(wrapper, "w") as handle:
        handle.write(_WRAPPER.format(out=out, hook=hook))
    service = make_service(packaged_stack(guard.path, hook=wrapper))
    result = pamtester(
        service,
        user.name,
        user.password,
        rhost="192.0.2.7",
        env=guard.env,
        ops=("authenticate", "acct_mgmt", "open_session", "close_session"),
    )
    assert result.ok, result.output
    with open(out) as handle:
        return set(handle.read().split())


def test_real_login_path_imports_nothing_heavy(guarded, make_service, user):
    guard, service = guarded()
    assert pamtester(service, user.name, user.password, env=guard.env).ok  # warm the snapshot
    baseline = modules_after_login(guard, make_service, user, None)
    loaded = modules_after_login(guard, make_service, user, HOOK)
    added = loaded - baseline
    assert "pam_guard.gate" in added and "_sqlite3" in added  # the login really went through
    heavy = sorted(m for m in added if m.split(".")[0] in HEAVY)
    assert heavy == [], f"the login path imports {heavy}"


_IMPORTTIME_LOGIN = """
import sys
sys.path.insert(0, {support!r})
exec(compile(open({hook!r}).read(), {hook!r}, "exec"))
from pamh_double import PamHandle
for call in (pam_sm_authenticate, pam_sm_acct_mgmt, pam_sm_open_session, pam_sm_close_session):
    args = ["hook.py", "config=" + {config!r}] + (["preauth"] if call is pam_sm_authenticate else [])
    rc = call(PamHandle({user!r}), 0, args)
    assert rc == 0, (call.__name__, rc)
"""

_CODES = (
    "PAM_SUCCESS",
    "PAM_AUTH_ERR",
    "PAM_PERM_DENIED",
    "PAM_IGNORE",
    "PAM_ACCT_EXPIRED",
    "PAM_USER_UNKNOWN",
    "PAM_ERROR_MSG",
)


def pamh_double_source() -> str:
    """Just enough of pam_python's handle for an import-time run. Its codes are libpam's own,
    read from python-pam in another process (importing it here would pollute the timing)."""
    codes = subprocess.run(
        [
            "/opt/pam-guard/bin/python",
            "-c",
            f"import pam.__internals as p; print(*(getattr(p, n) for n in {_CODES!r}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    lines = [
        "class PamHandle:",
        "    exception = Exception",
        "    rhost, service, tty = '192.0.2.8', 'pgpam-importtime', None",
    ]
    lines += [f"    {name} = {int(code)}" for name, code in zip(_CODES, codes, strict=True)]
    lines += [
        "",
        "    def __init__(self, user):",
        "        self.user = user",
        "",
        "    def get_user(self, prompt):",
        "        return self.user",
        "",
        "    def conversation(self, message):",
        "        pass",
        "",
    ]
    return "\n".join(lines)


def test_importtime_of_the_login_path(guarded, user):
    """`/usr/bin/python3 -X importtime`: load the hook file and run each phase once."""
    guard, service = guarded()
    assert pamtester(service, user.name, user.password, env=guard.env).ok  # warm the snapshot
    support_dir = os.path.join(guard.dir, "double")
    os.makedirs(support_dir)
    with open(os.path.join(support_dir, "pamh_double.py"), "w") as handle:
        handle.write(pamh_double_source())
    site = subprocess.run(
        [
            "/opt/pam-guard/bin/python",
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    script = _IMPORTTIME_LOGIN.format(
        support=support_dir, hook=HOOK, config=guard.path, user=user.name
    )
    proc = subprocess.run(
        [
            "/usr/bin/python3",
            "-X",
            "importtime",
            "-c",
            f"import sys; sys.path.append({site!r})\n" + script,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=guard.env,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _self, cumulative, name = line[len("import time:") :].split("|")
            if cumulative.strip().isdigit():
                imported[name.strip()] = int(cumulative)
    assert "pam_guard.gate" in imported and "_sqlite3" in imported
    heavy = sorted(n for n in imported if n.split(".")[0] in HEAVY)
    if heavy:
        costly = sorted(imported.items(), key=lambda kv: -kv[1])[:15]
        pytest.fail(f"heavy imports on the login path: {heavy}; top: {costly}")
