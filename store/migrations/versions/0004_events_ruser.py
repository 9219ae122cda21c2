"""events.ruser: who asked for the login (PAM_RUSER)

su and sudo tell PAM who ran them (PAM_RUSER); an admin reading the history of `su root`
wants to know who tried. NULL for RADIUS and for PAM services that set no RUSER.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("ruser", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("ruser")
