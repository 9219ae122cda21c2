#!/opt/pam-guard/bin/python
"""What pam-guard's exec entry (setuid programs: su, sudo, common-auth) costs a login: median
wall time of `pamtester SERVICE USER authenticate acct_mgmt` on the shipped su/sudo stack
shape, in one run, as ratios to the same stack with a do-nothing pam_exec.so line.

    flock /tmp/pam-guard-bench.lock /opt/pam-guard/bin/python bench/setuid_login.py [--rounds 40]

Stacks (pam_permit stands in for pam_unix, whose yescrypt hash would dilute every ratio):
  pam_permit             auth + account pam_permit
  do-nothing pam_exec    the shipped sudo stack's shape, each pam-guard line running /bin/true
  do-nothing python -I   the same, each line running an empty script under the venv's
                         interpreter in isolated mode (what any Python entry pays to start)
  pam-guard exec entry   the shipped shape with the exec entry, default settings, SQLite
  pam-guard hook         the pam_python stack daemons use, for comparison

A login runs two pam-guard lines (preauth and the account phase): two processes. Rounds are
interleaved as in bench/pam_login.py, whose timing functions this uses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pam_login import guard_stack, measure, take_bench_lock  # noqa: E402

from tests.support.pam import EXEC, VENV_PYTHON, GuardConfig, remove_service, write_service  # noqa: E402

BASELINE = "do-nothing pam_exec"


def exec_stack(command: str) -> str:
    """The shipped su/sudo auth and account shape (packaging/pam.d/pam-guard-sudo) around
    `command`, with pam_permit as the password module."""
    line = f"pam_exec.so seteuid quiet stdout {command}"
    return (
        f"auth     [success=ok default=2]      {line} preauth\n"
        "auth     [success=2 default=ignore]  pam_permit.so\n"
        f"auth     [default=ignore]            pam_exec.so seteuid quiet {command} authfail\n"
        "auth     requisite                   pam_deny.so\n"
        "auth     required                    pam_permit.so\n"
        f"account  [success=1 default=ignore]  {line}\n"
        "account  requisite                   pam_deny.so\n"
        "account  required                    pam_permit.so\n"
    )  # common-account's place


def stacks(tmp: str, guard: GuardConfig) -> dict[str, str]:
    empty = os.path.join(tmp, "empty-entry")
    with open(empty, "w") as handle:
        handle.write(f"#!{VENV_PYTHON} -I\n")
    os.chmod(empty, 0o755)
    return {
        "pam_permit": "auth required pam_permit.so\naccount required pam_permit.so\n",
        BASELINE: exec_stack("/bin/true"),
        "do-nothing python -I": exec_stack(empty),
        "pam-guard exec entry": exec_stack(f"{EXEC} config={guard.path}"),
        "pam-guard hook": guard_stack(guard.path),
    }


def report(times: dict[str, list[float]]) -> None:
    base = statistics.median(times[BASELINE])
    print(f"{'stack':23} {'median ms':>10} {'p90 ms':>8} {'ratio':>7}")
    for name, values in times.items():
        values = sorted(values)
        median = statistics.median(values)
        p90 = values[int(0.9 * (len(values) - 1))]
        print(f"{name:23} {median * 1000:10.1f} {p90 * 1000:8.1f} {median / base:7.2f}")
    entry = statistics.median(times["pam-guard exec entry"])
    python = statistics.median(times["do-nothing python -I"])
    print(
        f"\npam-guard exec entry / {BASELINE} = {entry / base:.2f}; "
        f"/ do-nothing python -I = {entry / python:.2f}; "
        f"{len(times[BASELINE])} logins a stack"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="measured logins a stack")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/setuid_login.py: run as root (it writes /etc/pam.d files)", file=sys.stderr)
        return 2
    lock = take_bench_lock()
    tmp = tempfile.mkdtemp(prefix="pgpam-bench-")
    guard = GuardConfig()
    services: dict[str, str] = {}
    try:
        for name, text in stacks(tmp, guard).items():
            services[name] = write_service(text, f"pgpam-bench-{len(services)}-{os.getpid()}")
        report(measure(services, guard.env, args.rounds, args.warmup))
        return 0
    finally:
        for service in services.values():
            remove_service(service)
        guard.remove()
        shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            lock.close()


if __name__ == "__main__":
    sys.exit(main())
