"""Revision 0006: the images table (story images we own, by content address)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0006"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
