"""Revision 0012: the time zone a sign-up's browser reported, kept with the queued sign-up
and its confirmation until the reader confirms (then it is the subscriber's zone).

Rows stored before it keep "": the reader gets the publication's zone, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("signup_queue", "confirmations"):
        op.add_column(
            table, sa.Column("timezone", sa.String(64), nullable=False, server_default="")
        )


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
