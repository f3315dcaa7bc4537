"""Revision 0008: a suppression's kind as a column; deliveries found by Message-ID."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(20), nullable=False, server_default="unsubscribed")
        )
    # Until now the kind was read off the reason's wording; it is written down once here.
    op.execute("UPDATE suppressions SET kind = 'bounced' WHERE reason LIKE 'hard bounce%'")
    op.execute("UPDATE suppressions SET kind = 'complained' WHERE reason LIKE '%complain%'")
    op.create_index("deliveries_message", "deliveries", ["message_id"])


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
