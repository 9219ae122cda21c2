"""index events by address for failures only

The one read of events by address on the login path is the spraying alert's
(ADDRESS_FAILURE_USERS: one address's failures within a period). An index over every event
made each success write a page of it at a random place: measured in the RADIUS recorder,
79 -> 62 us of CPU a success (tests/store/test_migrations.py checks the alert's plan still
uses it). The admin side's `history --ip` finds successes by scanning newest first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FAILURES = sa.text("outcome = 'failure'")


def upgrade() -> None:
    op.drop_index("ix_events_address_outcome_ts", table_name="events")
    op.create_index(
        "ix_events_address_failures",
        "events",
        ["address", "ts"],
        unique=False,
        sqlite_where=FAILURES,
        postgresql_where=FAILURES,
    )


def downgrade() -> None:
    op.drop_index("ix_events_address_failures", table_name="events")
    op.create_index(
        "ix_events_address_outcome_ts", "events", ["address", "outcome", "ts"], unique=False
    )
