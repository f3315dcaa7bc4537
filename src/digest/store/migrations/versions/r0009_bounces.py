"""Revision 0009: bounce_events, the evidence of every bounce and complaint read."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default=""),
        sa.Column("reason", sa.String(80), nullable=False, server_default=""),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("message_id", sa.Text, nullable=False, server_default=""),
        sa.Column("mail", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("bounce_events_email", "bounce_events", ["email", "at"])


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
