"""The audit log: every admin action is an entry, chained with HMAC-SHA256; `audit verify`
finds an edited, reordered or deleted entry (including entries cut from the end), and
concurrent admins never share a sequence number."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.cli.conftest import PAM_GUARD, Site


def _actions(site) -> None:
    site.ok("lock", "alice", "--reason", "phish")
    site.ok("unlock", "alice")
    site.ok("exempt", "bob")
    site.ok("ip", "allow", "bob", "10.0.0.0/8")
    site.ok("ip", "deny", "bob", "10.66.0.0/16")


def _verify(site):
    return site.cli("audit", "verify")


@pytest.fixture(scope="module")
def _logged(store_template):
    """A site with five logged actions, and a copy of its store and ledger to restore."""
    site = Site(template=store_template)
    _actions(site)
    saved = os.path.join(site.dir, "saved")
    os.mkdir(saved)
    for path in (site.store_path, os.path.join(site.dir, "audit.chain")):
        shutil.copy2(path, saved)
    yield site, saved
    site.close()


@pytest.fixture
def logged(_logged):
    """The five-action site as it was before any test tampered with it."""
    site, saved = _logged
    for name in ("pam-guard.db", "audit.chain"):
        target = site.store_path if name.endswith(".db") else os.path.join(site.dir, name)
        shutil.copy2(os.path.join(saved, name), target)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(site.store_path + suffix):
            os.remove(site.store_path + suffix)
    return site


def test_every_action_is_logged_with_its_actor(logged):
    site = logged
    env = dict(site.env, SUDO_USER="opsadmin")
    assert site.cli("exempt", "bob", "--off", env=env).returncode == 0
    entries = site.json("audit")
    assert [(e["seq"], e["action"], e["target"], e["detail"]) for e in entries] == [
        (1, "lock", "alice", "phish"),
        (2, "unlock", "alice", "store"),
        (3, "exempt", "bob", ""),
        (4, "ip-allow", "bob", "10.0.0.0/8"),
        (5, "ip-deny", "bob", "10.66.0.0/16"),
        (6, "exempt-off", "bob", ""),
    ]
    assert entries[-1]["actor"] == "opsadmin" and entries[0]["actor"] != ""
    done = _verify(site)
    assert done.returncode == 0 and "intact: 6 entries" in done.stdout
    assert site.json("audit", "verify") == {"entries": 6, "intact": True, "problems": []}
    assert "SEQ" in site.ok("audit")  # the table form


def test_reads_and_refused_actions_are_not_logged(site):
    site.ok("history")
    site.ok("status")
    site.cli("unlock", "nobody")
    site.cli("ip", "allow", "bob", "nonsense")
    assert site.json("audit") == []
    assert _verify(site).returncode == 0


def test_edited_entry_is_found(logged):
    site = logged
    site.execute("UPDATE audit SET target = 'mallory' WHERE seq = 3")
    done = _verify(site)
    assert done.returncode == 1 and "entry 3 (exempt mallory)" in done.stdout
    report = site.cli("--json", "audit", "verify")
    assert report.returncode == 1 and '"intact": false' in report.stdout


def test_edited_detail_or_time_is_found(logged):
    site = logged
    site.execute("UPDATE audit SET ts = ts - 3600 WHERE seq = 2")
    done = _verify(site)
    assert done.returncode == 1 and "entry 2 " in done.stdout


def test_reordered_entries_are_found(logged):
    site = logged
    # Swap the contents (and MACs) of entries 2 and 4, keeping the numbers in order.
    rows = {
        r[0]: r[1:]
        for r in site.query("SELECT seq, ts, actor, action, target, detail, mac FROM audit")
    }
    for seq, other in ((2, 4), (4, 2)):
        site.execute(
            "UPDATE audit SET ts = ?, actor = ?, action = ?, target = ?, detail = ?, "
            "mac = ? WHERE seq = ?",
            (*rows[other], seq),
        )
    done = _verify(site)
    assert done.returncode == 1 and "entry 2 " in done.stdout


def test_deleted_entry_in_the_middle_is_found(logged):
    site = logged
    site.execute("DELETE FROM audit WHERE seq = 3")
    done = _verify(site)
    assert done.returncode == 1 and "entry 3 is missing" in done.stdout
    # Renumbering to hide the gap breaks the MACs instead.
    site.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    done = _verify(site)
    assert done.returncode == 1 and "entry 3 " in done.stdout


def test_deleted_last_entries_are_found_even_after_new_ones(logged):
    site = logged
    site.execute("DELETE FROM audit WHERE seq >= 4")
    done = _verify(site)
    assert done.returncode == 1
    assert "ends at entry 3" in done.stdout and "4..5 were deleted from the end" in done.stdout
    # The log goes on from the cut: the rewritten numbers are still caught.
    site.ok("lock", "carol")
    site.ok("lock", "dave")
    done = _verify(site)
    assert done.returncode == 1 and "entry 4 " in done.stdout


def test_a_forged_entry_without_the_key_is_found(logged):
    site = logged
    site.execute(
        "INSERT INTO audit (seq, ts, actor, action, target, detail, mac) "
        "VALUES (6, 1.0, 'root', 'unlock', 'mallory', '', ?)",
        ("0" * 64,),
    )
    done = _verify(site)
    assert done.returncode == 1 and "entry 6 (unlock mallory)" in done.stdout


def _parallel_locks(site, n: int) -> None:
    procs = [
        subprocess.Popen(
            [PAM_GUARD, "--config", site.config, "lock", f"user{i}"],
            env=site.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(n)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_admins_get_distinct_sequence_numbers(make_site, request, engine):
    url = request.getfixturevalue("postgres_url") if engine == "postgresql" else None
    site = make_site(url=url)
    _parallel_locks(site, 6)
    seqs = [r[0] for r in site.query("SELECT seq FROM audit ORDER BY seq")]
    assert seqs == list(range(1, 7))
    targets = sorted(r[0] for r in site.query("SELECT target FROM audit"))
    assert targets == sorted(f"user{i}" for i in range(6))
    assert _verify(site).returncode == 0
    site.execute("DELETE FROM audit WHERE seq = 6")
    assert _verify(site).returncode == 1
