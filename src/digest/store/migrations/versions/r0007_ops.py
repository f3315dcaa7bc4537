"""Revision 0007: the notices log (notices to editors and proofs, each sent once)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("edition_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("recipients", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
