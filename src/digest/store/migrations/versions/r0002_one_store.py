"""Revision 0002: one store (0.2): variant hash per delivery, due-row index, locks by time,
source fallbacks."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("variant_hash", sa.String(64), nullable=False, server_default=""),
    )
    op.add_column(
        "source_health", sa.Column("fallbacks", sa.Text, nullable=False, server_default="[]")
    )
    op.create_index("deliveries_due", "deliveries", ["edition_id", "state", "next_attempt_at"])
    # Leases are seconds long: nothing in the old table outlives the upgrade.
    op.drop_table("locks")
    op.create_table(
        "locks",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
