"""An edition's send time moved by an editor: one row of ``locks`` named "send time
edition N" whose ``expires_at`` is the new time (no schema change, as for a pause).

The scheduler reads it where it decides that a slot's send is due; the slot itself (its
waves, lateness and approval deadline) is unchanged, so the move is a delay of every wave.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from digest.store.repository import Store
from digest.store.tables import locks


def send_time_name(edition_id: int) -> str:
    return f"send time edition {edition_id}"


class SendTimes:
    """The moved send times of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, edition_id: int) -> datetime | None:
        """The moved send time of ``edition_id``, None if it goes at its slot's time."""
        query = select(locks.c.expires_at).where(locks.c.name == send_time_name(edition_id))
        with self.store.reading() as conn:
            value = conn.execute(query).scalar()
        return value if isinstance(value, datetime) else None

    @staticmethod
    def put(conn: Connection, edition_id: int, *, at: datetime | None, by: str) -> None:
        """Move (or, with ``at`` None, put back) inside the caller's transaction."""
        name = send_time_name(edition_id)
        conn.execute(delete(locks).where(locks.c.name == name))
        if at is not None:
            conn.execute(insert(locks).values(name=name, owner=by[:200], expires_at=at))
