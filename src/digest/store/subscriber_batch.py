"""Bulk writes of the readers' list: one file sync or import, in chunks, in one transaction.

The duplicate check of a million-row file lives in a temporary table, not in memory, so an
import stays flat however long the file is; a dry run is the same work rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, text, update

from digest.models import SubscriberState
from digest.store.engine import guarded
from digest.store.repository import Store
from digest.store.subscribers import _REASON_STATE, address_hash
from digest.store.tables import (
    confirmations,
    consents,
    erasures,
    subscriber_sync,
    subscribers,
    suppressions,
)

S = SubscriberState
# The temporary table of addresses seen in this batch (the same name in every statement).
_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS digest_batch_seen "
    "(key VARCHAR(320) PRIMARY KEY, line INTEGER NOT NULL)"
)
_CLEAR = "DELETE FROM digest_batch_seen"
_EARLIER = "SELECT key, line FROM digest_batch_seen WHERE key IN :keys"
_REMEMBER = "INSERT INTO digest_batch_seen (key, line) VALUES (:key, :line)"


class Batch:
    """Reads and writes of one sync or import; everything commits (or not) together."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        conn.execute(text(_CREATE))
        conn.execute(text(_CLEAR))

    def duplicates(self, entries: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
        """(key, line, first line) of each (key, line) entry whose key was listed before, in
        this chunk or an earlier one; the others are remembered for the next chunks."""
        earlier: dict[str, int] = {}
        keys = [k for k, _ in entries]
        if keys:
            query = text(_EARLIER).bindparams(bindparam("keys", expanding=True))
            earlier = {r.key: r.line for r in self.conn.execute(query, {"keys": keys})}
        found: list[tuple[str, int, int]] = []
        fresh: dict[str, int] = {}
        for key, line in entries:
            first = earlier.get(key) or fresh.get(key)
            if first is None:
                fresh[key] = line
            else:
                found.append((key, line, first))
        if fresh:
            self.conn.execute(
                text(_REMEMBER),
                [{"key": k, "line": v} for k, v in fresh.items()],
            )
        return found

    def existing(self, keys: Sequence[str]) -> dict[str, Any]:
        query = select(subscribers).where(subscribers.c.key.in_(keys))
        return {r.key: r for r in self.conn.execute(query)}

    def suppressed(self, keys: Sequence[str]) -> dict[str, str]:
        query = select(suppressions.c.email, suppressions.c.reason).where(
            suppressions.c.email.in_(keys)
        )
        return {r.email: r.reason for r in self.conn.execute(query)}

    def erased(self, keys: Sequence[str]) -> set[str]:
        hashes = {address_hash(k): k for k in keys}
        query = select(erasures.c.hash).where(erasures.c.hash.in_(list(hashes)))
        return {hashes[h] for h in self.conn.execute(query).scalars()}

    def insert(self, rows: Sequence[dict[str, Any]], *, consent: tuple[str, str, str]) -> None:
        """New subscribers, each with a consent row (action, method, text)."""
        if not rows:
            return
        made = self.conn.execute(insert(subscribers).returning(subscribers.c.id), list(rows))
        action, method, note = consent
        self.conn.execute(
            insert(consents),
            [{"subscriber_id": i, "at": self.now, "action": action, "method": method,
              "ip": "", "text": note} for i in made.scalars()],
        )  # fmt: skip

    def update(self, rows: Sequence[dict[str, Any]]) -> None:
        """Change subscribers by id: each row has ``_id`` and the same other keys."""
        if not rows:
            return
        names = [k for k in rows[0] if k != "_id"]
        statement = (
            update(subscribers).where(subscribers.c.id == bindparam("_id"))
            .values({n: bindparam(n) for n in names})
        )  # fmt: skip
        self.conn.execute(statement, list(rows))

    def mirror(self, gen: int) -> int:
        """Readers not in the file (as of sync ``gen``) stop getting mail: the file is the
        list. Opted-out readers keep their state; pending sign-ups may still confirm."""
        return int(
            self.conn.execute(
                update(subscribers)
                .where(subscribers.c.state.in_([S.ACTIVE.value, S.PAUSED.value]))
                .where(subscribers.c.file_gen != gen)
                .values(state=S.REMOVED.value, updated_at=self.now)
            ).rowcount
        )

    def reconcile(self) -> int:
        """Unsubscribes, bounces and complaints on the suppression list (from the send engine
        or a link) become the subscribers' states."""
        reason = (
            select(_REASON_STATE).where(suppressions.c.email == subscribers.c.key).scalar_subquery()
        )
        statement = (
            update(subscribers)
            .where(subscribers.c.key.in_(select(suppressions.c.email)))
            .where(subscribers.c.state.in_([S.ACTIVE.value, S.PAUSED.value, S.REMOVED.value]))
            .values(state=reason, updated_at=self.now)
        )
        return int(self.conn.execute(statement).rowcount)

    def last_sync(self, name: str) -> tuple[str, int]:
        """(fingerprint, generation) of the last sync of ``name``; ("", 0) if none."""
        query = select(subscriber_sync).where(subscriber_sync.c.name == name)
        row = self.conn.execute(query).first()
        return (row.fingerprint, row.gen) if row else ("", 0)

    def save_sync(self, name: str, *, fingerprint: str, gen: int) -> None:
        self.conn.execute(delete(subscriber_sync).where(subscriber_sync.c.name == name))
        self.conn.execute(insert(subscriber_sync).values(
            name=name, fingerprint=fingerprint, gen=gen, at=self.now
        ))  # fmt: skip

    def purge_pending(self, *, before: datetime) -> None:
        """Drop confirmations older than ``before`` (the links have expired)."""
        self.conn.execute(delete(confirmations).where(confirmations.c.created_at < before))


@contextmanager
def batch(store: Store, *, now: datetime, dry_run: bool = False) -> Iterator[Batch]:
    """A Batch in one transaction: committed at the end, or rolled back for a dry run (and
    on any error, so a bad row leaves the list as it was)."""
    with guarded(store.where), store.engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield Batch(conn, now)
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
