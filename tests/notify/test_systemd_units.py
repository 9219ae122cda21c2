"""The packaged systemd units: valid for systemd (systemd-analyze verify), the services run
the installed `pam-guard deliver` and `pam-guard metrics --textfile`, the timers fire every
minute, and the installer put them in /etc/systemd/system with its prefix filled in."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = os.path.join(ROOT, "packaging", "systemd")
TIMERS = ("pam-guard-deliver.timer", "pam-guard-metrics.timer")
NAMES = tuple(name for timer in TIMERS for name in (timer.replace(".timer", ".service"), timer))
PREFIX = "/opt/pam-guard"

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _rendered(name: str) -> str:
    with open(os.path.join(UNITS, name), encoding="utf-8") as handle:
        return handle.read().replace("@PREFIX@", PREFIX)


@needs_systemd
def test_units_verify(tmp_path):
    for name in NAMES:
        (tmp_path / name).write_text(_rendered(name))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in NAMES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ours = [line for line in done.stderr.splitlines() if "pam-guard" in line]
    assert done.returncode == 0 and ours == [], done.stderr


def test_service_runs_deliver():
    text = _rendered("pam-guard-deliver.service")
    assert f"ExecStart={PREFIX}/bin/pam-guard deliver\n" in text
    assert "Type=oneshot" in text
    assert os.access(f"{PREFIX}/bin/pam-guard", os.X_OK)


def test_metrics_service_writes_node_exporters_textfile():
    text = _rendered("pam-guard-metrics.service")
    textfile = "/var/lib/prometheus/node-exporter/pam-guard.prom"
    assert f"ExecStart={PREFIX}/bin/pam-guard metrics --textfile {textfile}\n" in text
    assert "Type=oneshot" in text
    # Skipped, not failed, where node_exporter's directory is missing; writable where it is.
    assert f"ConditionPathIsDirectory={os.path.dirname(textfile)}\n" in text
    [paths] = [ln for ln in text.splitlines() if ln.startswith("ReadWritePaths=")]
    assert os.path.dirname(textfile) in paths.split("=", 1)[1].split()


@needs_systemd
@pytest.mark.parametrize("timer", TIMERS)
def test_timer_fires_every_minute(timer):
    text = _rendered(timer)
    [line] = [ln for ln in text.splitlines() if ln.startswith("OnCalendar=")]
    done = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=3", line.split("=", 1)[1]],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Normalized form: *-*-* *:*:00" in done.stdout
    assert "WantedBy=timers.target" in text


# packaging/install.sh writes the units only where both are there (`command -v systemctl`
# and /etc/systemd/system): Debian has the directory even without systemd (a chroot, a
# container), so the directory alone says nothing.
installer_writes_units = pytest.mark.skipif(
    shutil.which("systemctl") is None or not os.path.isdir("/etc/systemd/system"),
    reason="n/a: no systemctl or no /etc/systemd/system: packaging/install.sh writes no units here",
)


@installer_writes_units
def test_installer_put_the_units_in_place():
    """scripts/test.sh runs packaging/install.sh first; its systemd part installs these."""
    for name in NAMES:
        path = os.path.join("/etc/systemd/system", name)
        assert os.path.exists(path), f"{path} missing: run packaging/install.sh"
        with open(path, encoding="utf-8") as handle:
            assert handle.read() == _rendered(name)
        assert os.stat(path).st_mode & 0o777 == 0o644
