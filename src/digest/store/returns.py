"""What comes back after a message leaves: from a returned message to its delivery.

A bounce or complaint usually quotes the original's Message-ID; each delivery keeps the
Message-ID it was sent with (the same one on every retry), indexed, so the reader and the
edition are found with one lookup however large the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from digest.models import DeliveryState
from digest.store.repository import Store
from digest.store.tables import deliveries


def provider_ids_statement(
    edition_id: int, pairs: Sequence[tuple[str, str]]
) -> tuple[str, list[object]]:
    """SQL (``?`` style) recording the provider's id of each (address, id) sent delivery of
    an edition; the ledger runs it in the transaction that records them sent."""
    values = ", ".join(["(?, ?)"] * len(pairs))
    # Only placeholders are put into the text; every value is a parameter.
    sql = (
        "UPDATE deliveries SET provider_message_id = v.column2"  # noqa: S608
        f" FROM (VALUES {values}) AS v WHERE deliveries.edition_id = ?"
        " AND deliveries.email = v.column1 AND deliveries.state = 'sent'"
    )
    return sql, [x for pair in pairs for x in pair] + [edition_id]


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
        return self._one(deliveries.c.message_id == wanted)

    def by_provider_id(self, provider_id: str) -> Sent | None:
        """The delivery a provider's HTTP API accepted as ``provider_id`` (its events name
        it: SES MessageId, Postmark MessageID, Mailgun id, SendGrid sg_message_id)."""
        wanted = provider_id.strip()
        if not wanted:
            return None
        return self._one(deliveries.c.provider_message_id == wanted)

    def _one(self, where: Any) -> Sent | None:
        query = select(
            deliveries.c.edition_id,
            deliveries.c.email,
            deliveries.c.state,
            deliveries.c.message_id,
            deliveries.c.sent_at,
        ).where(where)
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Sent(
            row.edition_id, row.email, DeliveryState(row.state), row.message_id, row.sent_at or None
        )
