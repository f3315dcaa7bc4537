"""What comes back after a message leaves: from a returned message to its delivery.

A bounce or complaint usually quotes the original's Message-ID; each delivery keeps the
Message-ID it was sent with (the same one on every retry), indexed, so the reader and the
edition are found with one lookup however large the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from digest.models import DeliveryState
from digest.store.repository import Store
from digest.store.tables import deliveries


@dataclass(frozen=True, slots=True)
class Sent:
    """One delivery as a returned message finds it."""

    edition_id: int
    email: str
    state: DeliveryState
    message_id: str
    sent_at: datetime | None


class Returns:
    """Lookups from returned mail into the delivery ledger."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def by_message_id(self, message_id: str) -> Sent | None:
        """The delivery sent as ``message_id`` (with or without its angle brackets)."""
        wanted = message_id.strip()
        if not wanted:
            return None
        if not wanted.startswith("<"):
            wanted = f"<{wanted}>"
        query = select(
            deliveries.c.edition_id,
            deliveries.c.email,
            deliveries.c.state,
            deliveries.c.message_id,
            deliveries.c.sent_at,
        ).where(deliveries.c.message_id == wanted)
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Sent(
            row.edition_id, row.email, DeliveryState(row.state), row.message_id, row.sent_at or None
        )
