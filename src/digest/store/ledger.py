"""The delivery ledger: one row per edition x subscriber, streamed and updated in batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import PoolProxiedConnection, String, func, literal, select, update

from digest.models import DeliveryState, Subscriber
from digest.store.engine import guarded
from digest.store.repository import Store
from digest.store.sql import insert_ignore
from digest.store.tables import deliveries, ledger_meta, stamp, suppressions

D = DeliveryState
CHUNK = 2000

# The send loop commits every few messages: plain DBAPI statements on one kept connection,
# as building SQLAlchemy statements each time cost more than the SMTP work itself.
_MARK = (
    "UPDATE deliveries SET state = 'in_flight', message_id = ?, variant_hash = ?,"
    " updated_at = ?, attempts = attempts + 1,"
    " first_attempt_at = CASE WHEN first_attempt_at = '' THEN ? ELSE first_attempt_at END"
    " WHERE edition_id = ? AND email = ?"
)
_RECORD = (
    "UPDATE deliveries SET state = ?, last_error = ?, next_attempt_at = ?, sent_at = ?,"
    " updated_at = ? WHERE edition_id = ? AND email = ?"
)


@dataclass(frozen=True, slots=True)
class Row:
    """A ledger row due for an attempt, with what personalisation needs."""

    subscriber: Subscriber
    attempts: int
    first_attempt_at: str
    suppressed: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one row in this run."""

    email: str
    state: DeliveryState
    error: str = ""
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """A row about to go on the wire: its Message-ID and the approved variant it carries."""

    email: str
    message_id: str
    variant_hash: str


class Ledger:
    """Reads and writes the deliveries of one store; every method commits before returning."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.where = store.where
        self._raw: PoolProxiedConnection | None = None

    def frozen(self, edition_id: int) -> bool:
        query = select(ledger_meta.c.edition_id).where(ledger_meta.c.edition_id == edition_id)
        with guarded(self.where), self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def populate(
        self,
        edition_id: int,
        subscribers: Iterable[Subscriber],
        *,
        now: datetime,
        not_before: Callable[[Subscriber], datetime] | None = None,
    ) -> int:
        """Freeze the recipient list: one pending row per subscriber, in one transaction.

        Streams ``subscribers`` in chunks, so memory does not grow with the list. A crash
        before the commit leaves nothing; a rerun populates again.
        """
        at = stamp(now)
        total = 0
        with guarded(self.where), self.engine.begin() as conn:
            chunk: list[dict[str, object]] = []
            for sub in subscribers:
                chunk.append({
                    "edition_id": edition_id, "email": sub.email, "name": sub.name,
                    "timezone": sub.timezone, "topics": json.dumps(list(sub.topics)),
                    "state": D.PENDING.value, "attempts": 0, "last_error": "",
                    "message_id": "", "variant_hash": "", "updated_at": at,
                    "first_attempt_at": "", "sent_at": "",
                    "next_attempt_at": stamp(not_before(sub)) if not_before else "",
                })  # fmt: skip
                if len(chunk) >= CHUNK:
                    total += insert_ignore(conn, deliveries, chunk)
                    chunk = []
            total += insert_ignore(conn, deliveries, chunk)
            insert_ignore(conn, ledger_meta, [{"edition_id": edition_id, "frozen_at": at}])
        return total

    def recover_in_doubt(self, edition_id: int, *, resend: bool, now: datetime) -> int:
        """Rows left in flight by a crash: back to pending (resend) or unknown (skip)."""
        state = D.PENDING if resend else D.UNKNOWN
        note = "in doubt after an interrupted run; " + ("resent" if resend else "not resent")
        return self._update(
            update(deliveries)
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state == D.IN_FLIGHT.value)
            .values(state=state.value, last_error=note, updated_at=now, next_attempt_at="")
        )

    def due(self, edition_id: int, *, now: datetime) -> Iterator[Row]:
        """Pending rows, and deferred rows whose retry time has come, by address (keyset)."""
        at = stamp(now)
        last = ""
        is_suppressed = (
            select(suppressions.c.email)
            .where(suppressions.c.email == func.lower(deliveries.c.email))
            .exists()
        )
        while True:
            query = (
                select(
                    deliveries.c.email,
                    deliveries.c.name,
                    deliveries.c.timezone,
                    deliveries.c.topics,
                    deliveries.c.attempts,
                    deliveries.c.first_attempt_at.cast(String).label("first_attempt_at"),
                    is_suppressed.label("suppressed"),
                )
                .where(deliveries.c.edition_id == edition_id)
                .where(deliveries.c.state.in_([D.PENDING.value, D.DEFERRED.value]))
                .where(deliveries.c.next_attempt_at <= at)
                .where(deliveries.c.email > last)
                .order_by(deliveries.c.email)
                .limit(CHUNK)
            )
            with guarded(self.where), self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for r in rows:
                sub = Subscriber(r.email, r.name, r.timezone, tuple(json.loads(r.topics)))
                yield Row(sub, r.attempts, r.first_attempt_at, bool(r.suppressed))
            if len(rows) < CHUNK:
                return
            last = rows[-1].email

    def next_due_at(self, edition_id: int) -> datetime | None:
        """When the earliest pending or deferred row becomes due, or None if none is left."""
        query = (
            select(func.min(deliveries.c.next_attempt_at.cast(String)))
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state.in_([D.PENDING.value, D.DEFERRED.value]))
        )
        with guarded(self.where), self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        if value is None:
            return None
        return datetime.fromisoformat(value) if value else datetime.min.replace(tzinfo=UTC)

    def record(self, edition_id: int, outcomes: Sequence[Outcome], *, now: datetime) -> None:
        """Write the outcome of a batch of rows in one transaction."""
        self.commit(edition_id, outcomes=outcomes, in_flight=(), now=now)

    def commit(
        self,
        edition_id: int,
        *,
        outcomes: Sequence[Outcome],
        in_flight: Sequence[Mark],
        now: datetime,
    ) -> None:
        """Record finished rows and mark the next rows in flight, in one transaction; the
        caller sends the in-flight rows only after this returns."""
        if not outcomes and not in_flight:
            return
        at = stamp(now)
        record = [
            (
                o.state.value, o.error, stamp(o.next_attempt_at) if o.next_attempt_at else "",
                at if o.state is D.SENT else "", at, edition_id, o.email,
            )
            for o in outcomes
        ]  # fmt: skip
        mark = [(m.message_id, m.variant_hash, at, at, edition_id, m.email) for m in in_flight]
        with guarded(self.where):
            if self._raw is None:
                self._raw = self.engine.raw_connection()
            with self._raw.driver_connection as conn:  # type: ignore[union-attr]
                if record:
                    conn.executemany(_RECORD, record)
                if mark:
                    conn.executemany(_MARK, mark)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def expire(self, edition_id: int, *, first_attempt_before: datetime, now: datetime) -> int:
        """Deferred rows that kept failing past the retry deadline become failed (expired)."""
        return self._update(
            update(deliveries)
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state == D.DEFERRED.value)
            .where(deliveries.c.first_attempt_at != "")
            .where(deliveries.c.first_attempt_at < stamp(first_attempt_before))
            .values(
                state=D.FAILED.value,
                updated_at=now,
                last_error=literal("expired: retry deadline passed; last error: ").concat(
                    deliveries.c.last_error
                ),
            )
        )

    def skip_stale(self, edition_id: int, *, due_before: datetime, now: datetime) -> int:
        """Never-tried rows whose delivery time passed long ago: skipped, not sent stale."""
        return self._update(
            update(deliveries)
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state == D.PENDING.value)
            .where(deliveries.c.attempts == 0)
            .where(deliveries.c.next_attempt_at != "")
            .where(deliveries.c.next_attempt_at < stamp(due_before))
            .values(state=D.SKIPPED.value, updated_at=now,
                    last_error="missed its delivery time by more than the maximum lateness")
        )  # fmt: skip

    def _update(self, statement: object) -> int:
        with guarded(self.where), self.engine.begin() as conn:
            return int(conn.execute(statement).rowcount)  # type: ignore[call-overload]
