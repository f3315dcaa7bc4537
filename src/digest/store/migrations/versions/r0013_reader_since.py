"""Revision 0013: an index of readers' confirmation times (the desk's growth per week).

The Readers page counts the readers confirmed in each of the last weeks; with the index
that reads the weeks' range of it, not every reader's row.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("subscribers_since", "subscribers", ["since"])


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
