"""Every login-path statement of store/statements.py, on SQLite and on a real PostgreSQL.

The login path runs plain SQL through the DB-API driver while the schema comes from the
SQLAlchemy tables via the Alembic migrations (DESIGN.md). These tests hold the two together:
- each statement runs, with realistic parameters, against the schema the migrations made,
  and returns what the login path expects of it;
- each read of events, sessions and the outbox uses an index (EXPLAIN QUERY PLAN on SQLite,
  EXPLAIN on PostgreSQL after ANALYZE over a realistic history), so a decision does not scan;
- the migrated schema is exactly store/schema.py (alembic compare_metadata finds no diff).
"""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from policy import account as transition
from store import statements as sql
from store.db import connect
from store.migrate import create_or_upgrade, engine_for
from store.schema import metadata
from tests.store.fill import begin_bulk, fill

STATEMENTS = {
    name: text for name, text in vars(sql).items() if name.isupper() and isinstance(text, str)
}

NOW = 1_800_000_000.0
MIN = 60.0
USER = "alice"


# --- stores: one seeded store per engine for the module; each test rolls back its changes --


def _seed(conn) -> None:
    """A small, known history for USER through the statements themselves."""
    conn.begin(write=True)
    for user in (USER, "bob"):
        conn.execute(sql.LOCK_ACCOUNT, {"user": user, "now": NOW - 3600, "false": False})
    events = [
        (NOW - 50 * MIN, "success", "192.0.2.1", {}),
        (NOW - 40 * MIN, "success", "192.0.2.2", {}),
        (NOW - 10 * MIN, "success", "2001:db8::1", {}),
        (NOW - 4 * MIN, "failure", "192.0.2.9", {"digest": "d1"}),
        (NOW - 3 * MIN, "failure", "192.0.2.9", {"digest": "d2", "bucket": "unfamiliar"}),
        (NOW - 2 * MIN, "denied", "198.51.100.7", {}),
    ]
    for ts, outcome, address, extra in events:
        conn.execute(sql.INSERT_EVENT, _event(ts, USER, outcome, address, **extra))
    # bob's is a repeated wrong password: it counts toward no address's failures.
    bob_failure = _event(NOW - 1 * MIN, "bob", "failure", "192.0.2.9", bucket="repeated")
    conn.execute(sql.INSERT_EVENT, bob_failure)
    conn.execute(sql.NOTE_FAMILIAR, {"user": USER, "source": "192.0.2.0/24", "now": NOW - 40 * MIN})
    conn.execute(
        sql.NOTE_FAMILIAR, {"user": USER, "source": "2001:db8::/64", "now": NOW - 10 * MIN}
    )
    conn.execute(
        sql.WRITE_BLOCK,
        {
            "address": "203.0.113.9",
            "blocked_at": NOW - 5 * MIN,
            "expires": NOW + 55 * MIN,
            "block_count": 1,
            "failures": 10,
            "users": "alice,bob",
        },
    )
    conn.execute(
        "INSERT INTO address_rules (username, kind, entry) VALUES (:u, 'allow', :e)",
        {"u": USER, "e": "192.0.2.0/24"},
    )
    conn.execute(sql.OPEN_SESSION, _session(NOW - 30 * MIN, key="s-open", address="192.0.2.2"))
    conn.execute(sql.OPEN_SESSION, _session(NOW - 20 * MIN, key="s-ended", address="192.0.2.1"))
    conn.execute(sql.CLOSE_SESSION, _session(NOW - 15 * MIN, key="s-ended"))
    conn.execute(
        sql.INSERT_NOTICE,
        {
            "now": NOW - 30 * MIN,
            "kind": "lock",
            "subject": USER,
            "recipients": "root@localhost",
            "title": "locked",
            "body": "alice is locked",
        },
    )
    conn.commit()


def _event(ts, user, outcome, address, reasons="", bucket=None, digest=None):
    failed = outcome == "failure"
    return {
        "ts": ts,
        "user": user,
        "channel": "pam",
        "service": "sshd",
        "address": address,
        "address_raw": address,
        "client": "ssh:notty",
        "secure": True,
        "outcome": outcome,
        "reasons": reasons,
        "ruser": "",
        "bucket": bucket,
        "net": address if failed else None,  # an IPv4 address is its own block key
        "digest": digest,
    }


def _session(now, key, address=None, nas="", channel="pam", user=USER):
    return {
        "user": user,
        "channel": channel,
        "service": "sshd",
        "key": key,
        "nas": nas,
        "address": address,
        "client": "pts/1",
        "now": now,
    }


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('statements') / 'pam-guard.db'}"
    create_or_upgrade(url)
    conn = connect(url)
    _seed(conn)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def pg_store(postgres_server):
    url = postgres_server.create_database(template=postgres_server.migrated_template())
    conn = connect(url)
    _seed(conn)
    yield conn
    conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def conn(request):
    """The seeded store of one engine, inside a transaction rolled back after the test."""
    store = request.getfixturevalue("sqlite_store" if request.param == "sqlite" else "pg_store")
    store.begin(write=True)
    yield store
    store.rollback()


# --- one case a statement: parameters, and what the result must be --------------------------


def _rows(conn, statement, params):
    return [tuple(r) for r in conn.all(statement, params)]


def _account(conn, user=USER):
    return conn.one(
        "SELECT reset_at, locked_at, lock_expires, lock_reason, status, "
        "status_why, status_since, last_activity FROM accounts WHERE username = :u",
        {"u": user},
    )


def _session_row(conn, key):
    return conn.one("SELECT last_update, ended FROM sessions WHERE session_key = :k", {"k": key})


def case_lock_account(conn):
    row = conn.one(sql.LOCK_ACCOUNT, {"user": USER, "now": NOW, "false": False})
    assert row[0] == NOW - 3600  # first_seen kept: the existing row is returned, not replaced
    new = conn.one(sql.LOCK_ACCOUNT, {"user": "carol", "now": NOW, "false": False})
    assert new[0] == NOW and new[2] == 0 and not new[6]  # first_seen, reset_at, exempt
    assert tuple(new[10:]) == (0, None, None, None)  # no lock yet, none before


def case_account_names(conn):
    assert _rows(conn, sql.ACCOUNT_NAMES, {}) == [("alice",), ("bob",)]


def case_read_account(conn):
    row = conn.one(sql.READ_ACCOUNT, {"user": USER})
    assert row[0] == NOW - 3600 and row[5] == ""
    assert conn.one(sql.READ_ACCOUNT, {"user": "nobody"}) is None


def case_account_and_denials(conn):
    row = conn.one(sql.ACCOUNT_AND_DENIALS, {"user": USER, "since": NOW - 5 * MIN})
    assert tuple(row[:14]) == tuple(conn.one(sql.READ_ACCOUNT, {"user": USER}))
    assert row[14] == 1  # the denial 2 min ago; failures and successes are not counted
    assert conn.one(sql.ACCOUNT_AND_DENIALS, {"user": USER, "since": NOW - 1 * MIN})[14] == 0
    assert conn.one(sql.ACCOUNT_AND_DENIALS, {"user": "bob", "since": NOW - 5 * MIN})[14] == 0
    assert conn.one(sql.ACCOUNT_AND_DENIALS, {"user": "nobody", "since": 0}) is None


def case_insert_event(conn):
    conn.execute(sql.INSERT_EVENT, _event(NOW, USER, "failure", None))
    got = conn.one("SELECT address, outcome FROM events WHERE ts = :t", {"t": NOW})
    assert tuple(got) == (None, "failure")


def case_count_outcome_since(conn):
    count = conn.one(
        sql.COUNT_OUTCOME_SINCE, {"user": USER, "outcome": "failure", "since": NOW - 5 * MIN}
    )[0]
    assert count == 2
    assert (
        conn.one(
            sql.COUNT_OUTCOME_SINCE, {"user": USER, "outcome": "failure", "since": NOW - 3 * MIN}
        )[0]
        == 0
    )  # strictly after


def case_outcomes_since(conn):
    rows = conn.all(sql.OUTCOMES_SINCE, {"user": USER, "since": NOW - 4 * MIN})
    assert sorted(tuple(r) for r in rows) == [
        (NOW - 4 * MIN, "failure", None),
        (NOW - 3 * MIN, "failure", "unfamiliar"),
        (NOW - 2 * MIN, "denied", None),
    ]
    assert conn.all(sql.OUTCOMES_SINCE, {"user": "bob", "since": NOW}) == []


def case_count_failures_since(conn):
    count = lambda since: conn.one(sql.COUNT_FAILURES_SINCE, {"user": USER, "since": since})[0]  # noqa: E731
    assert count(NOW - 5 * MIN) == 1  # the unfamiliar one counts apart
    assert count(NOW - 4 * MIN) == 0  # strictly after


def case_count_unfamiliar_since(conn):
    count = lambda since: conn.one(sql.COUNT_UNFAMILIAR_SINCE, {"user": USER, "since": since})[0]  # noqa: E731
    assert count(NOW - 5 * MIN) == 1
    assert count(NOW - 3 * MIN) == 0
    assert conn.one(sql.COUNT_UNFAMILIAR_SINCE, {"user": "bob", "since": 0})[0] == 0


def case_address_failures(conn):
    got = _rows(conn, sql.ADDRESS_FAILURES, {"net": "192.0.2.9", "since": NOW - 5 * MIN})
    assert sorted(got) == [(USER, NOW - 4 * MIN), (USER, NOW - 3 * MIN)]  # bob's repeated: no
    assert _rows(conn, sql.ADDRESS_FAILURES, {"net": "192.0.2.9", "since": NOW - 3 * MIN}) == []
    assert _rows(conn, sql.ADDRESS_FAILURES, {"net": "198.51.100.7", "since": 0}) == []  # denial


def case_recent_digests(conn):
    params = {"user": USER, "since": NOW - 5 * MIN, "limit": 3}
    assert _rows(conn, sql.RECENT_DIGESTS, params) == [(NOW - 3 * MIN, "d2"), (NOW - 4 * MIN, "d1")]
    assert _rows(conn, sql.RECENT_DIGESTS, dict(params, limit=1)) == [(NOW - 3 * MIN, "d2")]
    assert _rows(conn, sql.RECENT_DIGESTS, dict(params, since=NOW - 4 * MIN)) == [
        (NOW - 3 * MIN, "d2")
    ]
    assert _rows(conn, sql.RECENT_DIGESTS, dict(params, user="bob")) == []  # no digest kept
    # Distinct: a password tried again moves up with its newest time, once.
    conn.execute(sql.INSERT_EVENT, _event(NOW - 1 * MIN, USER, "failure", "192.0.2.9", digest="d1"))
    assert _rows(conn, sql.RECENT_DIGESTS, params) == [(NOW - 1 * MIN, "d1"), (NOW - 3 * MIN, "d2")]


def case_familiar_sources(conn):
    got = _rows(conn, sql.FAMILIAR_SOURCES, {"user": USER, "since": NOW - 45 * MIN})
    assert sorted(got) == [("192.0.2.0/24",), ("2001:db8::/64",)]
    got = _rows(conn, sql.FAMILIAR_SOURCES, {"user": USER, "since": NOW - 20 * MIN})
    assert got == [("2001:db8::/64",)]
    assert _rows(conn, sql.FAMILIAR_SOURCES, {"user": "bob", "since": 0}) == []


def case_note_familiar(conn):
    source = {"user": USER, "source": "192.0.2.0/24"}
    conn.execute(sql.NOTE_FAMILIAR, dict(source, now=NOW))
    when = lambda: conn.one(  # noqa: E731
        "SELECT last_success FROM familiar_sources WHERE username = :user AND source = :source",
        source,
    )[0]
    assert when() == NOW
    conn.execute(sql.NOTE_FAMILIAR, dict(source, now=NOW - 60))  # stored late: never moves back
    assert when() == NOW
    conn.execute(sql.NOTE_FAMILIAR, {"user": "bob", "source": "local", "now": NOW})
    assert _rows(conn, sql.FAMILIAR_SOURCES, {"user": "bob", "since": 0}) == [("local",)]


def case_read_block(conn):
    row = conn.one(sql.READ_BLOCK, {"net": "203.0.113.9"})
    assert tuple(row) == ("203.0.113.9", NOW - 5 * MIN, NOW + 55 * MIN, 1, None)
    assert conn.one(sql.READ_BLOCK, {"net": "192.0.2.9"}) is None


def case_write_block(conn):
    block = {
        "address": "203.0.113.9",
        "blocked_at": NOW,
        "expires": None,  # until an admin unblocks
        "block_count": 2,
        "failures": 12,
        "users": "alice,bob,carol",
    }
    conn.execute(sql.WRITE_BLOCK, block)
    row = conn.one(
        "SELECT blocked_at, expires, block_count, failures, users FROM address_blocks "
        "WHERE address = '203.0.113.9'"
    )
    assert tuple(row) == (NOW, None, 2, 12, "alice,bob,carol")
    conn.execute(sql.WRITE_BLOCK, dict(block, address="2001:db8:1::/64", block_count=1))
    assert conn.one(sql.READ_BLOCK, {"net": "2001:db8:1::/64"})[3] == 1


def case_lock_address(conn):
    if conn.dialect == "sqlite":
        pytest.skip("n/a: PostgreSQL only: SQLite's BEGIN IMMEDIATE already serialises writers")
    conn.execute(sql.LOCK_ADDRESS, {"net": "192.0.2.9"})
    held = conn.one(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND pid = pg_backend_pid() AND classid = 28775"
    )[0]
    assert held == 1


def case_address_rules(conn):
    assert _rows(conn, sql.ADDRESS_RULES, {"user": USER}) == [("allow", "192.0.2.0/24")]


def case_last_success_addresses(conn):
    got = _rows(conn, sql.LAST_SUCCESS_ADDRESSES, {"user": USER, "limit": 2})
    assert got == [("2001:db8::1",), ("192.0.2.2",)]  # newest first, limited


def case_last_success_time(conn):
    assert _rows(conn, sql.LAST_SUCCESS_TIME, {"user": USER}) == [(NOW - 10 * MIN,)]
    assert _rows(conn, sql.LAST_SUCCESS_TIME, {"user": "bob"}) == [(None,)]  # failures only


def case_successes_since(conn):
    got = _rows(conn, sql.SUCCESSES_SINCE, {"user": USER, "since": NOW - 45 * MIN})
    assert sorted(got) == [(NOW - 40 * MIN, "192.0.2.2"), (NOW - 10 * MIN, "2001:db8::1")]


def case_session_ends_since(conn):
    got = _rows(conn, sql.SESSION_ENDS_SINCE, {"user": USER, "since": NOW - 16 * MIN})
    assert got == [("192.0.2.1", NOW - 15 * MIN)]
    assert _rows(conn, sql.SESSION_ENDS_SINCE, {"user": USER, "since": NOW - 14 * MIN}) == []


def case_open_sessions(conn):
    got = _rows(conn, sql.OPEN_SESSIONS, {"user": USER, "fresh_since": NOW - 720 * MIN})
    assert got == [("sshd", "192.0.2.2", NOW - 30 * MIN, NOW - 30 * MIN)]
    assert _rows(conn, sql.OPEN_SESSIONS, {"user": USER, "fresh_since": NOW - 29 * MIN}) == []


def case_update_account_after(conn):
    params = {"user": USER, "now": NOW, "status": "protected", "status_why": "rules on"}
    conn.execute(sql.UPDATE_ACCOUNT_AFTER, params)
    assert tuple(_account(conn)[4:]) == ("protected", "rules on", NOW, NOW)
    conn.execute(sql.UPDATE_ACCOUNT_AFTER, dict(params, now=NOW + 60))
    assert tuple(_account(conn)[4:]) == ("protected", "rules on", NOW, NOW + 60)  # same: since kept
    conn.execute(sql.UPDATE_ACCOUNT_AFTER, dict(params, now=NOW + 30))  # stored late
    assert _account(conn)[7] == NOW + 60


def case_record_success(conn):
    params = {"user": USER, "now": NOW, "status": "protected", "status_why": "rules on"}
    conn.execute(sql.RECORD_SUCCESS, params)
    assert tuple(_account(conn)) == (NOW, None, None, "", "protected", "rules on", NOW, NOW)
    conn.execute(sql.RECORD_SUCCESS, dict(params, now=NOW + 60))
    assert tuple(_account(conn)) == (
        NOW + 60,
        None,
        None,
        "",
        "protected",
        "rules on",
        NOW,
        NOW + 60,
    )  # same status: status_since kept
    conn.execute(sql.RECORD_SUCCESS, dict(params, now=NOW + 120, status="new"))
    assert tuple(_account(conn)[4:7]) == ("new", "rules on", NOW + 120)
    # Stored late (after a later outcome): the reset and the activity do not go back.
    conn.execute(sql.RECORD_SUCCESS, dict(params, now=NOW + 90, status="new"))
    assert _account(conn)[0] == NOW + 120 and _account(conn)[7] == NOW + 120
    assert conn.one("SELECT username FROM accounts WHERE username = 'bob'") is not None
    assert _account(conn, "bob")[0] == 0  # other accounts untouched


def case_set_status(conn):
    conn.execute(
        sql.SET_STATUS, {"user": USER, "now": NOW, "status": "inactive", "status_why": "idle"}
    )
    row = _account(conn)
    assert tuple(row[4:7]) == ("inactive", "idle", NOW) and row[7] is None  # activity untouched


def case_reset_failures(conn):
    conn.execute(sql.RESET_FAILURES, {"user": USER, "now": NOW})
    assert _account(conn)[0] == NOW
    conn.execute(sql.RESET_FAILURES, {"user": USER, "now": NOW - 60})  # stored late
    assert _account(conn)[0] == NOW


def case_set_lock(conn):
    conn.execute(sql.SET_LOCK, {"user": USER, **transition.locked(NOW, "3 failures")})
    assert tuple(_account(conn)[1:4]) == (NOW, None, "3 failures")


def _locks(conn, user=USER):
    return tuple(
        conn.one(
            "SELECT locked_at, lock_expires, lock_reason, unfamiliar_locked_at, "
            "unfamiliar_lock_expires, lock_count, last_lock_at FROM accounts "
            "WHERE username = :u",
            {"u": user},
        )
    )


def case_write_locks(conn):
    locks = {
        "locked_at": NOW,
        "lock_expires": NOW + 600,
        "lock_reason": "3 failed logins",
        "unfamiliar_locked_at": NOW - 60,
        "unfamiliar_lock_expires": NOW + 240,
        "lock_count": 2,
        "last_lock_at": NOW,
    }
    conn.execute(sql.WRITE_LOCKS, {"user": USER, **locks})
    assert _locks(conn) == tuple(locks.values())
    assert _locks(conn, "bob") == (None, None, "", None, None, 0, None)  # others untouched


def case_clear_lock(conn):
    locks = {
        "locked_at": NOW,
        "lock_expires": NOW + 600,
        "lock_reason": "x",
        "unfamiliar_locked_at": NOW,
        "unfamiliar_lock_expires": NOW + 300,
        "lock_count": 3,
        "last_lock_at": NOW,
    }
    conn.execute(sql.WRITE_LOCKS, {"user": USER, **locks})
    conn.execute(sql.CLEAR_LOCK, {"user": USER, **transition.unlocked(NOW + 1)})
    assert tuple(_account(conn)[:4]) == (NOW + 1, None, None, "")
    assert _locks(conn) == (None, None, "", None, None, 0, None)  # the count starts again


def case_last_successes(conn):
    assert _rows(conn, sql.LAST_SUCCESSES, {"user": USER}) == [(NOW - 10 * MIN,), (NOW - 40 * MIN,)]
    assert _rows(conn, sql.LAST_SUCCESSES, {"user": "bob"}) == []


def case_failures_between(conn):
    params = {"user": USER, "since": NOW - 10 * MIN, "until": NOW}
    assert _rows(conn, sql.FAILURES_BETWEEN, params) == [
        (NOW - 3 * MIN, "192.0.2.9", "192.0.2.9", 2)
    ]
    # strictly between: the failure at the bound is left out
    params.update(until=NOW - 3 * MIN)
    assert _rows(conn, sql.FAILURES_BETWEEN, params) == [
        (NOW - 4 * MIN, "192.0.2.9", "192.0.2.9", 1)
    ]
    params.update(since=NOW - 4 * MIN)
    assert _rows(conn, sql.FAILURES_BETWEEN, params) == []


def case_last_failure_sources(conn):
    got = _rows(conn, sql.LAST_FAILURE_SOURCES, {"user": USER, "now": NOW, "limit": 5})
    assert got == [("192.0.2.9", "192.0.2.9")] * 2


def case_last_notice(conn):
    assert conn.one(sql.LAST_NOTICE, {"kind": "lock", "subject": USER})[0] == NOW - 30 * MIN
    assert conn.one(sql.LAST_NOTICE, {"kind": "ip_alert", "subject": USER})[0] is None


def case_insert_notice(conn):
    conn.execute(
        sql.INSERT_NOTICE,
        {
            "now": NOW,
            "kind": "ip_alert",
            "subject": "192.0.2.9",
            "recipients": "root@localhost",
            "title": "spray",
            "body": "3 users",
        },
    )
    row = conn.one("SELECT attempts, next_try, sent_at FROM outbox WHERE kind = 'ip_alert'")
    assert tuple(row) == (0, NOW, None)


def case_open_session(conn):
    conn.execute(sql.OPEN_SESSION, _session(NOW, key="acct-1", nas="10.0.0.1", channel="radius"))
    conn.execute(
        sql.OPEN_SESSION, _session(NOW + 5, key="acct-1", nas="10.0.0.1", channel="radius")
    )
    count = conn.one("SELECT count(*) FROM sessions WHERE session_key = 'acct-1'")[0]
    assert count == 1 and tuple(_session_row(conn, "acct-1")) == (NOW + 5, None)  # upsert
    conn.execute(sql.OPEN_SESSION, _session(NOW + 9, key="s-ended"))  # reopened: end cleared
    assert tuple(_session_row(conn, "s-ended")) == (NOW + 9, None)


def case_touch_session(conn):
    conn.execute(sql.TOUCH_SESSION, _session(NOW, key="s-open"))
    conn.execute(sql.TOUCH_SESSION, _session(NOW, key="s-ended"))
    assert _session_row(conn, "s-open")[0] == NOW
    assert _session_row(conn, "s-ended")[0] == NOW - 15 * MIN  # an ended session stays ended


def case_close_session(conn):
    conn.execute(sql.CLOSE_SESSION, _session(NOW, key="s-open"))
    assert tuple(_session_row(conn, "s-open")) == (NOW, NOW)


def case_session_user(conn):
    got = conn.one(sql.SESSION_USER, {"channel": "pam", "nas": "", "key": "s-open"})
    assert got[0] == USER
    assert conn.one(sql.SESSION_USER, {"channel": "radius", "nas": "", "key": "s-open"}) is None


def case_close_nas_sessions(conn):
    for key in ("a", "b"):
        conn.execute(sql.OPEN_SESSION, _session(NOW, key=key, nas="10.0.0.1", channel="radius"))
    conn.execute(sql.OPEN_SESSION, _session(NOW, key="c", nas="10.0.0.2", channel="radius"))
    conn.execute(sql.CLOSE_NAS_SESSIONS, {"channel": "radius", "nas": "10.0.0.1", "now": NOW + 1})
    assert [_session_row(conn, k)[1] for k in "abc"] == [NOW + 1, NOW + 1, None]


def case_touch_activity(conn):
    conn.execute(sql.TOUCH_ACTIVITY, {"user": USER, "now": NOW})
    assert _account(conn)[7] == NOW


def case_recent_accounts(conn):
    for user, last in ((USER, NOW - 60), ("bob", NOW - 30)):
        conn.execute(sql.TOUCH_ACTIVITY, {"user": user, "now": last})
    params = {"active_since": NOW - 3600, "since": NOW - 5 * MIN, "limit": 10}
    names = lambda: [row[0] for row in conn.all(sql.RECENT_ACCOUNTS, params)]  # noqa: E731
    assert names() == ["bob"]  # alice was refused two minutes ago
    params["since"] = NOW - MIN  # her refusal is older than that
    assert names() == ["bob", USER]  # the most recently active first
    row = conn.all(sql.RECENT_ACCOUNTS, params)[1]
    assert row[1:3] == (NOW - 3600, NOW - 60)  # first_seen, last_activity
    params["limit"] = 1
    assert names() == ["bob"]
    params.update(limit=10, active_since=NOW - 45)
    assert names() == ["bob"]


CASES = {
    name[len("case_") :].upper(): fn
    for name, fn in dict(globals()).items()
    if name.startswith("case_")
}


def test_every_statement_has_a_case():
    """A statement added to store/statements.py must be added here too."""
    assert sorted(STATEMENTS) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_statement_runs_and_returns_what_the_login_path_expects(conn, name):
    CASES[name](conn)


# --- every read of events, sessions and the outbox uses an index ----------------------------

# Statement -> parameters for the plan checks, on a store of many users (see tests.store.fill).
BIG = 1_800_000_000.0
READS = {
    "COUNT_OUTCOME_SINCE": {"user": "user7", "outcome": "failure", "since": BIG - 300},
    "COUNT_FAILURES_SINCE": {"user": "user7", "since": BIG - 300},
    "COUNT_UNFAMILIAR_SINCE": {"user": "user7", "since": BIG - 300},
    "ADDRESS_FAILURES": {"net": "10.7.3.1", "since": BIG - 300},
    "RECENT_DIGESTS": {"user": "user7", "since": BIG - 300, "limit": 3},
    "LAST_SUCCESSES": {"user": "user7"},
    "FAILURES_BETWEEN": {"user": "user7", "since": BIG - 86400, "until": BIG},
    "FAMILIAR_SOURCES": {"user": "user7", "since": BIG - 30 * 86400},
    "READ_BLOCK": {"net": "10.7.3.1"},
    "LAST_SUCCESS_ADDRESSES": {"user": "user7", "limit": 15},
    "SUCCESSES_SINCE": {"user": "user7", "since": BIG - 900},
    "LAST_SUCCESS_TIME": {"user": "user7"},
    "SESSION_ENDS_SINCE": {"user": "user7", "since": BIG - 900},
    "OPEN_SESSIONS": {"user": "user7", "fresh_since": BIG - 43200},
    "SESSION_USER": {"channel": "radius", "nas": "nas7", "key": "fill-7"},
    "LAST_FAILURE_SOURCES": {"user": "user7", "now": BIG, "limit": 5},
    "LAST_NOTICE": {"kind": "lock", "subject": "user7"},
    "READ_ACCOUNT": {"user": "user7"},
    "ACCOUNT_AND_DENIALS": {"user": "user7", "since": BIG - 3600},
    "OUTCOMES_SINCE": {"user": "user7", "since": BIG - 60},
    "ADDRESS_RULES": {"user": "user7"},
    # Writes that find their rows by a WHERE clause: the same must hold for them.
    "TOUCH_SESSION": {"channel": "radius", "nas": "nas7", "key": "fill-7", "now": BIG},
    "CLOSE_SESSION": {"channel": "radius", "nas": "nas7", "key": "fill-7", "now": BIG},
    "CLOSE_NAS_SESSIONS": {"channel": "radius", "nas": "nas7", "now": BIG},
    "UPDATE_ACCOUNT_AFTER": {"user": "user7", "now": BIG, "status": "new", "status_why": ""},
    "RESET_FAILURES": {"user": "user7", "now": BIG},
    "RECORD_SUCCESS": {"user": "user7", "now": BIG, "status": "new", "status_why": ""},
    # Once when a RADIUS module starts: every account is read, the events by an index.
    "RECENT_ACCOUNTS": {"active_since": BIG - 86400, "since": BIG - 3600, "limit": 50000},
}
# Bulk reads that read a table whole by design (once, at start), and which.
WHOLE_TABLE = {"RECENT_ACCOUNTS": "accounts"}
# Reads that return rows in index order, so need no sort of the user's whole history.
ORDERED = ("LAST_SUCCESS_ADDRESSES", "LAST_FAILURE_SOURCES", "LAST_SUCCESSES")
INDEXED_TABLES = (
    "events",
    "sessions",
    "outbox",
    "accounts",
    "address_rules",
    "familiar_sources",
    "address_blocks",
)


def test_plan_checks_cover_every_read_of_events_and_sessions():
    """Any statement that reads events or sessions with a WHERE clause is plan-checked."""
    for name, text in STATEMENTS.items():
        lowered = " ".join(text.lower().split())
        touches = any(
            f"from {t} " in lowered or f"update {t} " in lowered for t in ("events", "sessions")
        )
        if touches and " where " in lowered:
            assert name in READS, name


def _fill_outbox_and_rules(conn, rows: int = 20000) -> None:
    """Many queued notices, address-list entries, familiar sources and address blocks, so that
    a scan would show."""
    begin_bulk(conn)
    conn.execute(
        """
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
        INSERT INTO outbox (created, kind, subject, recipients, title, body, attempts, next_try)
        SELECT :end - i, 'lock', 'user' || (i % 2000), 'root@localhost', 't', 'b', 0, :end - i
        FROM seq""",
        {"n": rows, "end": BIG},
    )
    conn.execute(
        """
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
        INSERT INTO address_rules (username, kind, entry)
        SELECT 'user' || (i % 2000), 'allow', '10.' || (i % 256) || '.' || (i / 256) || '.0/24'
        FROM seq""",
        {"n": rows},
    )
    conn.execute(
        """
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
        INSERT INTO familiar_sources (username, source, last_success)
        SELECT 'user' || (i % 2000), '10.' || (i % 256) || '.' || (i / 256) || '.0/24', :end - i
        FROM seq""",
        {"n": rows, "end": BIG},
    )
    conn.execute(
        """
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
        INSERT INTO address_blocks (address, blocked_at, expires, block_count, failures, users)
        SELECT '10.' || (i % 256) || '.' || (i / 256) || '.1', :end - i, :end - i + 3600, 1, 10, ''
        FROM seq""",
        {"n": rows, "end": BIG},
    )
    conn.commit()


@pytest.fixture(scope="module", params=["analyzed", "no-stats"])
def big_sqlite(request, tmp_path_factory):
    """A default store never gets ANALYZE, so plans must hold with and without statistics."""
    url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'pam-guard.db'}"
    create_or_upgrade(url)
    conn = connect(url)
    _fill_outbox_and_rules(conn)
    fill(conn, events=60000, users=2000, sessions=20000, end=BIG, stats=request.param == "analyzed")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def big_pg(postgres_server):
    url = postgres_server.create_database(template=postgres_server.migrated_template())
    conn = connect(url)
    _fill_outbox_and_rules(conn)
    fill(conn, events=60000, users=2000, sessions=20000, end=BIG)
    yield conn
    conn.close()


@pytest.mark.parametrize("name", sorted(READS))
def test_sqlite_plan_uses_an_index(big_sqlite, name):
    plan = [r[3] for r in big_sqlite.all("EXPLAIN QUERY PLAN " + STATEMENTS[name], READS[name])]
    for detail in plan:
        for table in INDEXED_TABLES:
            if detail.startswith(f"SCAN {table}") and WHOLE_TABLE.get(name) != table:
                pytest.fail(f"{name} scans {table}: {plan}")
    assert any(d.startswith("SEARCH") for d in plan), plan
    if name in ORDERED:
        assert not any("TEMP B-TREE" in d for d in plan), plan


def _plan_nodes(node):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(READS))
def test_postgresql_plan_uses_an_index(big_pg, name):
    nodes = _pg_plan(big_pg, name)
    scans = [
        (n["Node Type"], n.get("Relation Name"), n.get("Index Name"))
        for n in nodes
        if "Scan" in n["Node Type"]
    ]
    assert scans, nodes
    for node_type, relation, _index in scans:
        if WHOLE_TABLE.get(name) != relation:
            assert node_type != "Seq Scan", f"{name} scans {relation}: {scans}"
    if name in ORDERED:
        # With few rows a user's events are cheaper to sort than to read in order, so ask
        # whether an index *can* give the order: with sorting priced out, no Sort may remain.
        assert not any(n["Node Type"] == "Sort" for n in _pg_plan(big_pg, name, "enable_sort"))


def _pg_plan(conn, name, disable=None) -> list:
    conn.begin(write=True)
    try:
        if disable:
            conn.execute(f"SET LOCAL {disable} = off")
        raw = conn.one("EXPLAIN (FORMAT JSON) " + STATEMENTS[name], READS[name])[0]
    finally:
        conn.rollback()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    return list(_plan_nodes(plan[0]["Plan"]))


# --- the migrated schema is store/schema.py -------------------------------------------------


@pytest.mark.parametrize(
    "engine_name", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_migrated_schema_matches_schema_py(engine_name, request):
    url = request.getfixturevalue("sqlite_url" if engine_name == "sqlite" else "postgres_url")
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert diff == []
