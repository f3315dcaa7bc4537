"""Revision 0010: the sign-up queue (the form only adds a row; a drain mails)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signup_queue",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("topics", sa.Text, nullable=False, server_default="[]"),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("claim", sa.String(64), nullable=False, server_default=""),
        sa.Column("claimed_until", Timestamp, nullable=False, server_default=""),
    )
    op.create_index("ix_signup_queue_claimed_until", "signup_queue", ["claimed_until"])


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
