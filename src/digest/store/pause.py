"""A paused send: one row of ``locks`` named "pause edition N" (no schema change).

The ledger reads it where it claims rows and where it marks them in flight (the same
transaction), so once ``put`` commits no further message of the edition goes on the wire;
what was already in flight finishes. A lock row, not an edition state: the edition stays
``sending`` and every worker, in any process, sees the pause at its next claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select

from digest.store.repository import Store
from digest.store.tables import locks

NEVER = datetime(9999, 1, 1, tzinfo=UTC)  # a pause holds until lifted, never by itself


def pause_name(edition_id: int) -> str:
    """The ``locks`` row that pauses ``edition_id`` (named in the ledger's SQL as a value)."""
    return f"pause edition {edition_id}"


@dataclass(frozen=True, slots=True)
class Paused:
    """Who paused a send, and when."""

    by: str
    at: datetime


class Pauses:
    """The paused sends of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, edition_id: int) -> Paused | None:
        query = select(locks.c.owner).where(locks.c.name == pause_name(edition_id))
        with self.store.reading() as conn:
            owner = conn.execute(query).scalar()
        if owner is None:
            return None
        by, _, at = str(owner).rpartition("@")
        return Paused(by, datetime.fromisoformat(at))

    @staticmethod
    def put(conn: Connection, edition_id: int, *, by: str, now: datetime) -> None:
        """Pause, inside the caller's transaction (the audit row is written with it)."""
        owner = f"{by}@{now.astimezone(UTC).isoformat()}"
        conn.execute(
            insert(locks).values(name=pause_name(edition_id), owner=owner, expires_at=NEVER)
        )

    @staticmethod
    def lift(conn: Connection, edition_id: int) -> None:
        conn.execute(delete(locks).where(locks.c.name == pause_name(edition_id)))
