"""Revision 0011: the placeholder marker of each stored rendering (render.placeholders).

Editions and variants stored before it keep "" : their canonical tokens are still filled in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("editions", "edition_variants"):
        op.add_column(table, sa.Column("marker", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
