"""`pam-guard metrics`: Prometheus' own text parser (prometheus_client) reads what it prints,
and every figure equals what the store holds; no label holds a user name; `--textfile`
replaces its file atomically, mode 0644, for node_exporter's textfile collector."""

from __future__ import annotations

import os
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pam_guard.notices import KINDS

USERS = ("mallory", "alice", "bob", "carol")
LABELS = {
    "attempts": {"channel", "service", "outcome", "reason"},
    "notices_queued": {"kind"},
    "notices_failed": {"kind"},
}


def parsed(text: str) -> dict:
    """family name (prefix and a counter's _total dropped, as the parser does) -> family."""
    families = {f.name.removeprefix("pam_guard_"): f for f in text_string_to_metric_families(text)}
    assert all(
        not f.samples or f.samples[0].name.startswith("pam_guard_") for f in families.values()
    )
    return families


def value(families: dict, name: str, **labels) -> float:
    [found] = [s.value for s in families[name].samples if s.labels == labels]
    return found


@pytest.fixture
def busy_site(site):
    """A store with PAM and RADIUS attempts of every outcome, two locks in force, an expired
    one, lock notices queued and one given up."""
    now = time.time() - 600
    for n in range(3):  # mallory: three failures lock the account (and queue a notice)
        site.failure("mallory", "192.0.2.66", at=now + n)
    site.success("mallory", "192.0.2.66", at=now + 5)  # refused: locked
    site.success("alice", "192.0.2.10", at=now + 10)
    site.success("alice", "2001:db8::1", service="login", at=now + 11)
    site.failure("alice", None, service='we"ird\\svc', at=now + 12)
    gate = site.gate
    site.clock.now = now + 20
    gate.login(site.attempt("bob", "198.51.100.7", service="vpn", channel="radius"))
    gate.record_failure(site.attempt("bob", "198.51.100.7", service="vpn", channel="radius"))
    site.ok("lock", "carol", "--reason", "alice asked")  # by hand: until unlocked
    site.ok("lock", "bob")
    site.execute("UPDATE accounts SET lock_expires = ? WHERE username = 'bob'", (now,))  # over
    site.execute("UPDATE outbox SET attempts = 30 WHERE id = (SELECT min(id) FROM outbox)")
    return site


def test_metrics_parse_and_equal_the_store(busy_site):
    site = busy_site
    families = parsed(site.ok("metrics"))
    assert families["attempts"].type == "counter"
    stored = site.query(
        "SELECT channel, service, outcome, reasons, count(*) FROM events "
        "GROUP BY channel, service, outcome, reasons"
    )
    exported = {
        (s.labels["channel"], s.labels["service"], s.labels["outcome"], s.labels["reason"]): s.value
        for s in families["attempts"].samples
    }
    assert exported == {row[:4]: row[4] for row in stored}
    assert {"pam", "radius"} <= {s.labels["channel"] for s in families["attempts"].samples}
    assert {"success", "failure", "denied"} <= {
        s.labels["outcome"] for s in families["attempts"].samples
    }
    assert ("pam", 'we"ird\\svc', "failure", "") in exported  # escaped, and read back as given

    [(locked,)] = site.query(
        "SELECT count(*) FROM accounts WHERE locked_at IS NOT NULL AND "
        "(lock_expires IS NULL OR lock_expires > ?)",
        (time.time(),),
    )
    assert locked == 2  # mallory (failures) and carol (by hand); bob's lock is over
    assert value(families, "locked_users") == locked
    assert value(families, "blocked_addresses") == 0

    unsent = site.query(
        "SELECT kind, attempts >= 30, count(*) FROM outbox "
        "WHERE sent_at IS NULL GROUP BY kind, attempts >= 30"
    )
    assert {gave_up for _kind, gave_up, _n in unsent} == {0, 1}, unsent
    for kind in KINDS:
        for name, gave_up in (("notices_queued", 0), ("notices_failed", 1)):
            expected = sum(n for k, g, n in unsent if k == kind and g == gave_up)
            assert value(families, name, kind=kind) == expected, (name, kind)


def test_no_label_holds_a_user_name(busy_site):
    families = parsed(busy_site.ok("metrics"))
    for name, family in families.items():
        for sample in family.samples:
            assert set(sample.labels) == LABELS.get(name, set()), (name, sample.labels)
            for label in sample.labels.values():
                assert not any(user in label for user in USERS), sample


def test_an_empty_store_has_every_metric(site):
    families = parsed(site.ok("metrics"))
    assert set(families) == {
        "attempts",
        "locked_users",
        "blocked_addresses",
        "notices_queued",
        "notices_failed",
    }
    assert families["attempts"].samples == []
    assert value(families, "locked_users") == 0


def test_textfile_is_replaced_atomically_mode_0644(busy_site):
    site = busy_site
    directory = os.path.join(site.dir, "textfile")
    os.mkdir(directory, 0o755)
    path = os.path.join(directory, "pam-guard.prom")
    with open(path, "w") as handle:
        handle.write("old\n")
    before = os.stat(path).st_ino
    assert site.ok("metrics", "--textfile", path) == ""
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o644 and st.st_ino != before  # renamed over, not rewritten
    assert os.listdir(directory) == ["pam-guard.prom"]  # no temp file left behind
    with open(path) as handle:
        assert handle.read() == site.ok("metrics")
    parsed(site.ok("metrics"))


def test_textfile_in_a_missing_directory_is_exit_1(site):
    path = os.path.join(site.dir, "nowhere", "pam-guard.prom")
    done = site.cli("metrics", "--textfile", path)
    assert done.returncode == 1, done.stderr
    assert f"cannot write {path}" in done.stderr and "Traceback" not in done.stderr


def test_json_holds_the_same_figures(busy_site):
    data = {f["name"]: f for f in busy_site.json("metrics")}
    families = parsed(busy_site.ok("metrics"))
    assert data["pam_guard_locked_users"]["samples"] == [
        {"labels": {}, "value": value(families, "locked_users")}
    ]
    assert len(data["pam_guard_attempts_total"]["samples"]) == len(families["attempts"].samples)
