"""A PostgreSQL store works after a plain install: its driver is one of pam-guard's own
dependencies; should it be gone anyway, every command says so in one line, exit 3 (SPEC §11)."""

from __future__ import annotations

import subprocess

import pytest

PYTHON = "/opt/pam-guard/bin/python"
URL = "postgresql://pam_guard@127.0.0.1:1/pam_guard"


def test_the_driver_is_a_dependency_of_a_plain_install():
    requires = subprocess.run(
        [
            PYTHON,
            "-c",
            "import importlib.metadata as m; print('\\n'.join(m.requires('pam-guard')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    driver = [r for r in requires if r.startswith("psycopg2")]
    assert driver and "extra ==" not in driver[0], requires


@pytest.mark.parametrize(
    "args",
    [
        ("history",),
        ("status", "alice"),
        ("unlock", "alice"),
        ("lock", "alice"),
        ("trackstat",),
        ("sessions",),
    ],
)
def test_a_missing_driver_is_one_line_and_exit_3(site, args):
    site.write({"store": {"url": URL}})
    # The installed command with psycopg2 made unimportable, as on a venv without it.
    code = (
        "import sys; sys.modules['psycopg2'] = None; from pam_guard.cli import main; "
        f"sys.exit(main(['--config', {site.config!r}, *{list(args)!r}]))"
    )
    done = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, timeout=60, env=site.env
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "psycopg2" in line and "pip install psycopg2-binary" in line
