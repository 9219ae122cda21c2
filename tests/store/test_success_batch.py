"""The lean group commit of RADIUS successes (RadiusGate._successes_in, used under the default
settings) stores exactly what recording each success on its own does (Gate._success_in):
same accounts, events and queued notices, same verdicts, on SQLite and on PostgreSQL.

The batch holds the cases where the two could part: one user twice (the second reads what
the first wrote), a user seen for the first time, a user whose status changes (a notice), a
user who asked for a notice of each success, a user returning after a long gap.

Failed passwords join the same transaction (RadiusGate.record_outcomes, the recorder's group
commit on SQLite): runs of successes and failures of several users, one of them locked by
its third failure in the run, store what recording each on its own stores.
"""

from __future__ import annotations

import pytest

from policy.settings import build_settings
from policy.types import FAILURE, SUCCESS
from radius_hook.radius_gate import RadiusGate
from store import logins
from store import statements as sql
from store.db import connect

T0 = 1_800_000_000.0
DAY = 86400.0


def _gate(url) -> RadiusGate:
    settings = build_settings({"store": {"url": url, "timeout_seconds": 1}}, "<batch test>")
    assert logins.account_only(settings)  # the defaults take the lean path
    return RadiusGate(settings, clock=lambda: T0)


def _seed(url) -> None:
    conn = connect(url)
    conn.begin(write=True)
    limit = _gate(url).settings.status.denied_limit
    accounts = {"alice": T0 - DAY, "bob": T0 - DAY, "carol": T0 - DAY, "erin": T0 - 90 * DAY}
    for user, last in accounts.items():
        conn.execute(sql.LOCK_ACCOUNT, {"user": user, "now": T0 - 100 * DAY, "false": False})
        conn.execute(
            sql.UPDATE_ACCOUNT_AFTER,
            {"user": user, "now": last, "status": "protected", "status_why": "seed"},
        )
    for i in range(limit + 1):  # bob is over the denial limit: high_risk, a status notice
        conn.execute(
            sql.INSERT_EVENT,
            {
                "ts": T0 - 60 * (i + 1),
                "user": "bob",
                "channel": "radius",
                "service": "vpn",
                "address": "198.51.100.7",
                "address_raw": "198.51.100.7",
                "client": "",
                "secure": None,
                "outcome": "denied",
                "reasons": "locked",
                "ruser": "",
                "bucket": None,
                "net": None,
                "digest": None,
            },
        )
    conn.execute(
        "UPDATE accounts SET notify_on = 'success', notify_to = 'carol@localhost' "
        "WHERE username = 'carol'"
    )
    conn.commit()
    conn.close()


def _batch(gate):
    names = ["alice", "bob", "alice", "carol", "dave", "erin", "dave", "b\x01ad"]
    return [
        gate.attempt(user, "radius", "vpn", f"10.0.0.{i}", f"10.0.0.{i}", "nas=n1")._replace(
            time=T0 + i
        )
        for i, user in enumerate(names)
    ]


def _contents(url):
    conn = connect(url)
    try:
        return (
            conn.all(
                "SELECT username, first_seen, last_activity, reset_at, status, status_why,"
                " status_since, locked_at FROM accounts ORDER BY username"
            ),
            conn.all(
                "SELECT ts, username, channel, service, address, address_raw, client,"
                " outcome, reasons FROM events ORDER BY ts, username, outcome"
            ),
            conn.all(
                "SELECT created, kind, subject, recipients, title, body FROM outbox"
                " ORDER BY created, kind, subject"
            ),
        )
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request, tmp_path):
    """Two fresh stores of one engine with the same seeded history."""
    from store.migrate import create_or_upgrade

    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / name / 'pam-guard.db'}" for name in ("a", "b")]
        for url in urls:
            create_or_upgrade(url)
    else:
        server = request.getfixturevalue("postgres_server")
        urls = [server.create_database(template=server.migrated_template()) for _ in range(2)]
    for url in urls:
        _seed(url)
    return urls


def test_lean_batch_stores_what_one_by_one_stores(two_stores):
    lean_url, single_url = two_stores
    lean, single = _gate(lean_url), _gate(single_url)
    try:
        (lean_verdicts,) = lean.record_outcomes([(SUCCESS, _batch(lean))])
        valid = [a for a in _batch(single) if a.user != "b\x01ad"]
        single_verdicts = single._in_transaction(
            None, lambda conn: [single._success_in(conn, a) for a in valid]
        )
    finally:
        lean.close()
        single.close()
    assert lean_verdicts == single_verdicts
    assert [v.status for v in lean_verdicts] == [
        "protected",
        "high_risk",
        "protected",
        "protected",
        "new",
        "new",
        "protected",
    ]
    got, want = _contents(lean_url), _contents(single_url)
    assert got == want
    accounts, events, outbox = got
    denials = lean.settings.status.denied_limit + 1
    assert len(events) == 7 + denials  # the seven successes and bob's seeded denials
    assert {(kind, subject) for _c, kind, subject, *_rest in outbox} == {
        ("status", "bob"),
        ("user_success", "carol"),
    }


def test_kept_copies_store_the_same_and_stay_equal_to_the_store(two_stores, tmp_path):
    """The RADIUS recorder passes kept copies of accounts (radius_hook.hot) so a success of
    a user with a current copy reads nothing: the store then holds what recording without
    copies holds, but for the activity time of a user whose later successes changed
    nothing else within policy.account.ACTIVITY_RESOLUTION_SECONDS (alice), and each copy equals
    the account read back."""
    from radius_hook.hot import HotAccounts

    copied_url, plain_url = two_stores
    copied, plain = _gate(copied_url), _gate(plain_url)
    (tmp_path / "counters").write_bytes(b"")
    copies = HotAccounts(str(tmp_path / "counters") + "-changes")
    try:
        batch = _batch(copied)
        # loads and keeps alice, carol (bob: denials)
        copied.record_outcomes([(SUCCESS, batch[:4])], copies)
        kept = {u for u in ("alice", "bob", "carol") if copies.get(u, 0.0)}
        assert kept == {"alice", "carol"}
        copied.record_outcomes([(SUCCESS, batch[4:])], copies)
        # alice and bob again: alice from her copy
        copied.record_outcomes([(SUCCESS, batch[:2])], copies)
        plain.record_outcomes([(SUCCESS, batch[:4])])
        plain.record_outcomes([(SUCCESS, batch[4:])])
        plain.record_outcomes([(SUCCESS, batch[:2])])
        got, want = _contents(copied_url), _contents(plain_url)
        assert got[1:] == want[1:]  # events and notices
        # alice at T0 + 2 (and again at T0) changed nothing but her times: her row keeps
        # those of her first success at T0; everyone else's are the same.
        assert [r for r in got[0] if r[0] != "alice"] == [r for r in want[0] if r[0] != "alice"]
        (alice,) = [r for r in got[0] if r[0] == "alice"]
        (plain_alice,) = [r for r in want[0] if r[0] == "alice"]
        assert alice[2:4] == (T0, T0) and plain_alice[2:4] == (T0 + 2, T0 + 2)
        assert alice[:2] + alice[4:] == plain_alice[:2] + plain_alice[4:]
        for user in ("alice", "carol", "dave", "erin"):
            copy = copies.get(user, 0.0)
            if copy is not None:
                assert copied.account_state(user, T0 + 100) == copy, user
    finally:
        copies.close()
        copied.close()
        plain.close()


def _mixed(gate):
    """Runs as the recorder makes them: successes of users with nothing else first, then the
    others' outcomes in order. Dave fails three times (the default lockout locks him), bob
    fails after a success, a failure of an invalid name is stored as its refusal."""

    def at(user, i, address="10.0.0.9"):
        return gate.attempt(user, "radius", "vpn", address, address, "nas=n1")._replace(time=T0 + i)

    return [
        (SUCCESS, [at("alice", 0), at("carol", 1)]),
        (FAILURE, [at("dave", 2), at("dave", 3), at("bob", 4), at("b\x01ad", 5)]),
        (SUCCESS, [at("bob", 6)]),
        (FAILURE, [at("dave", 7), at("erin", 8)]),
        (SUCCESS, [at("erin", 9)]),
    ]


def _one_by_one(gate, runs):
    verdicts = []
    for kind, run in runs:
        record = gate.record_success if kind == SUCCESS else gate.record_failure
        verdicts.append([record(a) for a in run])
    return verdicts


def test_successes_and_failures_in_one_transaction_store_what_one_by_one_stores(two_stores):
    grouped_url, single_url = two_stores
    grouped, single = _gate(grouped_url), _gate(single_url)
    commits: list = []
    grouped._on_commit = commits.append
    try:
        grouped_verdicts = grouped.record_outcomes(_mixed(grouped))
        single_verdicts = _one_by_one(single, _mixed(single))
    finally:
        grouped.close()
        single.close()
    assert commits == [["b\x01ad", "bob", "dave", "erin"]]  # one commit; failures' users told
    assert grouped_verdicts == single_verdicts
    dave = grouped_verdicts[3][0]
    assert dave.lock is not None  # his third failure in a row
    got, want = _contents(grouped_url), _contents(single_url)
    assert got == want
    accounts, events, _outbox = got
    assert [row[7] is not None for row in accounts if row[0] == "dave"] == [True]
    assert ("b\\x01ad", "denied", "invalid_user") in {(e[1], e[7], e[8]) for e in events}


def test_a_store_error_in_a_group_stores_none_of_it(two_stores, monkeypatch):
    """One transaction: a failure that cannot be stored takes the group's successes with it
    (the recorder retries the whole group, so none is counted twice)."""
    from store.db import StoreError

    url, _other = two_stores
    gate = _gate(url)
    before = _contents(url)
    real = gate._failure_in

    def failing(conn, attempt):
        if attempt.user == "bob":
            raise StoreError("disk full")
        return real(conn, attempt)

    monkeypatch.setattr(gate, "_failure_in", failing)
    try:
        with pytest.raises(StoreError):
            gate.record_outcomes(_mixed(gate))
    finally:
        gate.close()
    assert _contents(url) == before


def test_copies_loaded_in_bulk_are_what_one_by_one_reads_give(two_stores, tmp_path):
    """A RADIUS module starts with copies of the accounts most recently active
    (radius_hook.hot.preload): each equals `account_state`'s read of that user; a user
    refused recently or not active within the period is left out; a user written after the
    counters were noted is not trusted."""
    from radius_hook.hot import HotAccounts
    from store import changes

    url, _other = two_stores
    gate = _gate(url)
    (tmp_path / "counters").write_bytes(b"")
    copies = HotAccounts(str(tmp_path / "counters") + changes.SUFFIX)
    try:
        states = gate.recent_account_states(T0, 2 * DAY, 10)
        assert sorted(user for user, _a, _h in states) == ["alice", "carol"]  # not bob, erin
        for user, account, history in states:
            assert (account, history) == gate.account_state(user, T0), user
        assert len(gate.recent_account_states(T0, 2 * DAY, 1)) == 1
        assert len(gate.recent_account_states(T0, 100 * DAY, 10)) == 3  # erin too

        def read_then_carol_written():
            found = gate.recent_account_states(T0, 2 * DAY, 10)
            changes.bump_users(copies.path, ["carol"])
            return found

        assert copies.preload(read_then_carol_written, 0.0) == 2
        assert copies.get("alice", 1.0) == gate.account_state("alice", T0)
        assert copies.get("carol", 1.0) is None
        assert copies.get("bob", 1.0) is None
    finally:
        copies.close()
        gate.close()
