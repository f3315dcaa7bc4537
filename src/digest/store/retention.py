"""Retention: per-edition delivery counts kept at the end, old ledgers pruned, space given back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update

from digest.models import EditionState
from digest.store.engine import guarded, write_transaction
from digest.store.repository import Store
from digest.store.sql import upsert
from digest.store.tables import deliveries, delivery_summaries, edition_variants, editions

FINISHED = [
    s.value
    for s in (EditionState.SENT, EditionState.FAILED, EditionState.EXPIRED, EditionState.REJECTED)
]
CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Pruned:
    """What `digest prune` did."""

    editions: list[int]
    rows: int
    bytes_before: int
    bytes_after: int


class Retention:
    """Summaries and pruning for one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def summarise(self, edition_id: int, *, now: datetime) -> dict[str, int]:
        """Count the edition's rows by state once and keep the counts (status reads these)."""
        query = (
            select(deliveries.c.state, func.count())
            .where(deliveries.c.edition_id == edition_id)
            .group_by(deliveries.c.state)
        )
        with write_transaction(self.store.engine, self.store.where) as conn:
            counts = {str(s): int(n) for s, n in conn.execute(query)}
            upsert(
                conn,
                delivery_summaries,
                [
                    {
                        "edition_id": edition_id,
                        "counts": json.dumps(counts, sort_keys=True),
                        "summarised_at": now,
                        "pruned_at": "",
                    }
                ],
            )
        return counts

    def prunable(self, *, before: datetime) -> list[int]:
        """Finished editions last changed before ``before`` whose ledger is still there."""
        has_rows = select(deliveries.c.edition_id).where(deliveries.c.edition_id == editions.c.id)
        has_variants = select(edition_variants.c.edition_id).where(
            edition_variants.c.edition_id == editions.c.id
        )
        query = (
            select(editions.c.id)
            .where(editions.c.state.in_(FINISHED))
            .where(editions.c.updated_at < before)
            .where(has_rows.exists() | has_variants.exists())
            .order_by(editions.c.id)
        )
        with guarded(self.store.where), self.store.engine.connect() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def prune(self, *, before: datetime, now: datetime, dry_run: bool = False) -> Pruned:
        """Summarise and delete the ledger rows and variants of old finished editions, in
        short transactions, then give the space back (SQLite: incremental vacuum)."""
        size = self.size()
        ids = self.prunable(before=before)
        if dry_run:
            return Pruned(ids, 0, size, size)
        rows = 0
        for edition_id in ids:
            summary = select(delivery_summaries.c.pruned_at).where(
                delivery_summaries.c.edition_id == edition_id
            )
            with guarded(self.store.where), self.store.engine.connect() as conn:
                kept = conn.execute(summary).first()
            if kept is None:
                self.summarise(edition_id, now=now)
            rows += self._delete_rows(edition_id)
            with write_transaction(self.store.engine, self.store.where) as conn:
                conn.execute(
                    delete(edition_variants).where(edition_variants.c.edition_id == edition_id)
                )
                conn.execute(
                    update(delivery_summaries)
                    .where(delivery_summaries.c.edition_id == edition_id)
                    .values(pruned_at=now)
                )
        if ids:
            self.vacuum()
        return Pruned(ids, rows, size, self.size())

    def _delete_rows(self, edition_id: int) -> int:
        total = 0
        while True:
            batch = (
                select(deliveries.c.email)
                .where(deliveries.c.edition_id == edition_id)
                .limit(CHUNK)
                .scalar_subquery()
            )
            with write_transaction(self.store.engine, self.store.where) as conn:
                done = conn.execute(
                    delete(deliveries)
                    .where(deliveries.c.edition_id == edition_id)
                    .where(deliveries.c.email.in_(batch))
                ).rowcount
            total += int(done)
            if done < CHUNK:
                return total

    def vacuum(self) -> None:
        """Give freed pages back to the filesystem (SQLite) or to the table (PostgreSQL)."""
        engine = self.store.engine
        with guarded(self.store.where), engine.connect() as raw:
            conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name != "sqlite":
                conn.exec_driver_sql("VACUUM (ANALYZE) deliveries")
                return
            if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != 2:
                # A file made before 0.3: switch it to incremental once (a full rewrite).
                conn.exec_driver_sql("PRAGMA auto_vacuum=INCREMENTAL")
                conn.exec_driver_sql("VACUUM")
            else:
                # The pragma frees one page per step; executescript steps it to the end.
                conn.connection.driver_connection.executescript("PRAGMA incremental_vacuum;")  # type: ignore[union-attr]
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def size(self) -> int:
        """Bytes the state takes: the SQLite file and its WAL, or the PostgreSQL database."""
        engine = self.store.engine
        if engine.dialect.name == "sqlite":
            path = self.store.path
            if path is None or not path.exists():
                return 0
            wal = path.with_name(path.name + "-wal")
            return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        with guarded(self.store.where), engine.connect() as conn:
            return int(
                conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0
            )
