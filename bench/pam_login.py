#!/opt/pam-guard/bin/python
"""What pam-guard costs a PAM login: median wall time of `pamtester SERVICE USER
authenticate acct_mgmt` on five stacks, in one run, as ratios to a do-nothing pam_python hook.

    flock /tmp/pam-guard-bench.lock /opt/pam-guard/bin/python bench/pam_login.py [--rounds 40]

Stacks (no pam_unix anywhere: its yescrypt hash would dilute every ratio, PLATFORM.md):
  pam_permit       auth + account pam_permit
  pam_faillock     preauth / pam_permit / authfail / authsucc, account pam_faillock
  do-nothing hook  auth + account through pam_python, a hook that returns PAM_SUCCESS
  pam-guard        the packaged pattern (preauth, password module, authfail, account) with
                   pam_permit as the password module, default settings, SQLite store
  pam-guard, all rules   the same with ip_lock, trackstat, concurrent and status limits on
  pam-guard, lockout rules   the same with issue 18's rules on: smart lockout, growing
                   locks, ignore_repeated_password, address blocks
  pam-guard, no finder   (editable installs only) the pam-guard stack through a hook file that
                   puts the packages on sys.path directly, as a regular install does: the
                   editable install's setuptools finder costs every login its own imports

With `--code-a TREE` (e.g. `git worktree add /tmp/pam-guard-a HEAD~3`), "pam-guard, A" runs
the pam-guard stack with that tree's pam_guard, policy and store ahead of the installed ones:
an A/B of two versions in one run.

Rounds are interleaved (each round runs every stack once, in a shuffled order) so that drift
in the shared machine's load hits every stack alike. Target: pam-guard <= 1.5x the hook.
Runs as root; takes the bench lock itself too; removes its service files and temp dir.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.lockout_rules import LOCKOUT_RULES  # noqa: E402
from tests.support.pam import HOOK, GuardConfig, remove_service, write_service  # noqa: E402

LOCK = "/tmp/pam-guard-bench.lock"
USER = "root"
RHOST = "192.0.2.50"
TARGET = 1.5

NOOP_HOOK = """
def pam_sm_authenticate(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_acct_mgmt(pamh, flags, argv):
    return pamh.PAM_SUCCESS
"""


def editable_finder() -> str | None:
    """The editable install's import hook in the venv, if this is an editable install."""
    site = glob.glob("/opt/pam-guard/lib/python3*/site-packages")
    found = glob.glob(os.path.join(site[0], "__editable__*finder.py")) if site else []
    return found[0] if found else None


def path_hook(tmp: str, name: str, first: str) -> str:
    """A stable hook file shaped like a regular (non-editable) install: `first`, then the
    venv's site-packages on sys.path directly, no setuptools finder (which imports pathlib,
    fnmatch, importlib.util and urllib.parse in every login process)."""
    site = glob.glob("/opt/pam-guard/lib/python3*/site-packages")[0]
    path = os.path.join(tmp, f"{name}.py")
    with open(path, "w") as handle:
        handle.write(
            f"import sys\nsys.path[:0] = [{first!r}, {site!r}]\n"
            "from pam_guard.hook import (pam_sm_acct_mgmt, pam_sm_authenticate,  # noqa\n"
            "    pam_sm_close_session, pam_sm_open_session, pam_sm_setcred)\n"
        )
    return path


def guard_stack(config: str, hook_file: str = HOOK) -> str:
    hook = f"pam_python.so {hook_file} config={config}"
    return (
        f"auth     requisite                {hook} preauth\n"
        "auth     [success=1 default=bad]  pam_permit.so\n"
        f"auth     [default=die]            {hook} authfail\n"
        f"account  required                 {hook}\n"
    )


def stacks(
    tmp: str,
    guard: GuardConfig,
    all_rules: GuardConfig,
    lockout_rules: GuardConfig,
    guard_a: GuardConfig | None = None,
) -> dict[str, str]:
    noop = os.path.join(tmp, "noop_hook.py")
    with open(noop, "w") as handle:
        handle.write(NOOP_HOOK)
    tally = os.path.join(tmp, "faillock")
    os.mkdir(tally, 0o700)
    result = {
        "pam_permit": "auth required pam_permit.so\naccount required pam_permit.so\n",
        "pam_faillock": (
            f"auth     required                 pam_faillock.so preauth dir={tally}\n"
            "auth     [success=1 default=bad]  pam_permit.so\n"
            f"auth     [default=die]            pam_faillock.so authfail dir={tally}\n"
            f"auth     sufficient               pam_faillock.so authsucc dir={tally}\n"
            f"account  required                 pam_faillock.so dir={tally}\n"
        ),
        "do-nothing hook": (
            f"auth required pam_python.so {noop}\naccount required pam_python.so {noop}\n"
        ),
        "pam-guard": guard_stack(guard.path),
        "pam-guard, all rules": guard_stack(all_rules.path),
        "pam-guard, lockout rules": guard_stack(lockout_rules.path),
    }
    if editable_finder():
        result["pam-guard, no finder"] = guard_stack(guard.path, path_hook(tmp, "plain", ROOT))
    if guard_a is not None:
        # its own config file and store: settings snapshots are cached by config path, and
        # two versions writing one snapshot would each load the config every login
        tree_a = path_hook(tmp, "tree_a", guard_a.code_a)
        result["pam-guard, A"] = guard_stack(guard_a.path, tree_a)
    return result


def one_login(service: str, env) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        ["pamtester", "-I", f"rhost={RHOST}", service, USER, "authenticate", "acct_mgmt"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=30,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"login on {service} failed: {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def measure(services: dict[str, str], env, rounds: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in services}
    names = list(services)
    for round_no in range(warmup + rounds):
        random.shuffle(names)
        for name in names:
            elapsed = one_login(services[name], env)
            if round_no >= warmup:
                times[name].append(elapsed)
    return times


def report(times: dict[str, list[float]]) -> bool:
    base = statistics.median(times["do-nothing hook"])
    print(f"{'stack':23} {'median ms':>10} {'p90 ms':>8} {'ratio':>7}")
    for name, values in times.items():
        values = sorted(values)
        median = statistics.median(values)
        p90 = values[int(0.9 * (len(values) - 1))]
        print(f"{name:23} {median * 1000:10.1f} {p90 * 1000:8.1f} {median / base:7.2f}")
    ratio = statistics.median(times["pam-guard"]) / base
    ok = ratio <= TARGET
    print(
        f"\npam-guard / do-nothing hook = {ratio:.2f} (target <= {TARGET}): "
        f"{'met' if ok else 'NOT met'}; {len(times['pam-guard'])} logins a stack"
    )
    return ok


def take_bench_lock():
    """Hold the bench lock, unless flock(1) already holds it for us (its fd is inherited)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == LOCK:
                return None
        except OSError:
            continue
    lock = open(LOCK, "a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # never two benchmarks at once
    return lock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="measured logins a stack")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    parser.add_argument("--code-a", help="another source tree, run as 'pam-guard, A'")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/pam_login.py: run as root (it writes /etc/pam.d files)", file=sys.stderr)
        return 2
    lock = take_bench_lock()
    tmp = tempfile.mkdtemp(prefix="pgpam-bench-")
    guard = GuardConfig()
    all_rules = GuardConfig(
        {
            "ip_lock": {"enabled": True},
            "trackstat": {"enabled": True},
            "concurrent": {"enabled": True, "action": "allow"},
            "status": {"access_point_limit": 3},
        }
    )
    lockout_rules = GuardConfig(LOCKOUT_RULES)
    guard_a = None
    if args.code_a:
        guard_a = GuardConfig()
        guard_a.code_a = os.path.abspath(args.code_a)
        # compiled beforehand, as an install does: pam_python's interpreter writes no .pyc,
        # so a source tree would be compiled again in every login
        subprocess.run([sys.executable, "-m", "compileall", "-q", guard_a.code_a], check=True)
    services: dict[str, str] = {}
    try:
        for name, text in stacks(tmp, guard, all_rules, lockout_rules, guard_a).items():
            services[name] = write_service(text, f"pgpam-bench-{len(services)}-{os.getpid()}")
        # One private settings cache (snapshots are named by config path), one environment
        # for every stack.
        times = measure(services, guard.env, args.rounds, args.warmup)
        return 0 if report(times) else 1
    finally:
        for service in services.values():
            remove_service(service)
        guard.remove()
        all_rules.remove()
        lockout_rules.remove()
        if guard_a is not None:
            guard_a.remove()
        shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            lock.close()


if __name__ == "__main__":
    sys.exit(main())
