"""The delivery ledger: one row per edition x subscriber, streamed and updated in batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import PoolProxiedConnection, func, insert, literal, select, update

from digest.models import DeliveryState, Subscriber
from digest.store import Store, deliveries, ledger_meta, suppressions

D = DeliveryState
CHUNK = 2000


def iso(value: datetime) -> str:
    # One fixed format (UTC, microseconds) so that ISO strings compare like the times.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


_MARK = (
    "UPDATE deliveries SET state = 'in_flight', message_id = ?, updated_at = ?,"
    " attempts = attempts + 1,"
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
    message_id: str | None = None


class Ledger:
    """Reads and writes the deliveries of one store; every method commits before returning."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self._raw: PoolProxiedConnection | None = None

    def frozen(self, edition_id: int) -> bool:
        query = select(ledger_meta.c.edition_id).where(ledger_meta.c.edition_id == edition_id)
        with self.engine.connect() as conn:
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
        stamp = iso(now)
        total = 0
        with self.engine.begin() as conn:
            chunk: list[dict[str, object]] = []
            for sub in subscribers:
                chunk.append(
                    {
                        "edition_id": edition_id,
                        "email": sub.email,
                        "name": sub.name,
                        "timezone": sub.timezone,
                        "topics": json.dumps(list(sub.topics)),
                        "state": D.PENDING.value,
                        "attempts": 0,
                        "last_error": "",
                        "message_id": "",
                        "updated_at": stamp,
                        "first_attempt_at": "",
                        "next_attempt_at": iso(not_before(sub)) if not_before else "",
                        "sent_at": "",
                    }
                )
                if len(chunk) >= CHUNK:
                    total += conn.execute(
                        insert(deliveries).prefix_with("OR IGNORE"), chunk
                    ).rowcount
                    chunk = []
            if chunk:
                total += conn.execute(insert(deliveries).prefix_with("OR IGNORE"), chunk).rowcount
            conn.execute(
                insert(ledger_meta).prefix_with("OR IGNORE"),
                [{"edition_id": edition_id, "frozen_at": stamp}],
            )
        return int(total)

    def recover_in_doubt(self, edition_id: int, *, resend: bool, now: datetime) -> int:
        """Rows left in flight by a crash: back to pending (resend) or unknown (skip)."""
        state = D.PENDING if resend else D.UNKNOWN
        note = "in doubt after an interrupted run; " + ("resent" if resend else "not resent")
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.edition_id == edition_id)
                .where(deliveries.c.state == D.IN_FLIGHT.value)
                .values(state=state.value, last_error=note, updated_at=iso(now), next_attempt_at="")
            )
        return int(result.rowcount)

    def due(self, edition_id: int, *, now: datetime) -> Iterator[Row]:
        """Pending rows, and deferred rows whose retry time has come, by address (keyset)."""
        stamp = iso(now)
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
                    deliveries.c.first_attempt_at,
                    is_suppressed.label("suppressed"),
                )
                .where(deliveries.c.edition_id == edition_id)
                .where(deliveries.c.state.in_([D.PENDING.value, D.DEFERRED.value]))
                .where(deliveries.c.next_attempt_at <= stamp)
                .where(deliveries.c.email > last)
                .order_by(deliveries.c.email)
                .limit(CHUNK)
            )
            with self.engine.connect() as conn:
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
            select(func.min(deliveries.c.next_attempt_at))
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state.in_([D.PENDING.value, D.DEFERRED.value]))
        )
        with self.engine.connect() as conn:
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
        in_flight: Sequence[tuple[str, str]],
        now: datetime,
    ) -> None:
        """Record finished rows and mark the next (email, message_id) rows in flight, in one
        transaction; the caller sends the in-flight rows only after this returns."""
        if not outcomes and not in_flight:
            return
        stamp = iso(now)
        record = [
            (
                o.state.value, o.error, iso(o.next_attempt_at) if o.next_attempt_at else "",
                stamp if o.state is D.SENT else "", stamp, edition_id, o.email,
            )
            for o in outcomes
        ]  # fmt: skip
        mark = [(m, stamp, stamp, edition_id, e) for e, m in in_flight]
        # The send loop commits every few messages: plain DBAPI on one kept connection, as
        # building SQLAlchemy statements each time cost more than the SMTP work itself.
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
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.edition_id == edition_id)
                .where(deliveries.c.state == D.DEFERRED.value)
                .where(deliveries.c.first_attempt_at != "")
                .where(deliveries.c.first_attempt_at < iso(first_attempt_before))
                .values(
                    state=D.FAILED.value,
                    updated_at=iso(now),
                    last_error=literal("expired: retry deadline passed; last error: ").concat(
                        deliveries.c.last_error
                    ),
                )
            )
        return int(result.rowcount)

    def skip_stale(self, edition_id: int, *, due_before: datetime, now: datetime) -> int:
        """Never-tried rows whose delivery time passed long ago: skipped, not sent stale."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.edition_id == edition_id)
                .where(deliveries.c.state == D.PENDING.value)
                .where(deliveries.c.attempts == 0)
                .where(deliveries.c.next_attempt_at != "")
                .where(deliveries.c.next_attempt_at < iso(due_before))
                .values(state=D.SKIPPED.value, updated_at=iso(now),
                        last_error="missed its delivery time by more than the maximum lateness")
            )  # fmt: skip
        return int(result.rowcount)
