"""Revision 0015: the id a provider's HTTP API gave each delivery (SES MessageId, Postmark
MessageID, Mailgun id, SendGrid X-Message-Id), indexed, so a provider's event finds it.

Deliveries sent before it, or over SMTP, keep "".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("provider_message_id", sa.String(400), nullable=False, server_default=""),
    )
    op.create_index("deliveries_provider", "deliveries", ["provider_message_id"])


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
