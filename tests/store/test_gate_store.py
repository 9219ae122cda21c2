"""The gate against real stores (SQLite and PostgreSQL): what it records and how it fails.

Every test drives `pam_guard.gate.Gate` with a fake clock and reads the store back through a
separate connection, so the statements, the schema and the gate's transactions are checked
together on both engines. The last part takes the store away (server stopped, file missing,
not a database, held by another writer) and checks the verdict, its time bound and the
recovery.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import pytest

from policy.decide import check
from policy.settings import build_settings
from policy.types import INVALID_USER, LOCKED, SESSION_LIMIT, STORE_ERROR
from radius_hook.radius_gate import RadiusGate
from store import admin
from store.db import connect, split_url
from store.migrate import engine_for

T0 = 1_800_000_000.0
MIN = 60.0
ADDR = "203.0.113.5"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> Clock:
        self.now = T0 + seconds
        return self


def make_gate(url, clock=None, **sections) -> RadiusGate:
    store = {"url": url, "timeout_seconds": 1}
    store.update(sections.pop("store", {}))
    settings = build_settings(dict(sections, store=store), "<store test>")
    return RadiusGate(settings, clock=clock or Clock())


def fail(gate, user="alice", address=ADDR, service="sshd"):
    return gate.record_failure(gate.attempt(user, "pam", service, address, address))


def login(gate, user="alice", address=ADDR, service="sshd"):
    return gate.login(gate.attempt(user, "pam", service, address, address))


def query(url, statement, params=None):
    conn = connect(url)
    try:
        return [tuple(r) for r in conn.all(statement, params or {})]
    finally:
        conn.close()


def lock_state(url, user="alice"):
    rows = query(
        url, "SELECT locked_at, lock_expires FROM accounts WHERE username = :u", {"u": user}
    )
    return rows[0] if rows else None


def outcomes(url, user="alice"):
    return [
        r[0]
        for r in query(
            url, "SELECT outcome FROM events WHERE username = :u ORDER BY id", {"u": user}
        )
    ]


def notices(url, kind):
    return query(
        url, "SELECT created, subject FROM outbox WHERE kind = :k ORDER BY id", {"k": kind}
    )


# --- lockout ---------------------------------------------------------------------------------


def test_failures_in_the_window_lock_once(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    assert fail(gate).lock is None
    clock.at(60)
    assert fail(gate).lock is None
    assert lock_state(store_url) == (None, None)
    clock.at(120)
    third = fail(gate)
    assert third.lock is not None and third.allowed  # the failure is recorded, the lock set
    assert lock_state(store_url) == (T0 + 120, None)  # until an admin unlocks
    clock.at(130)
    assert fail(gate).lock is None  # already locked: set once, not moved
    assert lock_state(store_url) == (T0 + 120, None)
    clock.at(140)
    refused = gate.preauth(gate.attempt("alice", "pam", "sshd", ADDR, ADDR))
    assert not refused.allowed and refused.reasons == (LOCKED,)
    assert outcomes(store_url) == ["failure"] * 4 + ["denied"]


def test_failures_outside_the_window_do_not_lock(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    for seconds in (0, 200, 400):  # the first is older than 5 minutes at the third
        clock.at(seconds)
        assert fail(gate).lock is None
    assert lock_state(store_url) == (None, None)
    clock.at(410)
    assert fail(gate).lock is not None  # 200, 400, 410: three within 5 minutes


def test_a_success_resets_the_count(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    for seconds in (0, 10):
        clock.at(seconds)
        fail(gate)
    clock.at(20)
    assert login(gate).allowed
    for seconds in (30, 40):
        clock.at(seconds)
        assert fail(gate).lock is None  # 2 since the success, not 4
    clock.at(50)
    assert fail(gate).lock is not None


def test_unlock_clears_the_lock_and_restarts_the_count(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    for seconds in (0, 10, 20):
        clock.at(seconds)
        fail(gate)
    assert lock_state(store_url)[0] == T0 + 20
    engine = engine_for(store_url)
    try:
        with engine.begin() as conn:
            assert admin.unlock(conn, "alice", T0 + 30)
    finally:
        engine.dispose()
    clock.at(40)
    assert login(gate).allowed
    clock.at(50)
    assert fail(gate).lock is None  # the three failures before the unlock no longer count


def test_unlock_after_minutes_lets_the_lock_lift(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock, lockout={"unlock_after_minutes": 10})
    for seconds in (0, 10, 20):
        clock.at(seconds)
        fail(gate)
    assert lock_state(store_url) == (T0 + 20, T0 + 20 + 10 * MIN)
    clock.at(20 + 9 * MIN)
    assert not login(gate).allowed
    clock.at(20 + 11 * MIN)
    assert login(gate).allowed


def test_admin_users_need_the_multiplier(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    for seconds in range(5):
        clock.at(seconds)
        assert fail(gate, user="root").lock is None
    clock.at(5)
    assert fail(gate, user="root").lock is not None  # 3 x 2


# --- sessions --------------------------------------------------------------------------------


def sessions_of(url, user="alice"):
    return query(
        url,
        "SELECT session_key, nas, started, last_update, ended FROM sessions "
        "WHERE username = :u ORDER BY session_key",
        {"u": user},
    )


def test_sessions_start_update_stop(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    assert login(gate).allowed
    assert gate.session_start("alice", "radius", "vpn", "acct-1", nas="10.0.0.1", address=ADDR)
    clock.at(300)
    assert gate.session_update("alice", "radius", "acct-1", nas="10.0.0.1")
    assert sessions_of(store_url) == [("acct-1", "10.0.0.1", T0, T0 + 300, None)]
    clock.at(600)
    assert gate.session_stop("alice", "radius", "acct-1", nas="10.0.0.1")
    assert sessions_of(store_url) == [("acct-1", "10.0.0.1", T0, T0 + 600, T0 + 600)]
    clock.at(700)
    assert gate.session_update("alice", "radius", "acct-1", nas="10.0.0.1")
    assert sessions_of(store_url)[0][3:] == (T0 + 600, T0 + 600)  # an ended session stays ended
    assert query(store_url, "SELECT last_activity FROM accounts WHERE username = 'alice'") == [
        (T0 + 700,)
    ]


def test_session_without_key_or_with_bad_user_changes_nothing(store_url):
    gate = make_gate(store_url)
    assert not gate.session_start("alice", "radius", "vpn", "", nas="10.0.0.1")
    assert not gate.session_start("bad\x00user", "radius", "vpn", "k", nas="10.0.0.1")
    assert query(store_url, "SELECT count(*) FROM sessions") == [(0,)]


def test_an_ended_session_ends_a_concurrent_login(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock, concurrent={"enabled": True})
    assert login(gate, address="192.0.2.1").allowed
    gate.session_start("alice", "pam", "sshd", "host:1:pts/1", address="192.0.2.1")
    clock.at(60)
    second = login(gate, address="192.0.2.2")
    assert not second.allowed and "concurrent_login" in second.reasons
    clock.at(120)
    gate.session_stop("alice", "pam", "host:1:pts/1")
    clock.at(180)
    assert login(gate, address="192.0.2.2").allowed


def test_nas_restart_ends_only_that_nas_sessions(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    for key, nas in (("a", "10.0.0.1"), ("b", "10.0.0.1"), ("c", "10.0.0.2")):
        gate.session_start("alice", "radius", "vpn", key, nas=nas, address=ADDR)
    clock.at(60)
    assert gate.nas_restart("radius", "10.0.0.1")
    ended = {key: end for key, _nas, _s, _u, end in sessions_of(store_url)}
    assert ended == {"a": T0 + 60, "b": T0 + 60, "c": None}


# --- notices ---------------------------------------------------------------------------------


def test_lock_notices_are_queued_and_rate_limited(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock, notify={"repeat_minutes": 60})

    def lock_and_unlock(start):
        for i in range(3):
            clock.at(start + i)
            fail(gate)
        engine = engine_for(store_url)
        try:
            with engine.begin() as conn:
                admin.unlock(conn, "alice", clock.now)
        finally:
            engine.dispose()

    lock_and_unlock(0)
    assert notices(store_url, "lock") == [(T0 + 2, "alice")]
    lock_and_unlock(30 * MIN)  # locked again within the hour: no second notice
    assert len(notices(store_url, "lock")) == 1
    assert lock_state(store_url)[0] is None  # (unlocked again; the second lock did happen)
    lock_and_unlock(90 * MIN)
    assert [n[0] for n in notices(store_url, "lock")] == [T0 + 2, T0 + 90 * MIN + 2]


def test_spraying_from_one_address_alerts_once(store_url):
    clock = Clock()
    gate = make_gate(store_url, clock)
    for i, user in enumerate(("u1", "u2", "u3", "u4")):
        clock.at(i)
        fail(gate, user=user, address="198.51.100.66")
    assert notices(store_url, "ip_alert") == [(T0 + 2, "198.51.100.66")]


# --- odd user names --------------------------------------------------------------------------

BAD_NAMES = [
    "bob\x00admin",
    "tab\there",
    "esc\x1b[31m",
    "x" * 257,
    "caf\udce9",  # a byte that was not UTF-8, as os.fsdecode gives it
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["nul", "tab", "escape", "long", "not-utf8"])
def test_invalid_user_names_never_reach_the_store_raw(store_url, name):
    gate = make_gate(store_url)
    for verdict in (
        fail(gate, user=name),
        login(gate, user=name),
        gate.preauth(gate.attempt(name, "pam", "sshd", ADDR, ADDR)),
    ):
        assert not verdict.allowed and verdict.reasons == (INVALID_USER,)
    assert query(store_url, "SELECT count(*) FROM accounts") == [(0,)]
    names = [r[0] for r in query(store_url, "SELECT username FROM events")]
    assert len(names) == 3 and len(set(names)) == 1  # each refusal recorded, escaped
    recorded = names[0]
    assert recorded.isprintable() and len(recorded.encode()) <= 1024
    recorded.encode("utf-8")  # storable text: no surrogates, no control characters
    if not name.isprintable():
        assert recorded != name


# --- the store taken away --------------------------------------------------------------------

BOUND = 1.0 + 1.5  # store.timeout_seconds = 1, plus slack for 2 shared cores


def timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def assert_store_error(verdict, gate, allowed=False):
    assert verdict.reasons == (STORE_ERROR,) and verdict.allowed is allowed, verdict
    assert gate.last_error


@pytest.mark.parametrize("mode", ["deny", "allow"])
def test_a_store_in_a_missing_directory_is_an_error_and_never_created(tmp_path, mode):
    path = tmp_path / "nowhere" / "pam-guard.db"
    gate = make_gate(f"sqlite:///{path}", failure={"on_store_error": mode})
    for call in (lambda: fail(gate), lambda: login(gate)):
        verdict, took = timed(call)
        assert_store_error(verdict, gate, allowed=(mode == "allow"))
        assert took < BOUND
    assert not gate.session_start("alice", "pam", "sshd", "k")
    assert not path.exists() and not path.parent.exists()
    (tmp_path / "here.db").touch()  # an empty file is not a store either, and stays empty
    gate = make_gate(f"sqlite:///{tmp_path / 'here.db'}")
    assert_store_error(login(gate), gate)
    assert (tmp_path / "here.db").stat().st_size == 0


def test_sqlite_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "pam-guard.db"
    garbage = b"this is not an SQLite database\n" * 200
    path.write_bytes(garbage)
    gate = make_gate(f"sqlite:///{path}")
    verdict, took = timed(lambda: fail(gate))
    assert_store_error(verdict, gate)
    assert took < BOUND and path.read_bytes() == garbage  # never repaired or recreated


def test_sqlite_store_held_by_another_writer(sqlite_url):
    gate = make_gate(sqlite_url)
    assert fail(gate).lock is None  # connected and working
    _, path = split_url(sqlite_url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        verdict, took = timed(lambda: fail(gate))
        assert_store_error(verdict, gate)
        assert 0.8 <= took < BOUND  # waited for the lock, but not past the timeout
        verdict, took = timed(lambda: login(gate))
        assert_store_error(verdict, gate)
        assert took < BOUND
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert login(gate).allowed  # back as soon as the writer is gone
    assert outcomes(sqlite_url) == ["failure", "success"]


@pytest.mark.postgres
def test_postgresql_account_row_held_by_another_transaction(postgres_url):
    gate = make_gate(postgres_url)
    assert fail(gate).lock is None
    holder = connect(postgres_url)
    holder.execute("SELECT * FROM accounts WHERE username = 'alice' FOR UPDATE")
    try:
        verdict, took = timed(lambda: fail(gate))
        assert_store_error(verdict, gate)
        assert 0.8 <= took < BOUND  # lock_timeout = store.timeout_seconds
    finally:
        holder.rollback()
        holder.close()
    assert fail(gate).lock is None
    assert outcomes(postgres_url) == ["failure", "failure"]  # the timed-out one left nothing


@pytest.mark.postgres
def test_postgresql_server_down_then_back(postgres_server, postgres_url):
    clock = Clock()
    gate = make_gate(postgres_url, clock, failure={"on_store_error": "deny"})
    assert login(gate).allowed  # the gate now holds a connection
    postgres_server.pause()
    try:
        for call in (
            lambda: fail(gate),
            lambda: login(gate),
            lambda: gate.preauth(gate.attempt("alice", "pam", "sshd", ADDR, ADDR)),
        ):
            verdict, took = timed(call)
            assert_store_error(verdict, gate)
            assert took < BOUND
        assert not gate.session_start("alice", "pam", "sshd", "k")
    finally:
        postgres_server.resume()
    clock.at(60)
    assert login(gate).allowed  # reconnected on the first call after the server came back
    assert outcomes(postgres_url) == ["success", "success"]


@pytest.mark.postgres
def test_postgresql_restart_under_a_live_connection(postgres_server, postgres_url):
    """A server restart between two logins: the cached connection is dead, the login is not."""
    gate = make_gate(postgres_url)
    assert login(gate).allowed
    postgres_server.pause()
    postgres_server.resume()
    verdict = login(gate)
    assert verdict.allowed and verdict.reasons == (), gate.last_error
    assert outcomes(postgres_url) == ["success", "success"]


@pytest.mark.postgres
def test_postgresql_server_that_never_answers(tmp_path):
    """A host that accepts the TCP connection and then says nothing: bounded by the timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        gate = make_gate(
            f"postgresql://postgres@127.0.0.1:{port}/pam_guard", failure={"on_store_error": "allow"}
        )
        verdict, took = timed(lambda: login(gate))
        assert_store_error(verdict, gate, allowed=True)
        assert took < BOUND


def test_gate_recovers_when_the_missing_store_directory_appears(tmp_path):
    path = tmp_path / "state" / "pam-guard.db"
    gate = make_gate(f"sqlite:///{path}")
    assert_store_error(login(gate), gate)
    path.parent.mkdir(mode=0o700)  # the admin makes the directory: the next login makes the store
    assert login(gate).allowed
    assert path.exists()


def test_parallel_threads_share_nothing_and_count_everything(store_url):
    """Several gates (one per thread, as RADIUS worker processes would) on one store."""
    clock = Clock()
    errors = []

    def worker():
        gate = make_gate(store_url, clock, store={"timeout_seconds": 10})
        try:
            for _ in range(5):
                verdict = fail(gate, user="shared")
                if STORE_ERROR in verdict.reasons:
                    errors.append(gate.last_error)
        finally:
            gate.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert outcomes(store_url, "shared") == ["failure"] * 20


@pytest.mark.postgres
def test_postgresql_connection_carries_the_timeouts(postgres_url):
    """statement/lock timeouts (server side) and the TCP bounds (client side) = the setting."""
    conn = connect(postgres_url, timeout=3)
    try:
        assert conn.one("SHOW statement_timeout")[0] == "3s"
        assert conn.one("SHOW lock_timeout")[0] == "3s"
        params = conn.raw.get_dsn_parameters()
        assert params["connect_timeout"] == "3" and params["tcp_user_timeout"] == "3000"
        assert params["keepalives"] == "1"
    finally:
        conn.close()


@pytest.mark.postgres
def test_postgresql_one_statement_reads_leave_no_transaction(postgres_server, postgres_url):
    """The one-statement reads of a login (PAM preauth, RADIUS authorize's check) run with no
    transaction around them (one round trip instead of three), leave none open and the
    connection as it was, and still survive a server restart under the live connection."""
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    gate = make_gate(postgres_url)
    assert login(gate).allowed

    def idle() -> bool:
        raw = gate._connection().raw
        return raw.get_transaction_status() == TRANSACTION_STATUS_IDLE and not raw.autocommit

    attempt = gate.attempt("alice", "radius", "vpn", ADDR, ADDR)
    assert check(attempt, gate.history_for(attempt), gate.settings).allowed
    assert idle()
    postgres_server.pause()
    postgres_server.resume()
    verdict = gate.preauth(gate.attempt("alice", "pam", "sshd", ADDR, ADDR))
    assert verdict.allowed and verdict.reasons == (), gate.last_error
    assert idle()
    assert fail(gate).lock is None  # writes still run in their own transactions
    assert outcomes(postgres_url) == ["success", "failure"]


def test_sessions_of_a_user_with_no_account_yet_count(store_url):
    """Accounting can start a session before the user's first outcome is stored (a RADIUS
    recorder a moment behind): the session limit counts it all the same, in every read."""
    gate = make_gate(store_url, status={"session_limits": {"wifi": 1}, "deny_over_limits": True})
    assert gate.session_start("alice", "radius", "wifi", "s-1", nas="192.0.2.1")
    assert query(store_url, "SELECT count(*) FROM accounts WHERE username = 'alice'") == [(0,)]
    second = gate.attempt("alice", "radius", "wifi", "198.51.100.2", "198.51.100.2")
    assert gate.explain(second)[0].reasons == (SESSION_LIMIT,)
    assert check(second, gate.history_for(second), gate.settings).reasons == (SESSION_LIMIT,)
    verdict = gate.authorize(second)
    assert not verdict.allowed and verdict.reasons == (SESSION_LIMIT,)
