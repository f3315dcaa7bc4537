"""The state database's queries: editions, revisions, approvals, variants, audit, lists.

Every write of an edition's state goes through ``Transaction.write_transition`` (called only
by approval.apply); reads are methods of Store. No other module holds SQL.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from digest.exceptions import StateError
from digest.models import (
    AuditEntry,
    Candidate,
    Edition,
    EditionState,
    RenderedEdition,
    SubscriberState,
    Variant,
)
from digest.store import suppress
from digest.store.edition_rows import Revision, content_of, edition_of
from digest.store.engine import (
    guarded,
    prepare,
    sqlite_engine,
    url_engine,
    writable,
    write_transaction,
)
from digest.store.events import EVENTS, enqueue
from digest.store.sql import insert_ignore, upsert
from digest.store.tables import (
    approvals,
    audit,
    deliveries,
    delivery_summaries,
    edition_ranking,
    edition_variants,
    editions,
    seen_stories,
    slot_log,
    suppressions,
)

CHUNK = 500


class Transaction:
    """Writes that must happen together; made by ``Store.transaction()``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert_edition(
        self, *, slot: str, revision: Revision, now: datetime, warnings: Sequence[str]
    ) -> int:
        row = {
            "slot": slot,
            "state": EditionState.DRAFT.value,
            "revision": 1,
            **content_of(revision),
            "warnings": json.dumps(list(warnings)),
            "created_at": now,
            "updated_at": now,
        }
        key = self.conn.execute(insert(editions).values(**row)).inserted_primary_key
        assert key is not None  # an autoincrement insert always has one
        edition_id = int(key[0])
        self._replace_variants(edition_id, revision, now)
        return edition_id

    def get_edition(self, edition_id: int) -> Edition:
        """The edition as this transaction sees it."""
        row = self.conn.execute(select(editions).where(editions.c.id == edition_id)).first()
        if row is None:
            raise StateError(f"edition {edition_id} does not exist; `digest status` lists them")
        return edition_of(row._mapping)

    def slot_editions(self, slot: str) -> list[Edition]:
        """Every edition built for ``slot``, oldest first, as this transaction sees them."""
        query = select(editions).where(editions.c.slot == slot).order_by(editions.c.id)
        return [edition_of(r._mapping) for r in self.conn.execute(query)]

    def write_transition(self, entry: AuditEntry, *, revision: Revision | None = None) -> None:
        """THE writer of edition state: compare-and-set state (and revision), then audit.

        With ``revision`` the edition's content and variants are replaced as well (an edit
        makes revision ``entry.revision`` out of ``entry.revision - 1``). If another process
        moved the edition first, nothing is written and StateError says what it is now.
        """
        expected = entry.revision - 1 if revision is not None else entry.revision
        values: dict[str, Any] = {"state": entry.to_state.value, "updated_at": entry.at}
        if revision is not None:
            values.update(content_of(revision), revision=entry.revision)
        result = self.conn.execute(
            update(editions)
            .where(editions.c.id == entry.edition_id)
            .where(editions.c.state == entry.from_state.value)
            .where(editions.c.revision == expected)
            .values(**values)
        )
        if result.rowcount != 1:
            row = self.conn.execute(
                select(editions.c.state, editions.c.revision).where(
                    editions.c.id == entry.edition_id
                )
            ).first()
            now = f"now {row.state}, revision {row.revision}" if row else "it was deleted"
            raise StateError(
                f"edition {entry.edition_id} changed meanwhile ({now}); look again and retry"
            )
        if revision is not None:
            self._replace_variants(entry.edition_id, revision, entry.at)
            self._replace_desk_edits(entry.edition_id, revision)
        self.conn.execute(
            insert(audit).values(
                edition_id=entry.edition_id,
                from_state=entry.from_state.value,
                to_state=entry.to_state.value,
                actor=entry.actor,
                via=entry.via,
                at=entry.at,
                revision=entry.revision,
                content_hash=entry.content_hash,
                note=entry.note,
            )
        )
        event = f"edition.{entry.to_state.value}"  # approved, sent, expired: webhooks
        if event in EVENTS and entry.from_state is not entry.to_state:
            data = {"edition": entry.edition_id, "revision": entry.revision, "by": entry.actor}
            enqueue(self.conn, event, data, now=entry.at)

    def add_approval(
        self,
        edition: Edition,
        *,
        editor: str,
        actor: str,
        via: str,
        now: datetime,
        among: Collection[str] | None = None,
    ) -> int:
        """Record one editor's approval of the current revision; the count so far, or 0 if
        this editor had approved it already. With ``among`` (lower-cased editor keys), only
        approvals by those editors count: a revoked editor's earlier approval does not."""
        row = {
            "edition_id": edition.id,
            "revision": edition.revision,
            "editor": editor,
            "actor": actor,
            "via": via,
            "at": now,
        }
        if insert_ignore(self.conn, approvals, [row]) != 1:
            return 0
        query = (
            select(func.count())
            .select_from(approvals)
            .where(approvals.c.edition_id == edition.id)
            .where(approvals.c.revision == edition.revision)
        )
        if among is not None:
            query = query.where(approvals.c.editor.in_(list(among)))
        return int(self.conn.execute(query).scalar_one())

    def save_ranking(
        self, edition_id: int, candidates: Sequence[Candidate], extra: dict[str, Any]
    ) -> None:
        """Keep the build's explanation (``preview EDITION --explain``) and template extras."""
        upsert(
            self.conn,
            edition_ranking,
            [
                {
                    "edition_id": edition_id,
                    "candidates": json.dumps([c.to_dict() for c in candidates], ensure_ascii=False),
                    "extra": json.dumps(extra),
                }
            ],
        )

    def _replace_desk_edits(self, edition_id: int, revision: Revision) -> None:
        values: dict[str, str] = {}
        if revision.extra is not None:
            values["extra"] = json.dumps(dict(revision.extra), ensure_ascii=False)
        if revision.set_aside is not None:
            values["set_aside"] = json.dumps(
                [[p, s.to_dict()] for p, s in revision.set_aside], ensure_ascii=False
            )
        if not values:
            return
        done = self.conn.execute(
            update(edition_ranking).where(edition_ranking.c.edition_id == edition_id).values(values)
        )
        if done.rowcount == 0:  # an edition stored without a build record
            row = {"edition_id": edition_id, "candidates": "[]", "extra": "{}", **values}
            self.conn.execute(insert(edition_ranking).values(**row))

    def _replace_variants(self, edition_id: int, revision: Revision, now: datetime) -> None:
        self.conn.execute(
            delete(edition_variants).where(edition_variants.c.edition_id == edition_id)
        )
        rows = [
            {
                "edition_id": edition_id,
                "key": v.key,
                "stories": json.dumps([s.url for s in v.stories]),
                "subject": v.rendered.subject,
                "preheader": v.rendered.preheader,
                "html": v.rendered.html,
                "text": v.rendered.text,
                "marker": v.rendered.marker,
                "content_hash": v.rendered.content_hash,
                "base_hash": revision.rendered.content_hash,
                "created_at": now,
            }
            for v in revision.variants
        ]
        if rows:
            self.conn.execute(insert(edition_variants), rows)


class Store:
    """All persistent state: a SQLite file (``path``) or a PostgreSQL database (``url``).

    One instance per process. A SQLite file this process may not write (permissions, a
    read-only filesystem) is opened read-only, so reading commands still work and a write
    fails with one line saying why.
    """

    def __init__(self, path: Path | None = None, *, url: str = "", readonly: bool = False) -> None:
        if url:
            self.engine, self.where = url_engine(url, readonly=readonly)
            self.path = Path(self.engine.url.database or "") if self.is_sqlite else None
        elif path is not None:
            readonly = readonly or not writable(path)
            self.path, self.where = path, str(path)
            self.engine = sqlite_engine(path, readonly=readonly)
        else:
            raise ValueError("Store needs a path or a url")
        self.readonly = readonly
        try:
            prepare(self.engine, self.where, readonly=readonly)
        except BaseException:
            self.engine.dispose()  # no connection is left for the garbage collector
            raise

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @classmethod
    def open_readonly(cls, path: Path | None = None, *, url: str = "") -> Store:
        """A store that cannot write: the file if it exists, else an empty in-memory one."""
        return cls(path, url=url, readonly=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic unit of writes; any database error becomes a one-line StoreError."""
        with write_transaction(self.engine, self.where) as conn:
            yield Transaction(conn)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with guarded(self.where), self.engine.connect() as conn:
            yield conn

    # editions -----------------------------------------------------------------------------

    def get_edition(self, edition_id: int) -> Edition:
        with self.reading() as conn:
            row = conn.execute(select(editions).where(editions.c.id == edition_id)).first()
        if row is None:
            raise StateError(f"edition {edition_id} does not exist; `digest status` lists them")
        return edition_of(row._mapping)

    def latest_for_slot(self, slot: str) -> Edition | None:
        query = select(editions).where(editions.c.slot == slot).order_by(editions.c.id.desc())
        with self.reading() as conn:
            row = conn.execute(query.limit(1)).first()
        return edition_of(row._mapping) if row else None

    def editions_in(self, state: EditionState) -> list[int]:
        """Ids of the editions in ``state``, oldest first (`digest worker` sends these)."""
        query = select(editions.c.id).where(editions.c.state == state.value).order_by(editions.c.id)
        with self.reading() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def list_editions(self, *, limit: int | None = 50) -> list[Edition]:
        """The newest editions first; ``limit=None`` for every one."""
        query = select(editions).order_by(editions.c.id.desc()).limit(limit)
        with self.reading() as conn:
            return [edition_of(r._mapping) for r in conn.execute(query)]

    def audit_trail(self, edition_id: int) -> list[AuditEntry]:
        query = select(audit).where(audit.c.edition_id == edition_id).order_by(audit.c.id)
        with self.reading() as conn:
            return [
                AuditEntry(
                    edition_id=r.edition_id,
                    from_state=EditionState(r.from_state),
                    to_state=EditionState(r.to_state),
                    actor=r.actor,
                    via=r.via,
                    at=r.at,
                    revision=r.revision,
                    content_hash=r.content_hash,
                    note=r.note,
                )
                for r in conn.execute(query)
            ]

    def approvers(self, edition: Edition) -> list[str]:
        """Who approved the edition's current revision so far, in order."""
        query = (
            select(approvals.c.actor)
            .where(approvals.c.edition_id == edition.id)
            .where(approvals.c.revision == edition.revision)
            .order_by(approvals.c.at, approvals.c.actor)
        )
        with self.reading() as conn:
            return list(conn.execute(query).scalars())

    def variants(self, edition: Edition) -> list[Variant]:
        """The topic variants rendered with the edition's current revision, by key."""
        query = (
            select(edition_variants)
            .where(edition_variants.c.edition_id == edition.id)
            .order_by(edition_variants.c.key)
        )
        with self.reading() as conn:
            rows = conn.execute(query).all()
        by_url = {s.url: s for s in edition.stories}
        return [
            Variant(
                r.key,
                tuple(by_url[u] for u in json.loads(r.stories) if u in by_url),
                RenderedEdition(r.subject, r.preheader, r.html, r.text, r.marker),
            )
            for r in rows
            if r.base_hash == edition.rendered.content_hash
        ]

    def ranking(self, edition_id: int) -> tuple[list[Candidate], dict[str, Any]] | None:
        """The candidates and template extras recorded when the edition was built."""
        query = select(edition_ranking).where(edition_ranking.c.edition_id == edition_id)
        with self.reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return [Candidate.from_dict(c) for c in json.loads(row.candidates)], json.loads(row.extra)

    # stories already mailed ---------------------------------------------------------------

    def mark_seen(self, urls: Iterable[str], *, edition_id: int, now: datetime) -> None:
        rows = [{"url": u, "edition_id": edition_id, "first_seen": now} for u in urls]
        with self.transaction() as tx:
            insert_ignore(tx.conn, seen_stories, rows)

    def seen_urls(self, urls: Iterable[str]) -> set[str]:
        wanted = list(set(urls))
        found: set[str] = set()
        with self.reading() as conn:
            for i in range(0, len(wanted), CHUNK):
                query = select(seen_stories.c.url).where(
                    seen_stories.c.url.in_(wanted[i : i + CHUNK])
                )
                found.update(conn.execute(query).scalars())
        return found

    # deliveries (the ledger's own queries are in store.ledger) ----------------------------

    def delivery_counts(self, edition_id: int) -> dict[str, int]:
        """Counts by state: kept for a finished edition, counted (by index) for a live one."""
        kept = select(delivery_summaries.c.counts).where(
            delivery_summaries.c.edition_id == edition_id
        )
        query = (
            select(deliveries.c.state, func.count())
            .where(deliveries.c.edition_id == edition_id)
            .group_by(deliveries.c.state)
        )
        with self.reading() as conn:
            summary = conn.execute(kept).scalar()
            if summary is not None:
                return {str(k): int(v) for k, v in json.loads(summary).items()}
            return {state: int(n) for state, n in conn.execute(query)}

    def delivery_rows(self, edition_id: int, *, state: str | None = None) -> list[dict[str, Any]]:
        query = (
            select(deliveries)
            .where(deliveries.c.edition_id == edition_id)
            .order_by(deliveries.c.email)
        )
        if state is not None:
            query = query.where(deliveries.c.state == state)
        with self.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # slots without an edition ------------------------------------------------------------

    def log_slot(self, slot: str, *, status: str, note: str, now: datetime) -> bool:
        """Record a slot's fate once; False if it was recorded before."""
        row = {"slot": slot, "status": status, "note": note, "at": now}
        with self.transaction() as tx:
            return insert_ignore(tx.conn, slot_log, [row]) == 1

    def logged_slots(self, *, limit: int = 20) -> list[tuple[str, str, str]]:
        """(slot, status, note) of slots the scheduler recorded, newest first."""
        query = (
            select(slot_log.c.slot, slot_log.c.status, slot_log.c.note)
            .where(~slot_log.c.slot.startswith("("))
            .order_by(slot_log.c.slot.desc())
            .limit(limit)
        )
        with self.reading() as conn:
            return [(r.slot, r.status, r.note) for r in conn.execute(query)]

    def slot_logged_at(self, slot: str) -> datetime | None:
        with self.reading() as conn:
            value = conn.execute(select(slot_log.c.at).where(slot_log.c.slot == slot)).scalar()
        return value if isinstance(value, datetime) else None

    def slot_status(self, slot: str) -> str | None:
        with self.reading() as conn:
            value = conn.execute(select(slot_log.c.status).where(slot_log.c.slot == slot)).scalar()
        return str(value) if value is not None else None

    # suppression list ---------------------------------------------------------------------

    def suppress(
        self,
        email: str,
        *,
        reason: str,
        now: datetime,
        kind: SubscriberState = SubscriberState.UNSUBSCRIBED,
    ) -> None:
        """Put an address on the suppression list as ``kind``, ``reason`` as evidence."""
        with self.transaction() as tx:
            suppress.record(tx.conn, email, reason=reason, kind=kind, now=now)

    def is_suppressed(self, email: str) -> bool:
        """A lookup by key: cheap however long the list is."""
        query = select(suppressions.c.email).where(suppressions.c.email == email.lower())
        with self.reading() as conn:
            return conn.execute(query).first() is not None

    def suppressed(self) -> dict[str, str]:
        with self.reading() as conn:
            return {r.email: r.reason for r in conn.execute(select(suppressions))}
