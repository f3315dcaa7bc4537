"""Revision 0001: the schema of digest 0.1, whose tables were created lazily by each module.

Upgrading a 0.1 database starts here: it creates whichever of those tables the old database
never got, so every later revision can assume they all exist.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

S = sa.String


def _tables() -> list[tuple[str, list[sa.Column[Any]]]]:
    def col(*args: Any, **kw: Any) -> sa.Column[Any]:
        return sa.Column(*args, **kw)

    return [
        (
            "editions",
            [
                col("id", sa.Integer, primary_key=True, autoincrement=True),
                col("slot", S, nullable=False, index=True),
                col("state", S, nullable=False),
                col("revision", sa.Integer, nullable=False),
                col("stories", sa.Text, nullable=False),
                col("subject", sa.Text, nullable=False),
                col("preheader", sa.Text, nullable=False),
                col("html", sa.Text, nullable=False),
                col("text", sa.Text, nullable=False),
                col("content_hash", S, nullable=False),
                col("warnings", sa.Text, nullable=False),
                col("created_at", S, nullable=False),
                col("updated_at", S, nullable=False),
            ],
        ),
        (
            "seen_stories",
            [
                col("url", S, primary_key=True),
                col("edition_id", sa.Integer, sa.ForeignKey("editions.id"), nullable=False),
                col("first_seen", S, nullable=False),
            ],
        ),
        (
            "deliveries",
            [
                col("edition_id", sa.Integer, sa.ForeignKey("editions.id"), primary_key=True),
                col("email", S, primary_key=True),
                col("name", S, nullable=False),
                col("timezone", S, nullable=False),
                col("topics", S, nullable=False),
                col("state", S, nullable=False),
                col("attempts", sa.Integer, nullable=False),
                col("first_attempt_at", S, nullable=False),
                col("next_attempt_at", S, nullable=False),
                col("sent_at", S, nullable=False),
                col("last_error", sa.Text, nullable=False),
                col("message_id", S, nullable=False),
                col("updated_at", S, nullable=False),
            ],
        ),
        (
            "ledger_meta",
            [
                col("edition_id", sa.Integer, sa.ForeignKey("editions.id"), primary_key=True),
                col("frozen_at", S, nullable=False),
            ],
        ),
        (
            "audit",
            [
                col("id", sa.Integer, primary_key=True, autoincrement=True),
                col(
                    "edition_id",
                    sa.Integer,
                    sa.ForeignKey("editions.id"),
                    nullable=False,
                    index=True,
                ),
                col("from_state", S, nullable=False),
                col("to_state", S, nullable=False),
                col("actor", S, nullable=False),
                col("via", S, nullable=False),
                col("at", S, nullable=False),
                col("revision", sa.Integer, nullable=False),
                col("content_hash", S, nullable=False),
                col("note", sa.Text, nullable=False),
            ],
        ),
        (
            "suppressions",
            [
                col("email", S, primary_key=True),
                col("reason", S, nullable=False),
                col("at", S, nullable=False),
            ],
        ),
        (
            "slot_log",
            [
                col("slot", S, primary_key=True),
                col("status", S, nullable=False),
                col("note", sa.Text, nullable=False),
                col("at", S, nullable=False),
            ],
        ),
        (
            "locks",
            [
                col("name", S, primary_key=True),
                col("owner", S, nullable=False),
                col("expires_at", sa.Float, nullable=False),
            ],
        ),
        (
            "approvals",
            [
                col("edition_id", sa.Integer, primary_key=True),
                col("revision", sa.Integer, primary_key=True),
                col("editor", S, primary_key=True),
                col("actor", S, nullable=False),
                col("via", S, nullable=False),
                col("at", S, nullable=False),
            ],
        ),
        (
            "edition_variants",
            [
                col("edition_id", sa.Integer, primary_key=True),
                col("key", S, primary_key=True),
                col("stories", sa.Text, nullable=False),
                col("subject", sa.Text, nullable=False),
                col("preheader", sa.Text, nullable=False),
                col("html", sa.Text, nullable=False),
                col("text", sa.Text, nullable=False),
                col("content_hash", S, nullable=False),
                col("base_hash", S, nullable=False),
                col("created_at", S, nullable=False),
            ],
        ),
        (
            "edition_ranking",
            [
                col("edition_id", sa.Integer, primary_key=True),
                col("candidates", sa.Text, nullable=False),
                col("extra", sa.Text, nullable=False),
            ],
        ),
        (
            "source_cache",
            [
                col("name", S, primary_key=True),
                col("fingerprint", sa.Text, nullable=False),
                col("etag", sa.Text, nullable=False),
                col("last_modified", sa.Text, nullable=False),
                col("stories", sa.Text, nullable=False),
                col("fetched_at", S, nullable=False),
            ],
        ),
        (
            "source_health",
            [
                col("name", S, primary_key=True),
                col("url", sa.Text, nullable=False),
                col("last_success", S, nullable=False),
                col("last_error", sa.Text, nullable=False),
                col("last_error_at", S, nullable=False),
                col("consecutive_failures", sa.Integer, nullable=False),
                col("items_seen", sa.Integer, nullable=False),
                col("not_modified", sa.Integer, nullable=False),
            ],
        ),
    ]


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in _tables():
        if name not in existing:
            op.create_table(name, *columns)


def downgrade() -> None:
    raise NotImplementedError("digest does not downgrade; restore the backup instead")
