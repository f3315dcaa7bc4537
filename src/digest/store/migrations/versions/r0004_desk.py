"""Revision 0004: the editors' desk: accounts, sessions, sign-in links, throttle, set-aside."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Timestamp

revision = "0004"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "edition_ranking",
        sa.Column("set_aside", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_table(
        "editor_accounts",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("revoked_at", Timestamp, nullable=False, server_default=""),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_table(
        "editor_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
    )
    op.create_index("ix_editor_sessions_email", "editor_sessions", ["email"])
    op.create_table(
        "signin_links",
        sa.Column("nonce_hash", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("used_at", Timestamp, nullable=False),
    )
    op.create_table(
        "signin_throttle",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("blocked_until", Timestamp, nullable=False, server_default=""),
        sa.Column("last_failure_at", Timestamp, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
