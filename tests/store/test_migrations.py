"""Schema changes ship as migrations, and an upgrade keeps every row (SPEC §10, issue 2).

- `create_or_upgrade` on a store that is already at head changes nothing (run twice).
- A store made at revision 0001 and filled by the gate upgrades to head with its data intact,
  its schema then equal to store/schema.py, and the gate working on it.
- A column added on top of head (a test-only revision written next to the real ones, as the
  next real one will be) keeps every row and every index, on SQLite (table copy) and
  PostgreSQL (ALTER TABLE), and downgrades again.
- Revision 0002's index is what `pam-guard prune` uses to find old sessions.
- Revision 0003's address index holds failures only, and the spraying alert's read uses it.
"""

from __future__ import annotations

import ipaddress
import os
import stat

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pam_guard.gate import Gate
from policy.settings import build_settings
from store import admin
from store.db import connect, split_url
from store.migrate import (
    MIGRATIONS,
    alembic_config,
    create_or_upgrade,
    engine_for,
    head_revision,
    prepare_sqlite_file,
)
from store.schema import metadata
from tests.store.fill import fill

T0 = 1_800_000_000.0
TABLES = {
    "events": "id",
    "accounts": "username",
    "sessions": "id",
    "outbox": "id",
    "address_rules": "id",
    "audit": "seq",
    "familiar_sources": "username, source",
    "address_blocks": "address",
}
ADDED_LATER = ("familiar_sources", "address_blocks")  # revision 0005


def migrate(url: str, target: str, extra_versions=None, down: bool = False) -> None:
    """Run the migrations to `target` (up, or down with `down`), as store.migrate does."""
    prepare_sqlite_file(url)
    config = alembic_config()
    if extra_versions is not None:
        config.set_main_option("path_separator", "os")
        config.set_main_option(
            "version_locations",
            os.pathsep.join([str(MIGRATIONS / "versions"), str(extra_versions)]),
        )
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(config, target)
    finally:
        engine.dispose()


def snapshot(url: str) -> dict:
    """Every row of every table, in key order (the tables a revision adds: once made)."""
    engine = engine_for(url)
    try:
        present = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    conn = connect(url)
    try:
        return {
            t: [tuple(r) for r in conn.all(f"SELECT * FROM {t} ORDER BY {key}")]
            for t, key in TABLES.items()
            if t in present or t not in ADDED_LATER
        }
    finally:
        conn.close()


def kept(rows: dict) -> dict:
    """A snapshot less what a downgrade past 0005 drops for good: the accounts' lock counts
    (lock_count, last_lock_at, unfamiliar_locked_at, unfamiliar_lock_expires)."""
    return dict(rows, accounts=[row[:-4] for row in rows["accounts"]])


def schema_diff(url: str) -> list:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()


def revision_of(url: str) -> str:
    conn = connect(url)
    try:
        return conn.one("SELECT version_num FROM alembic_version")[0]
    finally:
        conn.close()


def indexes(url: str, table: str) -> set:
    engine = engine_for(url)
    try:
        return {ix["name"] for ix in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


def columns(url: str, table: str) -> set:
    engine = engine_for(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def use_the_gate(url: str, start: float = T0) -> None:
    """A little of everything the login path writes: failures and a lock, a login, sessions."""
    now = [start]
    settings = build_settings({"store": {"url": url}}, "<migration test>")
    gate = Gate(settings, clock=lambda: now[0])
    try:
        for i in range(3):
            now[0] = start + i
            gate.record_failure(
                gate.attempt("mallory", "pam", "sshd", "203.0.113.9", "203.0.113.9")
            )
        now[0] = start + 10
        assert gate.login(gate.attempt("alice", "radius", "vpn", "192.0.2.1", "192.0.2.1")).allowed
        assert gate.session_start(
            "alice", "radius", "vpn", "acct-1", nas="10.0.0.1", address="192.0.2.1"
        )
        assert gate.session_start("alice", "pam", "sshd", "host:1:pts/0")
        assert gate.session_stop("alice", "pam", "host:1:pts/0")
    finally:
        gate.close()


def gate_still_works(url: str) -> None:
    now = [T0 + 3600]
    gate = Gate(build_settings({"store": {"url": url}}, "<migration test>"), clock=lambda: now[0])
    try:
        locked = gate.preauth(gate.attempt("mallory", "pam", "sshd", "203.0.113.9", "203.0.113.9"))
        assert not locked.allowed and locked.reasons == ("locked",)
        verdict = gate.login(gate.attempt("alice", "pam", "sshd", "192.0.2.1", "192.0.2.1"))
        assert verdict.allowed, gate.last_error
    finally:
        gate.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):
    """URL of a store with no schema at all (a new SQLite file / a new database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'pam-guard.db'}"
    return request.getfixturevalue("postgres_server").create_database()


# --- tests ----------------------------------------------------------------------------------


def test_head_is_0005():
    assert head_revision() == "0005"


def test_create_or_upgrade_twice_keeps_everything(store_url):
    use_the_gate(store_url)
    before = snapshot(store_url)
    assert create_or_upgrade(store_url) == head_revision()
    assert create_or_upgrade(store_url) == head_revision()
    assert kept(snapshot(store_url)) == kept(before)
    assert schema_diff(store_url) == []
    gate_still_works(store_url)


def test_store_made_at_0001_upgrades_to_head_with_its_data(empty_url):
    migrate(empty_url, "0001")
    assert revision_of(empty_url) == "0001"
    assert "ix_sessions_last_update" not in indexes(empty_url, "sessions")
    conn = connect(empty_url)
    try:
        # rows as the 0001 schema holds them (the gate of today writes columns added since)
        fill(conn, events=5000, users=50, sessions=500, end=T0 - 86400, net=False)
    finally:
        conn.close()
    before = snapshot(empty_url)
    assert len(before["events"]) == 5000 and len(before["sessions"]) == 500

    assert create_or_upgrade(empty_url) == head_revision()

    after = snapshot(empty_url)
    width = len(before["events"][0])
    assert [row[:width] for row in after["events"]] == before["events"]  # old rows kept ...
    # ... with no ruser (0004), no bucket or digest (0005), and the address key of a failure
    # (0005: an IPv4 address itself, an IPv6 /64)
    assert {row[width] for row in after["events"]} == {None}
    assert {(row[width + 1], row[width + 3]) for row in after["events"]} == {(None, None)}
    for row in after["events"]:
        address, outcome, net = row[5], row[9], row[width + 2]
        if outcome != "failure" or address is None:
            assert net is None
        elif ":" in address:
            assert net == str(ipaddress.ip_network(f"{address}/64", strict=False))
        else:
            assert net == address
    wide = len(before["accounts"][0])
    assert [row[:wide] for row in after["accounts"]] == before["accounts"]
    assert {row[wide:] for row in after["accounts"]} <= {(0, None, None, None)}
    assert {k: v for k, v in after.items() if k not in ("events", "accounts")} == {
        k: v for k, v in before.items() if k not in ("events", "accounts")
    } | {"familiar_sources": [], "address_blocks": []}
    assert schema_diff(empty_url) == []
    assert "ix_sessions_last_update" in indexes(empty_url, "sessions")
    assert "ix_events_net_failures" in indexes(empty_url, "events")
    assert "ix_events_address_failures" not in indexes(empty_url, "events")
    assert "ix_events_address_outcome_ts" not in indexes(empty_url, "events")
    use_the_gate(empty_url)
    gate_still_works(empty_url)


def test_0002_downgrades_and_upgrades_again(store_url):
    use_the_gate(store_url)
    before = snapshot(store_url)
    migrate(store_url, "0001", down=True)
    assert revision_of(store_url) == "0001"
    assert "ix_sessions_last_update" not in indexes(store_url, "sessions")
    migrate(store_url, "head")
    assert "ix_sessions_last_update" in indexes(store_url, "sessions")
    assert kept(snapshot(store_url)) == kept(before)


def test_0003_downgrades_and_upgrades_again(store_url):
    use_the_gate(store_url)
    before = snapshot(store_url)
    migrate(store_url, "0002", down=True)
    assert revision_of(store_url) == "0002"
    names = indexes(store_url, "events")
    assert "ix_events_address_outcome_ts" in names and "ix_events_address_failures" not in names
    migrate(store_url, "0003")
    names = indexes(store_url, "events")
    assert "ix_events_address_failures" in names and "ix_events_address_outcome_ts" not in names
    migrate(store_url, "head")
    assert kept(snapshot(store_url)) == kept(before) and schema_diff(store_url) == []
    gate_still_works(store_url)


def test_0004_adds_ruser_and_downgrades_again(store_url):
    use_the_gate(store_url)
    before = snapshot(store_url)
    assert "ruser" in columns(store_url, "events")
    migrate(store_url, "0003", down=True)
    assert revision_of(store_url) == "0003" and "ruser" not in columns(store_url, "events")
    migrate(store_url, "head")
    assert "ruser" in columns(store_url, "events")
    assert kept(snapshot(store_url)) == kept(before) and schema_diff(store_url) == []
    gate_still_works(store_url)


def test_0005_adds_smart_lockout_and_downgrades_again(store_url):
    use_the_gate(store_url)
    before = snapshot(store_url)
    assert {"bucket", "net", "digest"} <= set(columns(store_url, "events"))
    migrate(store_url, "0004", down=True)
    assert revision_of(store_url) == "0004"
    assert "net" not in columns(store_url, "events")
    assert "lock_count" not in columns(store_url, "accounts")
    assert "ix_events_address_failures" in indexes(store_url, "events")
    migrate(store_url, "head")
    assert "ix_events_net_failures" in indexes(store_url, "events")
    # a failure's address key is made again from its address (the fixture's are IPv4)
    assert kept(snapshot(store_url)) == kept(before) and schema_diff(store_url) == []
    gate_still_works(store_url)


NEXT_REVISION = '''"""test only: a column added on top of head"""

import sqlalchemy as sa
from alembic import op

revision = "t_next"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("user_agent", sa.String(256), nullable=True))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("logins", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("logins")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("user_agent")
'''


def test_a_new_column_keeps_every_row_and_index(store_url, tmp_path):
    versions = tmp_path / "next_versions"
    versions.mkdir()
    (versions / "t_next_add_columns.py").write_text(NEXT_REVISION.format(head=head_revision()))
    conn = connect(store_url)
    try:
        fill(conn, events=5000, users=50, sessions=500, end=T0 - 86400)
    finally:
        conn.close()
    use_the_gate(store_url)
    before = snapshot(store_url)
    event_indexes = indexes(store_url, "events")

    migrate(store_url, "heads", extra_versions=versions)

    assert revision_of(store_url) == "t_next"
    after = snapshot(store_url)
    assert [row[:-1] for row in after["events"]] == before["events"]  # old rows kept ...
    assert {row[-1] for row in after["events"]} == {None}  # ... with the new column empty
    assert [row[:-1] for row in after["accounts"]] == before["accounts"]
    assert {row[-1] for row in after["accounts"]} == {0}  # the server default filled in
    assert after["sessions"] == before["sessions"] and after["outbox"] == before["outbox"]
    assert indexes(store_url, "events") == event_indexes  # the table copy kept its indexes
    gate_still_works(store_url)  # statements name their columns: a new one breaks nothing

    with_column = snapshot(store_url)
    migrate(store_url, head_revision(), extra_versions=versions, down=True)
    assert revision_of(store_url) == head_revision() and schema_diff(store_url) == []
    back = snapshot(store_url)
    assert back["events"] == [row[:-1] for row in with_column["events"]]
    assert back["accounts"] == [row[:-1] for row in with_column["accounts"]]


def test_new_sqlite_store_is_wal_and_private(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'pam-guard.db'}"
    create_or_upgrade(url)
    path = split_url(url)[1]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    conn = connect(url)
    try:
        assert conn.one("PRAGMA journal_mode")[0] == "wal"
    finally:
        conn.close()


def test_prune_drops_old_and_stale_sessions_through_the_index(store_url):
    day = 86400.0
    conn = connect(store_url)
    try:
        conn.begin(write=True)
        rows = [
            ("old-ended", T0 - 500 * day, T0 - 499 * day),
            ("old-stale", T0 - 450 * day, None),
            ("recent-ended", T0 - 10 * day, T0 - 9 * day),
            ("open", T0 - day, None),
        ]
        for key, started, ended in rows:
            conn.execute(
                "INSERT INTO sessions (username, channel, service, session_key, nas, "
                "started, last_update, ended) VALUES ('alice', 'radius', 'vpn', :k, 'n', "
                ":s, :u, :e)",
                {"k": key, "s": started, "u": ended or started, "e": ended},
            )
        conn.commit()
    finally:
        conn.close()
    engine = engine_for(store_url)
    try:
        with engine.begin() as sa_conn:
            counts = admin.prune(sa_conn, T0, 400)
    finally:
        engine.dispose()
    assert counts["sessions"] == 2
    left = sorted(r[4] for r in snapshot(store_url)["sessions"])
    assert left == ["open", "recent-ended"]


def test_prune_of_sessions_uses_the_0002_index(store_url):
    conn = connect(store_url)
    try:
        fill(conn, events=1000, users=50, sessions=20000, end=T0)
        statement = "DELETE FROM sessions WHERE last_update < :cutoff"
        params = {"cutoff": T0 - 400 * 86400}
        if conn.dialect == "sqlite":
            plan = " ".join(r[3] for r in conn.all("EXPLAIN QUERY PLAN " + statement, params))
            assert "ix_sessions_last_update" in plan, plan
        else:
            conn.begin(write=True)
            plan = " ".join(r[0] for r in conn.all("EXPLAIN " + statement, params))
            conn.rollback()
            assert "ix_sessions_last_update" in plan and "Seq Scan" not in plan, plan
    finally:
        conn.close()


def test_spraying_alert_reads_the_0005_index(store_url):
    """The spraying alert and address blocks (one address key's failures in a period) are
    the login path's one read of events by address: it reads the failures-only index,
    successes being most rows."""
    from store import statements as sql

    conn = connect(store_url)
    try:
        fill(conn, events=20000, users=500, sessions=10, end=T0)
        conn.begin(write=True)
        conn.execute("UPDATE events SET net = address WHERE outcome = 'failure'")
        conn.commit()
        params = {"net": "10.7.3.1", "since": T0 - 300}
        if conn.dialect == "sqlite":
            plan = " ".join(
                r[3] for r in conn.all("EXPLAIN QUERY PLAN " + sql.ADDRESS_FAILURES, params)
            )
        else:
            plan = " ".join(r[0] for r in conn.all("EXPLAIN " + sql.ADDRESS_FAILURES, params))
        assert "ix_events_net_failures" in plan, plan
    finally:
        conn.close()
