"""The Debian package: packaging/deb/build.sh builds it from this checkout; what it holds is what
packaging/install.sh installs; on a fresh Debian 12 (a debootstrap chroot) `apt install` of it
runs packaging/demo.sh, `apt remove` keeps the config and the store (installed again, it finds
them), `apt purge` removes them.

Slow-ish (a build of the venv, then a Debian system in a chroot: ~2-3 min once today's base
tarball is cached; the first run of a day downloads it), but part of the default run.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from tests.packaging import chroot
from tests.support.pam import ROOT

pytestmark = pytest.mark.slow

PREFIX = "/opt/pam-guard"
BUILD = os.path.join(ROOT, "packaging", "deb", "build.sh")


@pytest.fixture(scope="module")
def deb():
    if os.geteuid() != 0:
        pytest.fail("the package tests run as root (scripts/test.sh)")
    out = tempfile.mkdtemp(prefix="pam-guard-deb-")
    try:
        built = subprocess.run([BUILD, out], capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
        debs = [name for name in os.listdir(out) if name.endswith(".deb")]
        assert len(debs) == 1 and re.fullmatch(r"pam-guard_[0-9][^_]*_[a-z0-9]+\.deb", debs[0])
        yield os.path.join(out, debs[0])
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def unpacked(deb):
    where = tempfile.mkdtemp(prefix="pam-guard-deb-x-")
    try:
        subprocess.run(["dpkg-deb", "-R", deb, where], check=True)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _control(unpacked: str) -> dict:
    with open(os.path.join(unpacked, "DEBIAN", "control")) as handle:
        return dict(re.findall(r"^([\w-]+): (.*)$", handle.read(), re.M))


def test_control_names_what_it_runs_with(deb, unpacked):
    control = _control(unpacked)
    assert control["Package"] == "pam-guard"
    assert os.path.basename(deb) == f"pam-guard_{control['Version']}_{control['Architecture']}.deb"
    depends = control["Depends"]
    for package in (
        "libpam-python",
        "libpam-modules",
        "libpam-runtime",
        "python3.11",
        "python3 (>= 3.11~)",
        "python3 (<< 3.12~)",
    ):
        assert package in depends
    assert "freeradius" not in depends and "freeradius-python3" in control["Suggests"]
    with open(os.path.join(unpacked, "DEBIAN", "conffiles")) as handle:
        assert handle.read().split() == ["/etc/pam-guard/pam-guard.toml"]
    for script in ("postinst", "prerm", "postrm"):
        assert os.stat(os.path.join(unpacked, "DEBIAN", script)).st_mode & 0o777 == 0o755


def test_every_file_is_root_owned_and_none_names_the_staging_tree(deb, unpacked):
    listing = subprocess.run(
        ["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert listing and all(line.split()[1] == "root/root" for line in listing)
    # nothing its group or others may write (symbolic links aside: their mode means nothing)
    assert not [line for line in listing if re.match(r"^[^l](.{4}w|.{7}w)", line)]
    left = subprocess.run(
        ["grep", "-rl", "--binary-files=text", "/tmp/pgdeb.", unpacked],
        capture_output=True,
        text=True,
    )
    assert left.stdout == ""
    with open(os.path.join(unpacked, "opt/pam-guard/bin/pam-guard")) as handle:
        assert handle.readline() == f"#!{PREFIX}/bin/python3\n"
    with open(os.path.join(unpacked, "opt/pam-guard/pyvenv.cfg")) as handle:
        assert f"venv {PREFIX}\n" in handle.read()
    assert os.readlink(os.path.join(unpacked, "usr/sbin/pam-guard")) == f"{PREFIX}/bin/pam-guard"


def test_holds_what_install_sh_puts_beside_the_venv(unpacked):
    # Compared with the sources as install.sh fills them in, and with this machine's install
    # (scripts/test.sh ran install.sh): a file install.sh places that the package lacks fails.
    site = f"{PREFIX}/lib/python3.11/site-packages"
    packaging = os.path.join(ROOT, "packaging")

    def source(path: str, **marks: str) -> str:
        with open(os.path.join(packaging, path)) as handle:
            text = handle.read()
        for mark, value in marks.items():
            text = text.replace(f"@{mark}@", value)
        return text

    def shipped(path: str) -> str:
        with open(os.path.join(unpacked, path.lstrip("/"))) as handle:
            return handle.read()

    assert shipped(f"{PREFIX}/hook.py") == source("hook.py", SITE_PACKAGES=site)
    assert shipped(f"{PREFIX}/bin/pam-guard-exec") == source("pam-guard-exec", PREFIX=PREFIX)
    assert (
        os.stat(os.path.join(unpacked, "opt/pam-guard/bin/pam-guard-exec")).st_mode & 0o777 == 0o755
    )
    for name in os.listdir(os.path.join(packaging, "pam.d")):
        assert shipped(f"{PREFIX}/share/pam.d/{name}") == source(f"pam.d/{name}")
    for name in ("pam-guard", "pam-guard-authfail"):
        text = shipped(f"/usr/share/pam-configs/{name}")
        assert text == source(f"pam-configs/{name}", PREFIX=PREFIX)
        assert re.search(r"^Default: no$", text, re.M)
    for unit in (
        "pam-guard-deliver.service",
        "pam-guard-deliver.timer",
        "pam-guard-metrics.service",
        "pam-guard-metrics.timer",
    ):
        assert shipped(f"/lib/systemd/system/{unit}") == source(f"systemd/{unit}", PREFIX=PREFIX)
    assert shipped("/etc/pam-guard/pam-guard.toml") == source("pam-guard.toml")
    assert shipped(f"{PREFIX}/radius/pam_guard_radius.py") == source(
        "freeradius/pam_guard_radius.py", SITE_PACKAGES=site, PREFIX=PREFIX
    )
    installed_by_install_sh = [
        os.path.join(dirpath, name)
        for top in ("share", "radius", "hook.py", "bin/pam-guard-exec")
        for dirpath, _dirs, names in os.walk(os.path.join(PREFIX, top))
        for name in names
        if "__pycache__" not in dirpath
    ]
    for path in installed_by_install_sh:
        assert os.path.exists(os.path.join(unpacked, path.lstrip("/"))), path


def test_man_pages_are_the_ones_the_code_makes(unpacked, tmp_path):
    subprocess.run(
        [os.path.join(PREFIX, "bin", "python"), "-m", "pam_guard.manpages", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    for section, name in (("8", "pam-guard.8"), ("5", "pam-guard.toml.5")):
        with gzip.open(
            os.path.join(unpacked, f"usr/share/man/man{section}/{name}.gz"), "rt"
        ) as got:
            assert got.read() == (tmp_path / name).read_text()


def _mode(root: str, path: str) -> tuple[int, int]:
    st = os.stat(os.path.join(root, path.lstrip("/")))
    return st.st_uid, stat.S_IMODE(st.st_mode)


def _exists(root: str, path: str) -> bool:
    return os.path.lexists(os.path.join(root, path.lstrip("/")))


def _pam_d_mentions(root: str) -> str:
    return chroot.run(root, "grep -rlE 'pam-guard|pam_python' /etc/pam.d || true").stdout.strip()


def test_apt_install_demo_remove_purge_on_a_fresh_debian(deb):
    with chroot.fresh_root() as root:
        shutil.copy(deb, os.path.join(root, "tmp"))
        shutil.copy(os.path.join(ROOT, "packaging", "demo.sh"), os.path.join(root, "tmp"))
        name = os.path.basename(deb)

        chroot.run(root, f"cd /tmp && apt-get install -y -q ./{name}")
        status = chroot.run(root, "dpkg-query -W -f='${db:Status-Abbrev} ${Conffiles}' pam-guard")
        assert status.stdout.startswith("ii ") and "/etc/pam-guard/pam-guard.toml" in status.stdout
        assert _mode(root, "/etc/pam-guard/audit.key") == (0, 0o600)
        assert _mode(root, "/etc/pam-guard/digest.key") == (0, 0o600)  # no freerad group here
        assert _mode(root, "/var/lib/pam-guard") == (0, 0o700)
        assert _exists(root, "/var/lib/pam-guard/pam-guard.db")
        assert _exists(root, "/usr/share/man/man8/pam-guard.8.gz")
        assert _exists(root, "/usr/share/man/man5/pam-guard.toml.5.gz")
        chroot.run(root, "pam-guard check-config >/dev/null && pam-guard status >/dev/null")
        # nothing enabled: no PAM stack names pam-guard, no FreeRADIUS was touched
        assert _pam_d_mentions(root) == ""
        assert not _exists(root, "/etc/freeradius")

        demo = chroot.run(root, "bash /tmp/demo.sh", timeout=600)
        steps = dict(re.findall(r"^== (\d)\. [^\n]*\n(.*?)(?=^== |\Z)", demo.stdout, re.M | re.S))
        assert "pam_unix asked for the password" in steps["1"], demo.stdout
        assert "refused before the password was asked for" in steps["5"], demo.stdout
        assert "pam_unix asked for the password" in steps["7"], demo.stdout
        assert "successfully" in steps["7"], demo.stdout
        assert _pam_d_mentions(root) == ""

        chroot.run(root, "apt-get remove -y -q pam-guard")
        status = chroot.run(root, "dpkg-query -W -f='${db:Status-Abbrev}' pam-guard")
        assert status.stdout.startswith("rc")
        for kept in (
            "/etc/pam-guard/pam-guard.toml",
            "/etc/pam-guard/audit.key",
            "/etc/pam-guard/digest.key",
            "/var/lib/pam-guard/pam-guard.db",
        ):
            assert _exists(root, kept), kept
        for gone in (
            PREFIX,
            "/usr/sbin/pam-guard",
            "/usr/share/pam-configs/pam-guard",
            "/lib/systemd/system/pam-guard-deliver.timer",
            "/lib/systemd/system/pam-guard-metrics.timer",
        ):
            assert not _exists(root, gone), gone

        # installed again, it finds what it had: the demo's history, an intact audit chain
        chroot.run(root, f"cd /tmp && apt-get install -y -q ./{name}")
        again = chroot.run(root, "pam-guard --json history pgdemo && pam-guard audit verify")
        assert '"pgdemo"' in again.stdout and "audit log intact" in again.stdout, again.stdout

        chroot.run(root, "apt-get purge -y -q pam-guard")
        status = chroot.run(root, "dpkg-query -W -f='${db:Status-Abbrev}' pam-guard", check=False)
        assert not status.stdout.startswith(("ii", "rc"))
        for gone in ("/etc/pam-guard", "/var/lib/pam-guard", "/run/pam-guard"):
            assert not _exists(root, gone), gone
