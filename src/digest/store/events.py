"""Outgoing webhook events, written inside the transaction of the change they report.

A leaf of the store (tables only), so the writers of edition state, suppressions and
confirmations can all call it without import cycles; digest.store.outbox sends them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from digest.store.tables import webhook_outbox

EVENTS = (
    "edition.approved",
    "edition.sent",
    "edition.expired",
    "reader.confirmed",
    "reader.unsubscribed",
    "reader.bounced",
    "reader.complained",
)


def enqueue(conn: Connection, event: str, data: dict[str, Any], *, now: datetime) -> None:
    """Write ``event`` in the caller's transaction (Standard Webhooks' payload shape)."""
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    conn.execute(insert(webhook_outbox).values(event=event, payload=json.dumps(payload), at=now))
