"""The store's schema, as SQLAlchemy tables: the one source of truth.

Migrations (store/migrations) create and change it; the admin command queries it with
SQLAlchemy Core; the login path runs the plain statements of store/statements.py against it
through the DB-API driver (tests check those statements against this schema on SQLite and
PostgreSQL). Times are seconds since the epoch (double precision): both engines compare them
cheaply, and the policy core works in the same unit.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

USER_LEN = 1024  # escaped form of a name of at most 256 bytes fits

# Every login attempt (SPEC §3).
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("username", String(USER_LEN), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("service", String(64), nullable=False, server_default=""),
    Column("address", String(64)),  # canonical IP, or NULL when the source was no address
    Column("address_raw", String(256)),  # what the caller gave, escaped
    Column("client", String(256)),
    Column("secure", Boolean),
    Column("outcome", String(16), nullable=False),  # success | failure | denied
    Column("reasons", String(256), nullable=False, server_default=""),  # comma-separated codes
    Column("ruser", String(USER_LEN)),  # PAM_RUSER: who ran su or sudo (revision 0004), escaped
    # Revision 0005. A failure's count (policy.types: NULL the account lock's, "unfamiliar",
    # "repeated"); the address key blocks and spraying alerts count by (policy.sources.
    # block_key: an IPv4 address, an IPv6 /64); a keyed digest of a wrong password
    # (lockout.ignore_repeated_password, pam_guard.digests), never the password.
    Column("bucket", String(16)),
    Column("net", String(64)),
    Column("digest", String(64)),
)
# A decision reads one user's recent events of one outcome; spraying alerts and address blocks
# read one address key's failures, and nothing on the login path reads its successes:
# failures only (revisions 0003, 0005), so that a success does not write a page of this index
# at a random place.
Index("ix_events_user_outcome_ts", events.c.username, events.c.outcome, events.c.ts)
Index(
    "ix_events_net_failures",
    events.c.net,
    events.c.ts,
    sqlite_where=text("outcome = 'failure'"),
    postgresql_where=text("outcome = 'failure'"),
)
Index("ix_events_ts", events.c.ts)

# One row per user that has ever been seen or configured: the lock and the flags.
accounts = Table(
    "accounts",
    metadata,
    Column("username", String(USER_LEN), primary_key=True),
    Column("first_seen", Float),
    Column("last_activity", Float),
    Column("reset_at", Float, nullable=False, server_default="0"),  # failures count from here
    Column("locked_at", Float),
    Column("lock_expires", Float),
    Column("lock_reason", String(256), nullable=False, server_default=""),
    Column("exempt", Boolean, nullable=False, server_default="0"),
    Column("status", String(16)),
    Column("status_why", String(256), nullable=False, server_default=""),
    Column("status_since", Float),
    Column("notify_on", String(32), nullable=False, server_default=""),  # "failure,success"
    Column("notify_to", String(1024), nullable=False, server_default=""),
    # Revision 0005: growing locks (policy.locks) and smart lockout's lock of unfamiliar
    # sources.
    Column("lock_count", Integer, nullable=False, server_default="0"),
    Column("last_lock_at", Float),
    Column("unfamiliar_locked_at", Float),
    Column("unfamiliar_lock_expires", Float),
)

# Sources a user succeeded from (smart lockout: policy.sources.familiar_key), revision 0005.
familiar_sources = Table(
    "familiar_sources",
    metadata,
    Column("username", String(USER_LEN), primary_key=True),
    Column("source", String(64), primary_key=True),
    Column("last_success", Float, nullable=False),
)

# Source addresses blocked for every user (address_block), revision 0005: one row an address
# key, kept after the block ends (the next block grows from it).
address_blocks = Table(
    "address_blocks",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("blocked_at", Float),  # when the last block began
    Column("expires", Float),  # when it ends; NULL: until pam-guard unblock
    Column("block_count", Integer, nullable=False, server_default="0"),
    Column("failures", Integer, nullable=False, server_default="0"),  # that set it
    Column("users", String(1024), nullable=False, server_default=""),  # whom they tried
    Column("cleared_at", Float),  # pam-guard unblock: failures before it no longer count
)

# Per-user address lists (SPEC §4 ip_restricted): kind is "allow" or "deny".
address_rules = Table(
    "address_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(USER_LEN), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("entry", String(64), nullable=False),  # canonical CIDR or "local"
    UniqueConstraint("username", "kind", "entry", name="uq_address_rules"),
)

# PAM open/close session and RADIUS accounting (SPEC §3).
sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(USER_LEN), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("service", String(64), nullable=False, server_default=""),
    Column("session_key", String(256), nullable=False),  # Acct-Session-Id, or host:pid:tty
    Column("nas", String(256), nullable=False, server_default=""),
    Column("address", String(64)),
    Column("client", String(256)),
    Column("started", Float, nullable=False),
    Column("last_update", Float, nullable=False),
    Column("ended", Float),
    UniqueConstraint("channel", "nas", "session_key", name="uq_sessions_key"),
)
Index("ix_sessions_user_ended", sessions.c.username, sessions.c.ended)
Index("ix_sessions_nas_ended", sessions.c.nas, sessions.c.ended)
# Pruning finds sessions by their last sign of life (revision 0002).
Index("ix_sessions_last_update", sessions.c.last_update)

# Notices waiting for `pam-guard deliver` (SPEC §6): written in the event's transaction.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(USER_LEN), nullable=False),  # user or address: rate-limit key
    Column("recipients", String(1024), nullable=False),
    Column("title", String(256), nullable=False),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_try", Float, nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_until", Float),
    Column("sent_at", Float),
    Column("last_error", String(512)),
)
Index("ix_outbox_pending", outbox.c.sent_at, outbox.c.next_try)
Index("ix_outbox_ratelimit", outbox.c.kind, outbox.c.subject, outbox.c.created)

# Append-only admin action log, HMAC-SHA256 chained (SPEC §7).
audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(USER_LEN), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("mac", String(64), nullable=False),
)
