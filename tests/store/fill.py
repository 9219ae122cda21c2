"""Bulk history for store tests and bench/store_scale.py: many users' events and sessions.

Rows are generated inside the database (a recursive CTE, which SQLite and PostgreSQL both
run), so ten million events cost no Python loop and no round trip per row. The shape is a
plausible site: `users` accounts sharing the history evenly, 80 % successes, 10 % failures,
10 % denials, addresses spread over 50,000 IPv4 hosts (a failure's address key, `net`, is its
address), times one second apart ending at `end`. Each user's outcomes cycle through that
mix (outcome does not follow from the user).
"""

from __future__ import annotations

CHUNK = 500_000  # rows per statement: bounded memory for PostgreSQL's CTE work table

_EVENTS = """
WITH RECURSIVE seq(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM seq WHERE i < :last)
INSERT INTO events (ts, username, channel, service, address, address_raw, client, secure,
                    outcome, reasons{net_column})
SELECT :end - (:total - i), 'user' || (i % :users),
       CASE WHEN i % 3 = 0 THEN 'radius' ELSE 'pam' END,
       CASE WHEN i % 3 = 0 THEN 'vpn' ELSE 'sshd' END,
       '10.' || (i % 200) || '.' || ((i / 200) % 250) || '.1',
       '10.' || (i % 200) || '.' || ((i / 200) % 250) || '.1',
       NULL, NULL,
       CASE (i / :users) % 10 WHEN 0 THEN 'failure' WHEN 1 THEN 'denied' ELSE 'success' END,
       CASE (i / :users) % 10 WHEN 1 THEN 'ip_restricted' ELSE '' END{net_value}
FROM seq
"""
# A failure's address key (revision 0005's events.net): its IPv4 address.
_NET_VALUE = """,
       CASE (i / :users) % 10 WHEN 0 THEN '10.' || (i % 200) || '.' || ((i / 200) % 250) || '.1'
            ELSE NULL END"""

_SESSIONS = """
WITH RECURSIVE seq(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM seq WHERE i < :last)
INSERT INTO sessions (username, channel, service, session_key, nas, address, client, started,
                      last_update, ended)
SELECT 'user' || (i % :users), 'radius', 'vpn', 'fill-' || i, 'nas' || (i % 20),
       '10.' || (i % 200) || '.' || ((i / 200) % 250) || '.1', NULL,
       :end - (:total - i) * 10, :end - (:total - i) * 10 + 60,
       CASE WHEN i % 5 = 0 THEN NULL ELSE :end - (:total - i) * 10 + 600 END
FROM seq
"""

_ACCOUNTS = """
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :users - 1)
INSERT INTO accounts (username, first_seen, last_activity, reset_at, lock_reason, exempt,
                      status, status_why, notify_on, notify_to)
SELECT 'user' || i, :start, :end, 0, '', :false, 'protected', '', '', '' FROM seq
"""


def begin_bulk(conn) -> None:
    """A write transaction without the login path's short statement timeout (bulk work)."""
    conn.begin(write=True)
    if conn.dialect == "postgresql":
        conn.execute("SET LOCAL statement_timeout = 0")


def _chunks(total: int):
    for first in range(1, total + 1, CHUNK):
        yield first, min(first + CHUNK - 1, total)


def fill(
    conn,
    events: int,
    users: int = 1000,
    sessions: int = 0,
    end: float = 1.8e9,
    progress=None,
    stats: bool = True,
    net: bool = True,
) -> None:
    """Add `events` events (and `sessions` sessions) for `users` users, committing per chunk.

    `conn` is a store.db.Connection. Account rows user0..user{users-1} are created too.
    `net`: fill events.net (False for a store at a revision before 0005).
    """
    events_sql = _EVENTS.format(
        net_column=", net" if net else "", net_value=_NET_VALUE if net else ""
    )
    begin_bulk(conn)
    conn.execute(
        _ACCOUNTS, {"users": users, "start": end - events - 86400.0, "end": end, "false": False}
    )
    conn.commit()
    for first, last in _chunks(events):
        begin_bulk(conn)
        conn.execute(
            events_sql, {"first": first, "last": last, "total": events, "users": users, "end": end}
        )
        conn.commit()
        if progress:
            progress(last)
    for first, last in _chunks(sessions):
        begin_bulk(conn)
        conn.execute(
            _SESSIONS, {"first": first, "last": last, "total": sessions, "users": users, "end": end}
        )
        conn.commit()
    if stats:
        analyze(conn)


def analyze(conn) -> None:
    """Give the planner statistics (PostgreSQL's autovacuum would; plans are also checked
    on SQLite stores that never had ANALYZE, as a real default store)."""
    begin_bulk(conn)
    conn.execute("ANALYZE")
    conn.commit()
