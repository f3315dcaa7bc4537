"""Bulk writes of the readers' list: one file sync or import, in chunks, in one transaction.

The duplicate check of a million-row file lives in a temporary table, not in memory, so an
import stays flat however long the file is; a dry run is the same work rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from digest.models import SubscriberState
from digest.store.repository import Store
from digest.store.subscribers import address_hash, writing
from digest.store.tables import (
    confirmations,
    stamp,
    subscriber_sync,
    subscribers,
    suppressions,
)

S = SubscriberState
BATCH_CACHE_KB = 32_000
# After this many readers added or changed, PostgreSQL gets fresh statistics at once: the
# planner, still holding those of a near-empty table, read the whole list for every page
# of 2,000 readers the freeze and the send loop ask for (quadratic in the list's length).
ANALYZE_AFTER = 1000
# The temporary table of addresses seen in this batch (the same name in every statement).
_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS digest_batch_seen "
    "(key VARCHAR(320) PRIMARY KEY, line INTEGER NOT NULL)"
)
_CLEAR = "DELETE FROM digest_batch_seen"
_EARLIER = "SELECT key, line FROM digest_batch_seen WHERE key IN"
_SEEN = ("digest_batch_seen", ("key", "line"))
# A million-row import spends its time in per-row parameter processing: these go to the
# driver's executemany as plain tuples, with the times already in their stored form.
NEW = (
    "key",
    "email",
    "name",
    "timezone",
    "topics",
    "state",
    "paused_until",
    "source",
    "since",
    "file_gen",
    "file_entry",
    "created_at",
    "updated_at",
)
CHANGED = (
    "email",
    "name",
    "timezone",
    "topics",
    "state",
    "since",
    "file_entry",
    "file_gen",
    "updated_at",
)
_UPDATE = f"UPDATE subscribers SET {', '.join(f'{c} = ?' for c in CHANGED)} WHERE id = ?"  # noqa: S608
_EXISTING = (
    "SELECT id, key, email, name, timezone, topics, state, since, file_gen, file_entry"
    " FROM subscribers WHERE key IN"
)
_SUPPRESSED = "SELECT email, reason FROM suppressions WHERE email IN"
_ERASED = "SELECT hash FROM erasures WHERE hash IN"
_IDS = "SELECT id FROM subscribers WHERE key IN"
_CONSENTS = ("consents", ("subscriber_id", "at", "action", "method", "ip", "text"))


class Batch:
    """Reads and writes of one sync or import; everything commits (or not) together."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.written = 0  # readers inserted or updated
        conn.execute(text(_CREATE))
        conn.execute(text(_CLEAR))
        self._seqscan(on=False)

    def _seqscan(self, *, on: bool) -> None:
        """PostgreSQL: whether the planner may read whole tables in this transaction.

        Off for the chunks' key lookups. With a thousand keys on a table it believes small
        (and which grows inside this very transaction), the planner chose a Seq Scan testing
        each row against each key: every chunk of an import read every reader imported
        before it (EXPLAIN: "Seq Scan on subscribers ... Rows Removed by Filter" growing by
        a chunk each time; 200,000 readers took 298 s). Key lookups always want the index;
        the closing statements (mirror, reconcile) touch the whole list and want it on.
        """
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql(f"SET LOCAL enable_seqscan = {'on' if on else 'off'}")

    def duplicates(self, entries: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
        """(key, line, first line) of each (key, line) entry whose key was listed before, in
        this chunk or an earlier one; the others are remembered for the next chunks."""
        keys = [k for k, _ in entries]
        earlier: dict[str, int] = dict(self._rows(_EARLIER, keys))
        found: list[tuple[str, int, int]] = []
        fresh: dict[str, int] = {}
        for key, line in entries:
            first = earlier.get(key) or fresh.get(key)
            if first is None:
                fresh[key] = line
            else:
                found.append((key, line, first))
        if fresh:
            self._insert(*_SEEN, list(fresh.items()))
        return found

    def _sql(self, sql: str) -> str:
        return sql if self.conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")

    def _many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """executemany on the driver, in its own parameter style."""
        self.conn.exec_driver_sql(self._sql(sql), list(rows))

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows of these columns: executemany on SQLite; on PostgreSQL one statement
        a chunk (a statement per row costs a round of the pipeline and of the executor
        each)."""
        if self.conn.dialect.paramstyle == "qmark":
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            self.conn.exec_driver_sql(sql, list(rows))
            return
        sql, body = _from_json(table, columns, rows)
        self.conn.exec_driver_sql(sql, (body,))

    def _rows(self, sql: str, keys: Sequence[str]) -> list[Any]:
        """``sql`` ending in "IN" for these keys, as driver-level rows."""
        if not keys:
            return []
        if self.conn.dialect.paramstyle == "qmark":
            marks = ", ".join("?" * len(keys))
            return list(self.conn.exec_driver_sql(f"{sql} ({marks})", tuple(keys)))
        # PostgreSQL: the keys as one parameter, not a thousand (see Batch.__init__).
        query = sql.removesuffix(" IN") + " = ANY(ARRAY(SELECT json_array_elements_text(%s)))"
        return list(self.conn.exec_driver_sql(query, (json.dumps(list(keys)),)))

    def existing(self, keys: Sequence[str]) -> dict[str, Any]:
        """The subscribers with these keys (times as stored text)."""
        return {r.key: r for r in self._rows(_EXISTING, keys)}

    def suppressed(self, keys: Sequence[str]) -> dict[str, str]:
        return {r.email: r.reason for r in self._rows(_SUPPRESSED, keys)}

    def erased(self, keys: Sequence[str]) -> set[str]:
        hashes = {address_hash(k): k for k in keys}
        return {hashes[r.hash] for r in self._rows(_ERASED, list(hashes))}

    def insert(self, rows: Sequence[tuple[Any, ...]], *, consent: tuple[str, str, str]) -> None:
        """New subscribers (tuples of the NEW columns, times stamped), each with a consent
        row (action, method, text)."""
        if not rows:
            return
        self.written += len(rows)
        action, method, note = consent
        at = stamp(self.now)
        if self.conn.dialect.name == "postgresql":
            # One statement: the new ids go straight into their consent rows.
            sql, body = _from_json("subscribers", NEW, rows)
            self.conn.exec_driver_sql(
                f"WITH made AS ({sql} RETURNING id) INSERT INTO consents"  # noqa: S608
                " (subscriber_id, at, action, method, ip, text)"
                " SELECT id, %s, %s, %s, '', %s FROM made",
                (body, at, action, method, note),
            )
            return
        self._insert("subscribers", NEW, rows)
        made = self._rows(_IDS, [r[0] for r in rows])
        self._insert(*_CONSENTS, [(r.id, at, action, method, "", note) for r in made])

    def update(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Change subscribers: tuples of the CHANGED columns, then the id."""
        if rows:
            self.written += len(rows)
            self._many(_UPDATE, rows)

    def mirror(self, gen: int) -> int:
        """Readers not in the file (as of sync ``gen``) stop getting mail: the file is the
        list. Opted-out readers keep their state; pending sign-ups may still confirm."""
        self._seqscan(on=True)
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
        self._seqscan(on=True)
        reason = (
            select(suppressions.c.kind)
            .where(suppressions.c.email == subscribers.c.key)
            .scalar_subquery()
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
        self.conn.execute(
            insert(subscriber_sync).values(name=name, fingerprint=fingerprint, gen=gen, at=self.now)
        )

    def purge_pending(self, *, before: datetime) -> None:
        """Drop confirmations older than ``before`` (the links have expired)."""
        self.conn.execute(delete(confirmations).where(confirmations.c.created_at < before))


def _from_json(
    table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> tuple[str, str]:
    """PostgreSQL: (INSERT of these rows from one JSON parameter, that parameter). One text
    parameter, because the driver formats array parameters in Python, a regular expression
    per value: that was half the import's time."""
    names = ", ".join(columns)
    sql = f"INSERT INTO {table} ({names}) SELECT {names}"
    sql += f" FROM json_populate_recordset(NULL::{table}, %s::json)"
    return sql, json.dumps([dict(zip(columns, row, strict=True)) for row in rows])


@contextmanager
def batch(store: Store, *, now: datetime, dry_run: bool = False) -> Iterator[Batch]:
    """A Batch in one write transaction (store.subscribers.writing): committed at the end, or
    rolled back for a dry run and on any error, so a bad row leaves the list as it was."""
    with writing(store, dry_run=dry_run) as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # a bigger page cache for the three indexes a million rows go through
            conn.exec_driver_sql(f"PRAGMA cache_size=-{BATCH_CACHE_KB}")
        work = Batch(conn, now)
        try:
            yield work
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's default, pooled
    if not sqlite and not dry_run and work.written >= ANALYZE_AFTER:
        with writing(store) as conn:
            conn.exec_driver_sql("ANALYZE subscribers")
