"""Smart lockout, growing locks, address blocks, repeated passwords (issue 18)

accounts: lock_count, last_lock_at (growing locks), unfamiliar_locked_at and
unfamiliar_lock_expires (smart lockout's lock of unfamiliar sources). events: bucket (which
count a failure went to), net (the address key spraying alerts and blocks count by: an IPv4
address, an IPv6 /64) and digest (a keyed digest of a wrong password). New tables
familiar_sources and address_blocks. The failures-only address index now reads `net`; the
failures already stored get their `net`, so alerts and blocks count them at once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FAILURES = sa.text("outcome = 'failure'")


def _slash64(address: str) -> str:
    import ipaddress

    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("lock_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_lock_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("unfamiliar_locked_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("unfamiliar_lock_expires", sa.Float(), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("bucket", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("net", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
    op.create_table(
        "familiar_sources",
        sa.Column("username", sa.String(length=1024), primary_key=True),
        sa.Column("source", sa.String(length=64), primary_key=True),
        sa.Column("last_success", sa.Float(), nullable=False),
    )
    op.create_table(
        "address_blocks",
        sa.Column("address", sa.String(length=64), primary_key=True),
        sa.Column("blocked_at", sa.Float(), nullable=True),
        sa.Column("expires", sa.Float(), nullable=True),
        sa.Column("block_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("users", sa.String(length=1024), nullable=False, server_default=""),
        sa.Column("cleared_at", sa.Float(), nullable=True),
    )
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE events SET net = address WHERE outcome = 'failure' "
            "AND address IS NOT NULL AND address NOT LIKE '%:%'"
        )
    )
    rows = bind.execute(
        sa.text("SELECT id, address FROM events WHERE outcome = 'failure' AND address LIKE '%:%'")
    ).all()
    for row_id, address in rows:
        bind.execute(
            sa.text("UPDATE events SET net = :net WHERE id = :id"),
            {"net": _slash64(address), "id": row_id},
        )
    op.drop_index("ix_events_address_failures", table_name="events")
    op.create_index(
        "ix_events_net_failures",
        "events",
        ["net", "ts"],
        unique=False,
        sqlite_where=FAILURES,
        postgresql_where=FAILURES,
    )


def downgrade() -> None:
    op.drop_index("ix_events_net_failures", table_name="events")
    op.create_index(
        "ix_events_address_failures",
        "events",
        ["address", "ts"],
        unique=False,
        sqlite_where=FAILURES,
        postgresql_where=FAILURES,
    )
    op.drop_table("address_blocks")
    op.drop_table("familiar_sources")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("digest")
        batch.drop_column("net")
        batch.drop_column("bucket")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("unfamiliar_lock_expires")
        batch.drop_column("unfamiliar_locked_at")
        batch.drop_column("last_lock_at")
        batch.drop_column("lock_count")
