"""index sessions by last update, for pruning

`pam-guard prune` drops sessions whose last sign of life (last_update: the end time of an
ended session, the last Interim-Update of one whose Stop never came) is past the retention
period; without this index it reads every session a busy RADIUS site ever had.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:50:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sessions_last_update", "sessions", ["last_update"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sessions_last_update", table_name="sessions")
