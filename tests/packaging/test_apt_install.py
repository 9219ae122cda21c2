"""packaging/apt-install.sh, which install.sh and scripts/test.sh share: apt never starts the
daemons it installs (a policy-rc.d refusing starts while apt runs), and an admin's own
policy-rc.d is left as it is. apt-get and dpkg-query are stand-ins on PATH here: they record
what the real apt would have seen."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.pam import ROOT

SCRIPT = os.path.join(ROOT, "packaging", "apt-install.sh")
POLICY = "/usr/sbin/policy-rc.d"


def stand_ins(tmp_path, installed: set[str]) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "seen"
    (bin_dir / "dpkg-query").write_text(
        "#!/bin/sh\nfor p in " + " ".join(sorted(installed)) + "; do\n"
        '  [ "$p" = "$3" ] && { echo "install ok installed"; exit 0; }\ndone\nexit 1\n'
    )
    # what a package's postinst does: invoke-rc.d asks policy-rc.d before starting
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "$@" >> {seen}\n'
        f'if [ -x {POLICY} ]; then {POLICY} freeradius start; echo "policy $?" >> {seen}; '
        f"else echo 'policy none' >> {seen}; fi\n"
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


def run(env):
    return subprocess.run(
        [SCRIPT, "freeradius", "slapd"], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(os.path.lexists(POLICY), reason="n/a: this host has a policy-rc.d of its own")
def test_daemons_are_kept_from_starting_and_the_policy_goes_afterwards(tmp_path):
    env = stand_ins(tmp_path, {"slapd"})
    done = run(env)
    assert done.returncode == 0, done.stderr
    seen = (tmp_path / "seen").read_text().splitlines()
    assert "install -y -q --no-install-recommends freeradius" in seen  # slapd was there
    assert "policy 101" in seen  # "action forbidden": the start is refused
    assert not os.path.lexists(POLICY)


def test_nothing_to_install_runs_no_apt(tmp_path):
    env = stand_ins(tmp_path, {"freeradius", "slapd"})
    assert run(env).returncode == 0
    assert not (tmp_path / "seen").exists()


def test_an_admins_own_policy_is_kept(tmp_path):
    if os.path.lexists(POLICY):
        before = open(POLICY, "rb").read()
        made = False
    else:
        before = b"#!/bin/sh\n# the admin's own\nexit 0\n"
        with open(POLICY, "wb") as handle:
            handle.write(before)
        os.chmod(POLICY, 0o755)
        made = True
    try:
        assert run(stand_ins(tmp_path, set())).returncode == 0
        assert open(POLICY, "rb").read() == before
    finally:
        if made:
            os.unlink(POLICY)
