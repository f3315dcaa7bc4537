"""The webhooks' tables: provider events already taken, and the outgoing queue."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from digest.store.columns import Timestamp, metadata

# Provider webhook events already taken (an SNS MessageId, a Mailgun token, ...): a replay
# or a provider's retry of one is answered 200 and changes nothing.
webhook_seen = Table(
    "webhook_seen",
    metadata,
    Column("provider", String(20), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("at", Timestamp, nullable=False),
)

# Outgoing webhooks (Standard Webhooks): each event is written with the change it reports,
# in the same transaction; tick fans it out into one send per configured receiver.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event", String(40), nullable=False),  # edition.sent, reader.bounced, ...
    Column("payload", Text, nullable=False),  # the JSON body, as sent
    Column("at", Timestamp, nullable=False),
)
webhook_sends = Table(
    "webhook_sends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("msg_id", String(40), nullable=False),  # webhook-id: the same on every retry
    Column("url", Text, nullable=False),
    Column("event", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(10), nullable=False),  # pending, sent, dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Timestamp, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Index("webhook_sends_due", "state", "next_at"),
)
