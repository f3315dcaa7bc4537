"""Revision 0005: readers in the store: subscribers, consents, confirmations, erasures."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0005"
# Written on 0002; main had 0006 (images) on 0002 first, so this follows it.
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(320), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=False, server_default=""),
        sa.Column("topics", sa.Text, nullable=False, server_default="[]"),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("paused_until", Timestamp, nullable=False, server_default=""),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("since", Timestamp, nullable=False, server_default=""),
        sa.Column("file_gen", sa.Integer, nullable=False, server_default="0"),
        sa.Column("file_entry", sa.String(32), nullable=False, server_default=""),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_index("subscribers_state", "subscribers", ["state", "key"])
    op.create_index("subscribers_topics", "subscribers", ["state", "topics"])
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_consents_subscriber_id", "consents", ["subscriber_id"])
    op.create_table(
        "confirmations",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("topics", sa.Text, nullable=False, server_default="[]"),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index("ix_confirmations_subscriber_id", "confirmations", ["subscriber_id"])
    op.create_table(
        "erasures",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("at", Timestamp, nullable=False),
    )
    op.create_table(
        "subscriber_sync",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("gen", sa.Integer, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
