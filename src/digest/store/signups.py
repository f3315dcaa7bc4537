"""The sign-up queue: rows the form adds, claimed by a drain, deleted once handled."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update

from digest.store.repository import Store
from digest.store.tables import signup_queue, topics_of, topics_text


@dataclass(frozen=True, slots=True)
class Queued:
    """One sign-up as the form took it; ``claim`` is the drain's token for it."""

    id: int
    email: str
    name: str
    topics: tuple[str, ...]
    ip: str
    created_at: datetime
    claim: str


class SignupQueue:
    """Add (the web answer), claim (a drain, under a lease), done (after the mail)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, *, email: str, name: str, topics: Sequence[str], ip: str, now: datetime) -> None:
        row = {
            "email": email,
            "name": name,
            "topics": topics_text(tuple(topics)),
            "ip": ip,
            "created_at": now,
            "claim": "",
            "claimed_until": "",
        }
        with self.store.transaction() as tx:
            tx.conn.execute(insert(signup_queue).values(row))

    def claim(self, *, now: datetime, lease: timedelta, limit: int = 50) -> list[Queued]:
        """Up to ``limit`` rows nobody holds (never claimed, or the lease ran out: the
        drain that held it crashed), oldest first, now held by a fresh token."""
        token = secrets.token_hex(16)
        free = signup_queue.c.claimed_until < now  # "" (never claimed) sorts first
        due = select(signup_queue.c.id).where(free).order_by(signup_queue.c.id).limit(limit)
        with self.store.transaction() as tx:
            ids = list(tx.conn.execute(due).scalars())
            if not ids:
                return []
            # The lease condition again: a concurrent drain that took a row first wins it
            # (PostgreSQL re-checks the condition on the row it waited for).
            tx.conn.execute(
                update(signup_queue)
                .where(signup_queue.c.id.in_(ids), free)
                .values(claim=token, claimed_until=now + lease)
            )
            rows = tx.conn.execute(
                select(signup_queue)
                .where(signup_queue.c.claim == token)
                .order_by(signup_queue.c.id)
            ).all()
        return [
            Queued(
                id=r.id,
                email=r.email,
                name=r.name,
                topics=topics_of(r.topics),
                ip=r.ip,
                created_at=r.created_at,
                claim=r.claim,
            )
            for r in rows
        ]

    def done(self, item: Queued) -> bool:
        """Forget a handled row; False when its claim was lost (another drain has it)."""
        with self.store.transaction() as tx:
            gone = tx.conn.execute(
                delete(signup_queue).where(
                    signup_queue.c.id == item.id, signup_queue.c.claim == item.claim
                )
            )
        return bool(gone.rowcount)

    def waiting(self) -> int:
        """Rows not handled yet (claimed or not)."""
        with self.store.reading() as conn:
            return int(conn.execute(select(func.count()).select_from(signup_queue)).scalar_one())
