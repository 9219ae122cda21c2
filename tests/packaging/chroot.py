"""A fresh Debian 12 root for package tests: debootstrap's minbase, cached, in a chroot.

The base system is made once a day (debootstrap --variant=minbase bookworm from the mirror in
/etc/apt/sources.list*, then `apt-get update` inside) and kept as a tarball in
/var/cache/pam-guard-tests/, so a rerun on the same machine unpacks it in seconds. Each test
gets its own copy, with /proc and /dev bound into it and the .debs apt downloads kept in the
cache too. Everything mounted is unmounted afterwards, even when the test fails; the copy is
deleted only once nothing is mounted under it (never a bound /dev through a dangling mount).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import glob
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

CACHE = "/var/cache/pam-guard-tests"
SUITE = "bookworm"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unavailable(reason: str):
    """Skip, except under CI=true: there a test that cannot run must not pass green."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: not skipped)")
    pytest.skip(reason)


def debian_mirror() -> str:
    """The first Debian mirror apt uses for the bookworm suite on this machine."""
    found = []
    for path in sorted(
        glob.glob("/etc/apt/sources.list") + glob.glob("/etc/apt/sources.list.d/*.list")
    ):
        with open(path) as handle:
            for line in handle:
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    found.append(words[1])
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as handle:
            for stanza in re.split(r"\n\s*\n", handle.read()):
                fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", stanza, re.M))
                if (
                    "deb" in fields.get("Types", "").split()
                    and SUITE in fields.get("Suites", "").split()
                    and fields.get("Enabled", "yes") != "no"
                ):
                    found += fields.get("URIs", "").split()
    if not found:
        unavailable("no Debian bookworm mirror in /etc/apt/sources.list*")
    return found[0].rstrip("/")


def _mirror_reachable(mirror: str) -> bool:
    try:
        with urllib.request.urlopen(f"{mirror}/dists/{SUITE}/Release", timeout=20) as answer:
            return answer.status == 200
    except OSError:
        return False


def mount_points_under(root: str) -> list[str]:
    """Mount points at or below root, deepest first (from /proc/self/mountinfo)."""
    root = os.path.realpath(root)
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[4])
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all(root: str) -> list[str]:
    """Unmount everything under root; return what is still mounted (empty when all went)."""
    for lazy in (False, False, True):
        points = mount_points_under(root)
        if not points:
            return []
        for point in points:
            subprocess.run(
                ["umount", "-l", point] if lazy else ["umount", point], capture_output=True
            )
    return mount_points_under(root)


def remove_root(root: str) -> None:
    """Delete a chroot tree, refusing while anything is mounted under it."""
    left = unmount_all(root)
    if left:
        raise RuntimeError(f"still mounted, {root} left in place: {left}")
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def mounted(root: str, archives: str | None = None):
    """/proc, /dev and /dev/pts bound into root (and apt's archive cache), unmounted at the end."""
    try:
        for source, target in (("/proc", "proc"), ("/dev", "dev"), ("/dev/pts", "dev/pts")):
            # /dev/pts: apt's terminal log (without it: "E: Can not write log")
            if target == "dev/pts" and not os.path.ismount(source):
                continue
            subprocess.run(["mount", "--bind", source, os.path.join(root, target)], check=True)
        if archives:
            os.makedirs(archives, exist_ok=True)
            subprocess.run(
                ["mount", "--bind", archives, os.path.join(root, "var/cache/apt/archives")],
                check=True,
            )
        yield root
    finally:
        left = unmount_all(root)
        if left:
            raise RuntimeError(f"could not unmount {left}")


def run(
    root: str, script: str, timeout: float = 600, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run a shell script as root inside the chroot, with a clean environment."""
    clean = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    clean.update(env or {})
    command = ["chroot", root, "/usr/bin/env", "-i"] + [f"{k}={v}" for k, v in clean.items()]
    result = subprocess.run(
        command + ["/bin/sh", "-ec", script], capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"in the chroot, exit {result.returncode}: {script}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def _prepare(root: str) -> None:
    """What every copy needs: name resolution, and no daemon started by a package."""
    shutil.copyfile("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
    policy = os.path.join(root, "usr/sbin/policy-rc.d")
    with open(policy, "w") as handle:
        handle.write("#!/bin/sh\nexit 101\n")
    os.chmod(policy, 0o755)


def base_tarball() -> str:
    """Today's cached minbase tarball, made (once, under a lock) when missing."""
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: scripts/test.sh installs it (TEST_PACKAGES)")
    os.makedirs(CACHE, exist_ok=True)
    tarball = os.path.join(CACHE, f"{SUITE}-minbase-{datetime.date.today():%Y%m%d}.tar.gz")
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(tarball):
            return tarball
        mirror = debian_mirror()
        if not _mirror_reachable(mirror):
            unavailable(f"debootstrap cannot reach the Debian mirror {mirror}")
        work = tempfile.mkdtemp(prefix="base-", dir=CACHE)
        root = os.path.join(work, "root")
        try:
            made = subprocess.run(
                ["debootstrap", "--variant=minbase", SUITE, root, mirror],
                capture_output=True,
                text=True,
                timeout=1200,
            )
            if made.returncode != 0:
                log = made.stdout[-3000:] + made.stderr[-3000:]
                if re.search(
                    r"Failed getting release file|Couldn't download|Temporary failure"
                    r"|Could not resolve|Connection (refused|timed out)",
                    log,
                ):
                    unavailable(
                        f"debootstrap cannot reach the Debian mirror {mirror}: {log[-500:]}"
                    )
                raise AssertionError(f"debootstrap failed:\n{log}")
            _prepare(root)
            with mounted(root):
                # lists kept (apt install works at once), debootstrap's .debs dropped
                run(root, "apt-get update -q && apt-get clean", timeout=600)
            subprocess.run(["tar", "-C", root, "-czf", tarball + ".part", "."], check=True)
            os.rename(tarball + ".part", tarball)
        finally:
            remove_root(work)
        for old in glob.glob(os.path.join(CACHE, f"{SUITE}-minbase-*.tar.gz")):
            if old != tarball:
                os.unlink(old)
    return tarball


@contextlib.contextmanager
def fresh_root():
    """A private copy of the cached base system, mounted and ready; removed afterwards."""
    tarball = base_tarball()
    work = tempfile.mkdtemp(prefix="pam-guard-chroot-")
    root = os.path.join(work, "root")
    os.mkdir(root)
    try:
        subprocess.run(["tar", "-C", root, "-xzf", tarball], check=True)
        _prepare(root)
        with mounted(root, archives=os.path.join(CACHE, "apt-archives")):
            yield root
    finally:
        remove_root(work)
