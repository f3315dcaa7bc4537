"""Operational records: the scheduler's last tick, open editions, and the notices log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from digest.models import Edition, EditionState
from digest.store.repository import Store
from digest.store.sql import insert_ignore, upsert
from digest.store.tables import editions, notices, slot_log

LAST_TICK = "(last tick)"
LAST_BUILD = "(last build)"  # its note: how long the last build took, in seconds
# Editions the scheduler still has work for, whatever the age of their slot.
OPEN_STATES = (EditionState.PENDING_APPROVAL, EditionState.APPROVED, EditionState.SENDING)


def mark_tick(store: Store, now: datetime) -> datetime | None:
    """Record this tick's time; the previous tick's, or None on the first one."""
    with store.transaction() as tx:
        before = tx.conn.execute(select(slot_log.c.at).where(slot_log.c.slot == LAST_TICK))
        previous = before.scalar()
        upsert(tx.conn, slot_log, [{"slot": LAST_TICK, "status": "tick", "note": "", "at": now}])
    return previous if isinstance(previous, datetime) else None


def mark_build(store: Store, seconds: float, now: datetime) -> None:
    """Record how long the latest build took (collect, rank, render, store), for /metrics."""
    row = {"slot": LAST_BUILD, "status": "build", "note": f"{seconds:.3f}", "at": now}
    with store.transaction() as tx:
        upsert(tx.conn, slot_log, [row])


def open_slots(store: Store) -> list[str]:
    """Slots with an edition still pending, approved or sending, oldest first."""
    query = (
        select(editions.c.slot)
        .where(editions.c.state.in_([s.value for s in OPEN_STATES]))
        .distinct()
        .order_by(editions.c.slot)
    )
    with store.reading() as conn:
        return list(conn.execute(query).scalars())


def unnoticed_ends(store: Store, since: datetime) -> list[int]:
    """Editions that ended (sent or failed) since ``since`` with no ``sent`` notice yet: the
    process that ended one died before mailing it, or a worker that predates notices did."""
    noticed = select(notices.c.key).where(notices.c.kind == "sent")
    ended = [EditionState.SENT.value, EditionState.FAILED.value]
    query = (
        select(editions.c.id)
        .where(editions.c.state.in_(ended), editions.c.updated_at >= since)
        .order_by(editions.c.id)
    )
    with store.reading() as conn:
        done = {str(k) for k in conn.execute(noticed).scalars()}
        return [i for i in conn.execute(query).scalars() if f"sent:{i}" not in done]


def proof_key(edition: Edition) -> str:
    """The notices-log key of the proofs of an edition's current revision."""
    return f"proof:{edition.id}:r{edition.revision}"


@dataclass(frozen=True, slots=True)
class Notice:
    """One row of the notices log."""

    key: str
    kind: str
    edition_id: int
    recipients: str
    status: str
    note: str
    at: datetime


class NoticeLog:
    """Each notice (or proof) is claimed once by key before it is mailed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, key: str, *, kind: str, edition_id: int, now: datetime) -> bool:
        """True for the one caller that may send ``key``; False if it was claimed before."""
        row = {
            "key": key,
            "kind": kind,
            "edition_id": edition_id,
            "recipients": "",
            "status": "sending",
            "note": "",
            "at": now,
        }
        with self.store.transaction() as tx:
            return insert_ignore(tx.conn, notices, [row]) == 1

    def record(self, key: str, *, status: str, recipients: str, note: str, now: datetime) -> None:
        with self.store.transaction() as tx:
            tx.conn.execute(
                update(notices)
                .where(notices.c.key == key)
                .values(status=status, recipients=recipients, note=note, at=now)
            )

    def put(
        self,
        key: str,
        *,
        kind: str,
        edition_id: int,
        status: str,
        recipients: str,
        note: str,
        now: datetime,
    ) -> None:
        """Write ``key`` whether or not it was there (a proof sent again by hand)."""
        row = {
            "key": key,
            "kind": kind,
            "edition_id": edition_id,
            "recipients": recipients,
            "status": status,
            "note": note,
            "at": now,
        }
        with self.store.transaction() as tx:
            upsert(tx.conn, notices, [row])

    def get(self, key: str) -> Notice | None:
        with self.store.reading() as conn:
            row = conn.execute(select(notices).where(notices.c.key == key)).first()
        return Notice(**row._mapping) if row is not None else None

    def recent(self, *, limit: int = 50) -> list[Notice]:
        query = select(notices).order_by(notices.c.at.desc()).limit(limit)
        with self.store.reading() as conn:
            return [Notice(**r._mapping) for r in conn.execute(query)]
