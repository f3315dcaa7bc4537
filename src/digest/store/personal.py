"""Personal data: the per-recipient footer lookup, and GDPR access (show) and erasure.

``erase`` deletes or anonymises every row that names a reader, keeps only a salted hash of
the address (so no sync, import or sign-up mails them again), then rewrites the SQLite file
(VACUUM, WAL truncated) so the deleted bytes are not left in free pages.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import PoolProxiedConnection, case, delete, select, update

from digest.exceptions import StoreError
from digest.models import DeliveryState
from digest.store.engine import describe, guarded
from digest.store.raw import database_error
from digest.store.repository import Store
from digest.store.sql import insert_ignore
from digest.store.subscribers import address_hash, address_key, writing
from digest.store.tables import (
    bounce_events,
    confirmations,
    consents,
    deliveries,
    editions,
    erasures,
    subscribers,
    suppressions,
    webhook_outbox,
    webhook_sends,
)

D = DeliveryState


class Lookup:
    """Footer facts of readers by address, for the send loop, which asks for every recipient
    in address order (the ledger's): one range query fetches the next readers, and the
    lookups that follow are dictionary hits. On one kept DBAPI connection; use from one
    thread; close() when done."""

    AHEAD = 2000

    def __init__(self, store: Store) -> None:
        self.where = store.where
        self._engine = store.engine
        mark = "?" if store.engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = (
            f"SELECT key, id, source, since FROM subscribers WHERE key >= {mark} "  # noqa: S608
            f"ORDER BY key LIMIT {self.AHEAD}"
        )
        self._raw: PoolProxiedConnection | None = None
        self._cursor: Any = None
        self._ahead: dict[str, tuple[int, str, str] | None] = {}

    def __call__(self, email: str) -> tuple[int, str, str] | None:
        """(id, source, since as stored) of the subscriber with this address, or None."""
        key = address_key(email)
        if key not in self._ahead:
            self._fetch(key)
        return self._ahead.get(key)

    def _fetch(self, key: str) -> None:
        try:
            rows = self._read(key)
        except Exception as exc:
            if not database_error(exc):
                raise
            # The kept connection is broken (the server went away): the next call opens a
            # new one, and the sender decides whether to wait for it (send.db_retry_seconds).
            self.close(broken=True)
            raise StoreError(describe(self.where, exc)) from exc
        self._ahead = {r[0]: (int(r[1]), str(r[2]), str(r[3] or "")) for r in rows}
        self._ahead.setdefault(key, None)  # not a subscriber (any more)

    def _read(self, key: str) -> list[Any]:
        with guarded(self.where):
            if self._cursor is None:
                self._raw = self._engine.raw_connection()
                self._cursor = self._raw.cursor()
            self._cursor.execute(self._sql, (key,))
            # fetchall: a statement left open keeps a read snapshot, which stops the WAL
            # checkpoints the send's ledger commits rely on.
            rows: list[Any] = self._cursor.fetchall()
            # And end the read: PostgreSQL opens a transaction for it, which would otherwise
            # stay idle in transaction for the whole send.
            self._raw.rollback()  # type: ignore[union-attr]
        return rows

    def close(self, *, broken: bool = False) -> None:
        cursor, raw, self._cursor, self._raw = self._cursor, self._raw, None, None
        with contextlib.suppress(Exception):  # a broken connection is being thrown away
            if cursor is not None:
                cursor.close()
            if raw is not None:
                if broken:
                    raw.invalidate()  # not back to the pool: its reset would fail and log
                raw.close()


def _spellings(store: Store, email: str) -> list[str]:
    """The ways the ledger may have spelt an address (as stored, and lower-cased)."""
    key = address_key(email)
    with store.reading() as conn:
        stored = conn.execute(select(subscribers.c.email).where(subscribers.c.key == key))
        found = {key, email.strip(), *stored.scalars()}
    return sorted(found)


def _deliveries_of(spellings: list[str]) -> Any:
    # Both primary-key columns constrained: one index seek per edition, not a table scan.
    return (deliveries.c.edition_id.in_(select(editions.c.id))) & (
        deliveries.c.email.in_(spellings)
    )


def deliveries_for(store: Store, email: str) -> list[dict[str, Any]]:
    """Every ledger row that names this address (GDPR access)."""
    query = (
        select(
            deliveries.c.edition_id,
            deliveries.c.email,
            deliveries.c.state,
            deliveries.c.sent_at,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.topics,
        )
        .where(_deliveries_of(_spellings(store, email)))
        .order_by(deliveries.c.edition_id)
    )
    with store.reading() as conn:
        return [
            {
                "edition": r.edition_id,
                "email": r.email,
                "state": r.state,
                "sent_at": r.sent_at.isoformat() if r.sent_at else "",
                "attempts": r.attempts,
                "last_error": r.last_error,
                "topics": json.loads(r.topics),
            }
            for r in conn.execute(query)
        ]


def erase(store: Store, email: str, *, now: datetime) -> dict[str, int]:
    """Delete everything held about ``email``; keep its salted hash. Counts what went."""
    key = address_key(email)
    digest = address_hash(key)
    spellings = _spellings(store, email)
    counts: dict[str, int] = {}
    with writing(store) as conn:
        ids = list(conn.execute(select(subscribers.c.id).where(subscribers.c.key == key)).scalars())
        for table in (consents, confirmations):
            counts[table.name] = int(
                conn.execute(delete(table).where(table.c.subscriber_id.in_(ids))).rowcount
            )
        counts["subscribers"] = int(
            conn.execute(delete(subscribers).where(subscribers.c.id.in_(ids))).rowcount
        )
        counts["suppressions"] = int(
            conn.execute(delete(suppressions).where(suppressions.c.email == key)).rowcount
        )
        counts["bounce_events"] = int(
            conn.execute(delete(bounce_events).where(bounce_events.c.email == key)).rowcount
        )
        # Webhook events about the reader, sent or not: an erased reader is not reported.
        for table in (webhook_outbox, webhook_sends):
            about = table.c.payload.contains(json.dumps(key), autoescape=True)
            counts[table.name] = int(conn.execute(delete(table).where(about)).rowcount)
        # The ledger keeps its counts, but no longer whom a row was for; a row still due is
        # never sent.
        due = [D.PENDING.value, D.DEFERRED.value, D.IN_FLIGHT.value]
        counts["deliveries"] = int(
            conn.execute(
                update(deliveries)
                .where(_deliveries_of(spellings))
                .values(
                    email=f"erased-{digest[:24]}",
                    name="",
                    timezone="",
                    topics="[]",
                    last_error="erased",
                    message_id="",
                    updated_at=now,
                    state=case(
                        (deliveries.c.state.in_(due), D.SKIPPED.value), else_=deliveries.c.state
                    ),
                )
            ).rowcount
        )
        insert_ignore(conn, erasures, [{"hash": digest, "at": now}])
    _compact(store)
    return counts


def _compact(store: Store) -> None:
    """Rewrite the file so deleted rows leave no bytes behind (SQLite keeps them in free
    pages and in the write-ahead log until both are rewritten)."""
    if store.engine.dialect.name != "sqlite":
        return
    with guarded(store.where), store.engine.connect() as raw:
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
