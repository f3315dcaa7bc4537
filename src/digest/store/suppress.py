"""The one writer of the suppression list: an address, its kind and the evidence.

A suppression is only ever strengthened (reader_states.strongest): a complaint stays a
complaint whatever is recorded after it, and its evidence is kept.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from digest.models import SubscriberState
from digest.reader_states import strongest
from digest.store.tables import suppressions


def record(
    conn: Connection, email: str, *, reason: str, kind: SubscriberState, now: datetime
) -> SubscriberState:
    """Suppress ``email`` as ``kind`` inside the caller's transaction; the kind kept."""
    key = email.strip().lower()
    found = conn.execute(select(suppressions.c.kind).where(suppressions.c.email == key)).scalar()
    if found is None:
        conn.execute(insert(suppressions).values(email=key, reason=reason, kind=kind.value, at=now))
        return kind
    current = SubscriberState(found)
    kept = strongest(current, kind)
    if kept is not current:
        conn.execute(
            update(suppressions)
            .where(suppressions.c.email == key)
            .values(reason=reason, kind=kept.value, at=now)
        )
    return kept
