"""The delivery ledger as a work queue: rows frozen in chunks, claimed, fenced, recorded.

Workers claim batches of due rows with their token (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite serialises writers anyway). A claim holds while its worker's heartbeat
(the ``workers`` table) is alive. Every later write of a claimed row -- in flight, an
outcome, a release -- names the token, so a worker that lost its claim can neither resend
nor overwrite. The send loop calls these often: plain DBAPI statements on one kept
connection, as building SQLAlchemy statements each time cost more than the SMTP work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from sqlalchemy import String, delete, exists, func, select, update

from digest.models import DeliveryState, Subscriber
from digest.store import receiving
from digest.store.engine import guarded, write_transaction
from digest.store.freeze import INTO, Copy
from digest.store.pause import pause_name
from digest.store.raw import RawConnection
from digest.store.repository import Store
from digest.store.returns import provider_ids_statement
from digest.store.subscribers import Receiving
from digest.store.tables import (
    deliveries,
    ledger_meta,
    locks,
    send_permits,
    stamp,
    topics_of,
    topics_text,
    workers,
)

D = DeliveryState
CHUNK = 5000  # rows per freeze transaction: tens of milliseconds of SQLite's write lock
LIVE = "SELECT token FROM workers WHERE alive_until > ?"
SUPPRESSED = "SELECT 1 FROM suppressions WHERE suppressions.email = lower(deliveries.email)"
PAUSED = "SELECT 1 FROM locks WHERE name = ?"  # store.pause: nothing is claimed or marked
_INSERT = (
    INTO + " VALUES (?, ?, ?, ?, ?, 'pending', 0, '', ?, '', '', '', '', ?, '')"
    " ON CONFLICT DO NOTHING"
)
# PostgreSQL's freeze: a session's scratch table, emptied at each commit.
_FREEZE_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS freeze_rows (edition_id integer, email text, name text,"
    " timezone text, topics text, due text, at text) ON COMMIT DELETE ROWS"
)
_FREEZE_COPY = "COPY freeze_rows FROM STDIN"
_FREEZE_INSERT = (
    INTO + " SELECT edition_id, email, name, timezone, topics, 'pending', 0, '',"
    " due, '', '', '', '', at, '' FROM freeze_rows ON CONFLICT DO NOTHING"
)
_RETURNED = (
    f"email, name, timezone, topics, attempts, first_attempt_at, message_id, EXISTS ({SUPPRESSED})"
)
_CLAIM_SQLITE = (
    "UPDATE deliveries SET claim = ? WHERE rowid IN (SELECT rowid FROM deliveries"
    " WHERE edition_id = ? AND state IN ('pending', 'deferred') AND next_attempt_at <= ?"
    f" AND (claim = '' OR claim NOT IN ({LIVE})) AND NOT EXISTS ({PAUSED}) LIMIT ?)"
    f" RETURNING {_RETURNED}, rowid"
)
# The locked rows are found through the primary key (email = ANY of the locked ones): a
# join with the subquery made the planner hash the whole edition, a scan of every row of
# the ledger per claim (quadratic over a send: 80 ms a claim at 1,000,000 rows).
_CLAIM_PG = (
    "UPDATE deliveries SET claim = ? WHERE email = ANY(ARRAY(SELECT email FROM deliveries"
    " WHERE edition_id = ? AND state IN ('pending', 'deferred') AND next_attempt_at <= ?"
    f" AND (claim = '' OR claim NOT IN ({LIVE})) AND NOT EXISTS ({PAUSED})"
    " LIMIT ? FOR UPDATE SKIP LOCKED))"
    f" AND edition_id = ? RETURNING {_RETURNED}, 0"
)


@dataclass(frozen=True, slots=True)
class Row:
    """A claimed ledger row, with what personalisation needs."""

    subscriber: Subscriber
    attempts: int
    first_attempt_at: str
    suppressed: bool
    message_id: str = ""  # kept from an earlier attempt: a resend carries the same one


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one row in this run."""

    email: str
    state: DeliveryState
    error: str = ""
    next_attempt_at: datetime | None = None
    provider_id: str = ""  # a provider API's id of the message it accepted


@dataclass(frozen=True, slots=True)
class Mark:
    """A row about to go on the wire: its Message-ID and the approved variant it carries."""

    email: str
    message_id: str
    variant_hash: str


def _in(values: Sequence[object]) -> str:
    return "(" + ", ".join("?" * len(values)) + ")"


class Ledger:
    """The deliveries of one store; every method commits before returning."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self.where = store.where
        self.raw = RawConnection(store.engine, store.where)

    def close(self) -> None:
        self.raw.close()

    # freezing ------------------------------------------------------------------------------

    def frozen(self, edition_id: int) -> bool:
        """Whether the recipient list of the edition is completely frozen."""
        query = select(ledger_meta.c.complete).where(ledger_meta.c.edition_id == edition_id)
        with guarded(self.where), self.engine.connect() as conn:
            return bool(conn.execute(query).scalar())

    def populate(
        self,
        edition_id: int,
        subscribers: Iterable[Subscriber],
        *,
        now: datetime,
        not_before: Callable[[str], datetime] | None = None,
        chunk: int = CHUNK,
    ) -> int:
        """Freeze the recipient list: one pending row per subscriber, committed in chunks.

        Each chunk is its own short transaction, so other writers (an unsubscribe, an
        approval) wait at most one chunk. The marker row says whether the freeze finished;
        a rerun after a crash streams again and inserts only the missing rows (idempotent).
        ``not_before`` gives the due time of a reader's time zone (their wave). The store's
        own readers (``Receiving``) are copied inside the database; any other iterable is
        parsed before each transaction, so the lock is held only for the inserts.
        """
        at = stamp(now)
        with write_transaction(self.engine, self.where) as conn:
            exists = conn.execute(
                select(ledger_meta.c.complete).where(ledger_meta.c.edition_id == edition_id)
            ).first()
            if exists is None:
                conn.execute(
                    ledger_meta.insert().values(edition_id=edition_id, frozen_at=at, complete=0)
                )
            elif exists.complete:
                return 0
        total = 0
        if isinstance(subscribers, Receiving) and subscribers.store.engine is self.engine:
            for state in receiving.STATES:
                copy = Copy(
                    self.raw.sql,
                    edition_id=edition_id,
                    state=state,
                    at=at,
                    now=subscribers.now,
                    due=not_before,
                    chunk=chunk,
                )
                while not copy.done:
                    total += self._insert(edition_id, copy)
        else:
            batch: list[tuple[Any, ...]] = []
            for sub in subscribers:
                due = stamp(not_before(sub.timezone)) if not_before else ""
                topics = topics_text(sub.topics)
                batch.append((edition_id, sub.email, sub.name, sub.timezone, topics, due, at))
                if len(batch) >= chunk:
                    total += self._insert(edition_id, self._rows(batch))
                    batch = []
            if batch:
                total += self._insert(edition_id, self._rows(batch))
        with write_transaction(self.engine, self.where) as conn:
            conn.execute(
                update(ledger_meta)
                .where(ledger_meta.c.edition_id == edition_id)
                .values(complete=1, frozen_at=at)
            )
        if not self.raw.sqlite and total:
            # Fresh statistics, now: planned with those of an empty ledger, PostgreSQL marks
            # rows by scanning every pending row of the edition (4 ms a commit at 20,000
            # rows, growing with the list) instead of looking each one up by its key.
            self.raw.transaction(lambda cur: cur.execute("ANALYZE deliveries"))
        return total

    def _rows(self, batch: list[tuple[Any, ...]]) -> Callable[[Any], None]:
        def fill(cur: Any) -> None:
            if self.raw.sqlite:
                cur.executemany(_INSERT, batch)
            else:
                # COPY into a scratch table, then one INSERT ... SELECT: an executemany pays
                # a statement round per row (1.8 s of the 2.8 s freeze at 100,000 readers).
                cur.execute(_FREEZE_TABLE)
                with cur.copy(_FREEZE_COPY) as copy:
                    for row in batch:
                        copy.write_row(row)
                cur.execute(_FREEZE_INSERT)

        return fill

    def _insert(self, edition_id: int, fill: Callable[[Any], None]) -> int:
        """One chunk's transaction: ``fill`` inserts rows (its last statement's count is
        what was added) and the edition's row count follows."""

        def run(cur: Any) -> int:
            fill(cur)
            added = max(int(cur.rowcount), 0)
            cur.execute(
                self.raw.sql("UPDATE ledger_meta SET rows = rows + ? WHERE edition_id = ?"),
                (added, edition_id),
            )
            return added

        added = self.raw.transaction(run)
        if self.raw.sqlite:
            time.sleep(0.002)  # a gap in which a waiting writer takes the lock
        return added

    # workers and their heartbeat ---------------------------------------------------------

    def register(self, token: str, *, host: str, pid: int, now: datetime, until: datetime) -> None:
        with write_transaction(self.engine, self.where) as conn:
            conn.execute(
                workers.insert().values(
                    token=token, host=host, pid=pid, started_at=now, alive_until=until
                )
            )

    def heartbeat(self, token: str, *, now: datetime, until: datetime) -> bool:
        """Extend the worker's life; False if it had already lapsed (its claims are gone)."""
        with write_transaction(self.engine, self.where) as conn:
            done = conn.execute(
                update(workers)
                .where(workers.c.token == token)
                .where(workers.c.alive_until > stamp(now))
                .values(alive_until=until)
            )
            return bool(done.rowcount)

    def retire(self, token: str, *, now: datetime) -> None:
        """The worker stops: its row goes, and with it any claim it still had."""
        with write_transaction(self.engine, self.where) as conn:
            conn.execute(delete(workers).where(workers.c.token == token))
            # Long-dead workers' rows are only history: keep the table small.
            conn.execute(delete(workers).where(workers.c.alive_until < stamp(now)))

    def local_workers(self, host: str) -> list[tuple[str, int]]:
        """(token, pid) of the live workers registered from ``host``."""
        query = select(workers.c.token, workers.c.pid).where(workers.c.host == host)
        with guarded(self.where), self.engine.connect() as conn:
            return [(r.token, r.pid) for r in conn.execute(query)]

    def reap(self, tokens: Sequence[str], *, now: datetime | None = None) -> None:
        """Forget workers known to be dead (their process is gone): their claims lapse now,
        and their busy send permits end now (a dead process sends nothing more)."""
        if tokens:
            at = stamp(now or datetime.now(UTC))
            with write_transaction(self.engine, self.where) as conn:
                conn.execute(delete(workers).where(workers.c.token.in_(list(tokens))))
                conn.execute(
                    update(send_permits)
                    .where(send_permits.c.worker.in_(list(tokens)))
                    .where(send_permits.c.ends_at > at)
                    .values(ends_at=at)
                )

    # the queue -----------------------------------------------------------------------------

    def recover_in_doubt(self, edition_id: int, *, resend: bool, now: datetime, live: str) -> int:
        """Rows a dead worker left in flight: back to pending (resend, keeping their
        Message-ID) or unknown (skip). ``live`` is the real time claims are judged at."""
        state = D.PENDING if resend else D.UNKNOWN
        note = "in doubt after an interrupted run; " + ("resent" if resend else "not resent")
        sql = (
            "UPDATE deliveries SET state = ?, last_error = ?, updated_at = ?,"
            " next_attempt_at = '', claim = '' WHERE edition_id = ? AND state = 'in_flight'"
            f" AND (claim = '' OR claim NOT IN ({LIVE}))"
        )
        params = (state.value, note, stamp(now), edition_id, live)
        return self.raw.transaction(
            lambda cur: int(cur.execute(self.raw.sql(sql), params).rowcount)
        )

    def claim(
        self, edition_id: int, token: str, *, now: datetime, live: str, limit: int
    ) -> list[Row]:
        """Claim up to ``limit`` due rows (pending, or deferred whose retry time has come)."""
        sql = _CLAIM_SQLITE if self.raw.sqlite else _CLAIM_PG
        paused = pause_name(edition_id)
        params: tuple[object, ...] = (token, edition_id, stamp(now), live, paused, limit)
        if not self.raw.sqlite:
            params += (edition_id,)
        found = self.raw.transaction(lambda cur: cur.execute(self.raw.sql(sql), params).fetchall())
        found.sort(key=lambda r: r[-1])  # the subscriber file's order, on SQLite
        return [
            Row(
                Subscriber(r[0], r[1], r[2], topics_of(r[3])),
                r[4],
                r[5],
                bool(r[7]),
                r[6],
            )
            for r in found
        ]

    def release(
        self, edition_id: int, token: str, emails: Sequence[str], *, due: datetime | None = None
    ) -> None:
        """Give claimed rows back to the queue (unsent), due now or at ``due``."""
        if not emails:
            return
        sql = (
            "UPDATE deliveries SET claim = ''"
            + (", next_attempt_at = ?" if due else "")
            + " WHERE edition_id = ? AND claim = ? AND state IN ('pending', 'deferred')"
            f" AND email IN {_in(emails)}"
        )
        params = ((stamp(due),) if due else ()) + (edition_id, token, *emails)
        self.raw.transaction(lambda cur: cur.execute(self.raw.sql(sql), params))

    def commit(
        self,
        edition_id: int,
        token: str,
        *,
        outcomes: Sequence[Outcome],
        in_flight: Sequence[Mark],
        now: datetime,
        live: str,
        extra: Callable[[Any], None] | None = None,
    ) -> set[str]:
        """Record finished rows and mark the next ones in flight, in one transaction.

        Both fenced by ``token``; a mark needs the worker alive and the address not suppressed
        (an unsubscribe since the claim: recorded as skipped). Returns the addresses marked,
        the only ones the caller sends; run again after a lost answer (a blip), a row marked
        with the same Message-ID counts. ``extra(cursor)`` runs in the same transaction.
        """
        if not outcomes and not in_flight and extra is None:
            return set()
        at = stamp(now)

        def run(cur: Any) -> set[str]:
            self._record(cur, edition_id, token, outcomes, at)
            if extra is not None:
                extra(cur)
            if not in_flight:
                return set()
            values = ", ".join(["(?, ?, ?)"] * len(in_flight))
            sql = (
                "UPDATE deliveries SET state = 'in_flight', message_id = v.column2,"
                " variant_hash = v.column3, updated_at = ?, attempts = attempts + 1,"
                " first_attempt_at = CASE WHEN first_attempt_at = '' THEN ?"
                f" ELSE first_attempt_at END FROM (VALUES {values}) AS v"
                " WHERE deliveries.edition_id = ? AND deliveries.email = v.column1"
                " AND deliveries.claim = ? AND (deliveries.state IN ('pending', 'deferred')"
                " OR deliveries.message_id = v.column2)"
                f" AND NOT EXISTS ({SUPPRESSED}) AND NOT EXISTS ({PAUSED})"
                " AND EXISTS (SELECT 1 FROM workers WHERE token = ? AND alive_until > ?)"
                " RETURNING deliveries.email"
            )
            params: list[object] = [at, at]
            for m in in_flight:
                params += [m.email, m.message_id, m.variant_hash]
            params += [edition_id, token, pause_name(edition_id), token, live]
            marked = {r[0] for r in cur.execute(self.raw.sql(sql), params).fetchall()}
            left = [m.email for m in in_flight if m.email not in marked]
            if left:
                cur.execute(
                    self.raw.sql(
                        "UPDATE deliveries SET state = 'skipped', claim = '', updated_at = ?,"
                        " last_error = 'unsubscribed or suppressed' WHERE edition_id = ?"
                        " AND claim = ? AND state IN ('pending', 'deferred')"
                        f" AND EXISTS ({SUPPRESSED}) AND email IN {_in(left)}"
                    ),
                    (at, edition_id, token, *left),
                )
            return marked

        return self.raw.transaction(run)

    def _record(
        self, cur: Any, edition_id: int, token: str, outcomes: Sequence[Outcome], at: str
    ) -> None:
        def key(o: Outcome) -> tuple[str, str, str]:
            due = stamp(o.next_attempt_at) if o.next_attempt_at else ""
            return (o.state.value, o.error, due)

        # Most outcomes of a batch are alike (sent): one statement per kind, not per row.
        for (state, error, due), group in groupby(sorted(outcomes, key=key), key=key):
            emails = [o.email for o in group]
            sent = state == D.SENT.value
            skipped = state == D.SKIPPED.value  # skipped before the wire: never in flight
            where = "state IN ('pending', 'deferred')" if skipped else "state = 'in_flight'"
            cur.execute(
                self.raw.sql(
                    "UPDATE deliveries SET state = ?, last_error = ?, next_attempt_at = ?,"
                    + (" sent_at = ?," if sent else "")
                    + " updated_at = ?, claim = ''"
                    f" WHERE edition_id = ? AND claim = ? AND {where} AND email IN {_in(emails)}"
                ),
                (state, error, due, *((at,) if sent else ()), at, edition_id, token, *emails),
            )
        ids = [(o.email, o.provider_id) for o in outcomes if o.provider_id and o.state is D.SENT]
        if ids:
            sql, params = provider_ids_statement(edition_id, ids)
            cur.execute(self.raw.sql(sql), params)

    # reading and housekeeping ----------------------------------------------------------

    def next_due_at(self, edition_id: int, *, live: str | None = None) -> datetime | None:
        """When the earliest pending or deferred row becomes due, or None if none is left."""
        times = self.next_due(edition_id, live=live).values()
        return min(times) if times else None

    def next_due(self, edition_id: int, *, live: str | None = None) -> dict[str, datetime]:
        """The earliest due time of the pending and of the deferred rows (state -> time);
        with ``live``, rows a live worker has claimed are left out (they are its to send)."""
        query = (
            select(deliveries.c.state, func.min(deliveries.c.next_attempt_at.cast(String)))
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state.in_([D.PENDING.value, D.DEFERRED.value]))
            .where(~exists().where(locks.c.name == pause_name(edition_id)))  # nothing is due
            .group_by(deliveries.c.state)
        )
        if live is not None:
            alive = select(workers.c.token).where(workers.c.alive_until > live)
            query = query.where((deliveries.c.claim == "") | deliveries.c.claim.not_in(alive))
        with guarded(self.where), self.engine.connect() as conn:
            found = conn.execute(query).all()
        earliest = datetime.min.replace(tzinfo=UTC)
        return {s: datetime.fromisoformat(v) if v else earliest for s, v in found}

    def unfinished(self, edition_id: int) -> bool:
        """Whether any row is still pending, deferred or in flight."""
        query = (
            select(deliveries.c.email)
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state.in_([D.PENDING.value, D.DEFERRED.value, D.IN_FLIGHT.value]))
            .limit(1)
        )
        with guarded(self.where), self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def skip_stale(self, edition_id: int, *, due_before: datetime, now: datetime) -> int:
        """Never-tried rows whose delivery time passed long ago: skipped, not sent stale."""
        return self._update(
            update(deliveries)
            .where(deliveries.c.edition_id == edition_id)
            .where(deliveries.c.state == D.PENDING.value)
            .where(deliveries.c.attempts == 0)
            .where(deliveries.c.next_attempt_at != "")
            .where(deliveries.c.next_attempt_at < stamp(due_before))
            .values(
                state=D.SKIPPED.value,
                updated_at=now,
                claim="",
                last_error="missed its delivery time by more than the maximum lateness",
            )
        )

    def _update(self, statement: Any) -> int:
        with write_transaction(self.engine, self.where) as conn:
            return int(conn.execute(statement).rowcount)
