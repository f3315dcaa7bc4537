"""The outgoing webhook queue: events written with the change they report, sends retried.

Events are written by digest.store.events inside the transaction of their change, so one
exists exactly when its change was committed, and a send never waits for a receiver.
``fan_out`` turns each event into one send per receiver that wants it (then drops the
event); each send keeps its webhook-id across retries, so a receiver can tell a retry
from a new event (at least once, not exactly once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from digest.store.repository import Store
from digest.store.subscriber_rows import writing
from digest.store.tables import webhook_outbox, webhook_sends

PENDING, SENT, DEAD = "pending", "sent", "dead"


@dataclass(frozen=True, slots=True)
class Send:
    """One event on its way to one receiver."""

    id: int
    msg_id: str
    url: str
    event: str
    payload: str
    attempts: int


class WebhookQueue:
    """Fans events out to receivers and records each attempt."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def fan_out(self, receivers: Sequence[tuple[str, frozenset[str]]], *, now: datetime) -> int:
        """One send per (event, receiver wanting it; no events named: all); the number made.
        Events nobody wants are dropped, so the outbox stays small without webhooks."""
        made = 0
        with self.store.reading() as conn:  # most ticks: nothing new, and no write lock
            if conn.execute(select(webhook_outbox.c.id).limit(1)).first() is None:
                return 0
        with writing(self.store) as conn:
            rows = conn.execute(select(webhook_outbox).order_by(webhook_outbox.c.id)).all()
            for row in rows:
                for url, events in receivers:
                    if events and row.event not in events:
                        continue
                    conn.execute(
                        insert(webhook_sends).values(
                            msg_id=f"msg_{row.id}_{row.at.strftime('%Y%m%d%H%M%S')}",
                            url=url,
                            event=row.event,
                            payload=row.payload,
                            state=PENDING,
                            attempts=0,
                            next_at=now,
                            error="",
                        )
                    )
                    made += 1
            if rows:
                conn.execute(delete(webhook_outbox).where(webhook_outbox.c.id <= rows[-1].id))
        return made

    def due(self, *, now: datetime, limit: int = 100) -> list[Send]:
        """Pending sends whose time has come, oldest first."""
        query = (
            select(webhook_sends)
            .where(webhook_sends.c.state == PENDING)
            .where(webhook_sends.c.next_at <= now)
            .order_by(webhook_sends.c.id)
            .limit(limit)
        )
        with self.store.reading() as conn:
            return [
                Send(r.id, r.msg_id, r.url, r.event, r.payload, r.attempts)
                for r in conn.execute(query)
            ]

    def sent(self, send: Send) -> None:
        self._set(send, state=SENT, attempts=send.attempts + 1, error="")

    def failed(self, send: Send, error: str, *, now: datetime, retries: Sequence[timedelta]) -> str:
        """Record a failed attempt: retried after ``retries[attempt - 1]``, dead after the
        last; the new state."""
        attempts = send.attempts + 1
        if attempts > len(retries):
            self._set(send, state=DEAD, attempts=attempts, error=error[:500])
            return DEAD
        later = now + retries[attempts - 1]
        self._set(send, state=PENDING, attempts=attempts, error=error[:500], next_at=later)
        return PENDING

    def _set(self, send: Send, **values: Any) -> None:
        with writing(self.store) as conn:
            conn.execute(
                update(webhook_sends).where(webhook_sends.c.id == send.id).values(**values)
            )

    def counts(self) -> dict[str, int]:
        """Events not yet fanned out (queued), and sends by state (pending, sent, dead)."""
        query = select(webhook_sends.c.state, func.count()).group_by(webhook_sends.c.state)
        with self.store.reading() as conn:
            found = {str(state): int(n) for state, n in conn.execute(query)}
            queued = conn.execute(select(func.count()).select_from(webhook_outbox)).scalar_one()
        return {"queued": int(queued), **{s: found.get(s, 0) for s in (PENDING, SENT, DEAD)}}

    def dead(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest dead sends, with their last error."""
        query = (
            select(webhook_sends)
            .where(webhook_sends.c.state == DEAD)
            .order_by(webhook_sends.c.id.desc())
            .limit(limit)
        )
        with self.store.reading() as conn:
            return [
                {
                    "id": r.msg_id,
                    "url": r.url,
                    "event": r.event,
                    "attempts": r.attempts,
                    "error": r.error,
                }
                for r in conn.execute(query)
            ]
