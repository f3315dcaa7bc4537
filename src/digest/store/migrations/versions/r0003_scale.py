"""Revision 0003: sending at scale: claims, workers, shared limits, summaries, resumable freeze."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0003"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries", sa.Column("claim", sa.String(100), nullable=False, server_default="")
    )
    # Freezes made before 0003 were one transaction: every existing marker is complete.
    op.add_column(
        "ledger_meta", sa.Column("complete", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column("ledger_meta", sa.Column("rows", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "workers",
        sa.Column("token", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("alive_until", Timestamp, nullable=False),
    )
    op.create_table(
        "send_permits",
        sa.Column("holder", sa.String(400), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("ends_at", Timestamp, nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
    )
    op.create_index("send_permits_key", "send_permits", ["key", "ends_at"])
    op.create_table(
        "send_limits",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("used", sa.Integer, nullable=False),
    )
    op.create_table(
        "delivery_summaries",
        sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("summarised_at", Timestamp, nullable=False),
        sa.Column("pruned_at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
