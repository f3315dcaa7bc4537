"""The state database (SQLite through SQLAlchemy Core): editions, ledger, audit, seen stories."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from digest.exceptions import StateError, StoreError
from digest.models import Edition, EditionState, RenderedEdition, Story

metadata = MetaData()

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slot", String, nullable=False, index=True),
    Column("state", String, nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("stories", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("warnings", Text, nullable=False, default="[]"),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
)

seen_stories = Table(
    "seen_stories",
    metadata,
    Column("url", String, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id"), nullable=False),
    Column("first_seen", String, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id"), primary_key=True),
    Column("email", String, primary_key=True),
    Column("name", String, nullable=False, default=""),
    Column("timezone", String, nullable=False, default=""),
    Column("topics", String, nullable=False, default="[]"),
    Column("state", String, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_attempt_at", String, nullable=False, default=""),
    # Not before this time (ISO UTC, "" = now): retry backoff, and per-zone send waves.
    Column("next_attempt_at", String, nullable=False, default=""),
    Column("sent_at", String, nullable=False, default=""),
    Column("last_error", Text, nullable=False, default=""),
    Column("message_id", String, nullable=False, default=""),
    Column("updated_at", String, nullable=False),
)

# One row per edition whose recipient list has been frozen into the ledger.
ledger_meta = Table(
    "ledger_meta",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id"), primary_key=True),
    Column("frozen_at", String, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("edition_id", Integer, ForeignKey("editions.id"), nullable=False, index=True),
    Column("from_state", String, nullable=False),
    Column("to_state", String, nullable=False),
    Column("actor", String, nullable=False),
    Column("via", String, nullable=False),
    Column("at", String, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("note", Text, nullable=False, default=""),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email", String, primary_key=True),
    Column("reason", String, nullable=False),
    Column("at", String, nullable=False),
)

# What the scheduler decided about a slot that has no edition to show it (missed, skipped).
slot_log = Table(
    "slot_log",
    metadata,
    Column("slot", String, primary_key=True),
    Column("status", String, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("at", String, nullable=False),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String, primary_key=True),
    Column("owner", String, nullable=False),
    Column("expires_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored state change of an edition."""

    edition_id: int
    from_state: EditionState
    to_state: EditionState
    actor: str
    via: str
    at: datetime
    revision: int
    content_hash: str
    note: str = ""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


class Store:
    """All persistent state. One instance per process; safe for one writer at a time."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                # immutable=1: even a read-only WAL connection would create -wal/-shm files.
                ro = "?mode=ro&immutable=1&uri=true"
                url = f"sqlite:///file:{path}{ro}" if path.exists() else "sqlite://"
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                url = f"sqlite:///{path}"
            self.engine: Engine = create_engine(url)
            if readonly and path.exists():
                event.listen(self.engine, "connect", _sqlite_readonly_pragmas)
            else:
                event.listen(self.engine, "connect", _sqlite_pragmas)
                create_tables(self.engine, metadata)
        except (OSError, SQLAlchemyError) as exc:
            raise StoreError(f"{path}: cannot open the state database: {exc}") from exc

    @classmethod
    def open_readonly(cls, path: Path) -> Store:
        """A store that cannot write: the file if it exists, else an empty in-memory one."""
        return cls(path, readonly=True)

    def close(self) -> None:
        self.engine.dispose()

    # editions -----------------------------------------------------------------------------

    def create_edition(
        self,
        *,
        slot: str,
        stories: Sequence[Story],
        rendered: RenderedEdition,
        now: datetime,
        warnings: Sequence[str] = (),
    ) -> Edition:
        row = {
            "slot": slot,
            "state": EditionState.DRAFT.value,
            "revision": 1,
            "stories": json.dumps([s.to_dict() for s in stories]),
            "subject": rendered.subject,
            "preheader": rendered.preheader,
            "html": rendered.html,
            "text": rendered.text,
            "content_hash": rendered.content_hash,
            "warnings": json.dumps(list(warnings)),
            "created_at": _iso(now),
            "updated_at": _iso(now),
        }
        with self._begin() as conn:
            edition_id = conn.execute(insert(editions).values(**row)).inserted_primary_key[0]
        return self.get_edition(int(edition_id))

    def get_edition(self, edition_id: int) -> Edition:
        with self._connect() as conn:
            row = conn.execute(select(editions).where(editions.c.id == edition_id)).first()
        if row is None:
            raise StateError(f"edition {edition_id} does not exist; `digest status` lists them")
        return _edition(row._mapping)

    def latest_for_slot(self, slot: str) -> Edition | None:
        query = select(editions).where(editions.c.slot == slot).order_by(editions.c.id.desc())
        with self._connect() as conn:
            row = conn.execute(query.limit(1)).first()
        return _edition(row._mapping) if row else None

    def list_editions(self, *, limit: int = 50) -> list[Edition]:
        query = select(editions).order_by(editions.c.id.desc()).limit(limit)
        with self._connect() as conn:
            return [_edition(r._mapping) for r in conn.execute(query)]

    def record_transition(self, entry: AuditEntry) -> None:
        """Move an edition from ``entry.from_state`` to ``to_state`` and write the audit row.

        Compare-and-set: if another process moved the edition first, nothing is written and
        StateError says what the state is now.
        """
        with self._begin() as conn:
            result = conn.execute(
                update(editions)
                .where(editions.c.id == entry.edition_id)
                .where(editions.c.state == entry.from_state.value)
                .values(state=entry.to_state.value, updated_at=_iso(entry.at))
            )
            if result.rowcount != 1:
                current = conn.execute(
                    select(editions.c.state).where(editions.c.id == entry.edition_id)
                ).scalar()
                raise StateError(
                    f"edition {entry.edition_id} is {current}, not {entry.from_state}; "
                    "someone else changed it"
                )
            conn.execute(
                insert(audit).values(
                    edition_id=entry.edition_id,
                    from_state=entry.from_state.value,
                    to_state=entry.to_state.value,
                    actor=entry.actor,
                    via=entry.via,
                    at=_iso(entry.at),
                    revision=entry.revision,
                    content_hash=entry.content_hash,
                    note=entry.note,
                )
            )

    def audit_trail(self, edition_id: int) -> list[AuditEntry]:
        query = select(audit).where(audit.c.edition_id == edition_id).order_by(audit.c.id)
        with self._connect() as conn:
            return [
                AuditEntry(
                    edition_id=r.edition_id,
                    from_state=EditionState(r.from_state),
                    to_state=EditionState(r.to_state),
                    actor=r.actor,
                    via=r.via,
                    at=datetime.fromisoformat(r.at),
                    revision=r.revision,
                    content_hash=r.content_hash,
                    note=r.note,
                )
                for r in conn.execute(query)
            ]

    # stories already mailed ---------------------------------------------------------------

    def mark_seen(self, urls: Iterable[str], *, edition_id: int, now: datetime) -> None:
        rows = [{"url": u, "edition_id": edition_id, "first_seen": _iso(now)} for u in urls]
        if not rows:
            return
        with self._begin() as conn:
            conn.execute(insert(seen_stories).prefix_with("OR IGNORE"), rows)

    def seen_urls(self, urls: Iterable[str]) -> set[str]:
        wanted = list(set(urls))
        found: set[str] = set()
        with self._connect() as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                query = select(seen_stories.c.url).where(seen_stories.c.url.in_(chunk))
                found.update(conn.execute(query).scalars())
        return found

    # delivery ledger ----------------------------------------------------------------------

    def delivery_counts(self, edition_id: int) -> dict[str, int]:
        query = (
            select(deliveries.c.state, func.count())
            .where(deliveries.c.edition_id == edition_id)
            .group_by(deliveries.c.state)
        )
        with self._connect() as conn:
            return {state: int(n) for state, n in conn.execute(query)}

    def delivery_rows(self, edition_id: int) -> list[dict[str, Any]]:
        query = (
            select(deliveries)
            .where(deliveries.c.edition_id == edition_id)
            .order_by(deliveries.c.email)
        )
        with self._connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # slots without an edition ------------------------------------------------------------

    def log_slot(self, slot: str, *, status: str, note: str, now: datetime) -> bool:
        """Record a slot's fate once; False if it was recorded before."""
        with self._begin() as conn:
            result = conn.execute(
                insert(slot_log).prefix_with("OR IGNORE")
                .values(slot=slot, status=status, note=note, at=_iso(now))
            )  # fmt: skip
            return bool(result.rowcount)

    def logged_slots(self, *, limit: int = 20) -> list[tuple[str, str, str]]:
        """(slot, status, note) of slots the scheduler recorded, newest first."""
        query = (
            select(slot_log.c.slot, slot_log.c.status, slot_log.c.note)
            .where(~slot_log.c.slot.startswith("("))
            .order_by(slot_log.c.slot.desc())
            .limit(limit)
        )
        with self._connect() as conn:
            return [(r.slot, r.status, r.note) for r in conn.execute(query)]

    def slot_logged_at(self, slot: str) -> datetime | None:
        with self._connect() as conn:
            value = conn.execute(select(slot_log.c.at).where(slot_log.c.slot == slot)).scalar()
        return datetime.fromisoformat(value) if value else None

    def slot_status(self, slot: str) -> str | None:
        with self._connect() as conn:
            value = conn.execute(select(slot_log.c.status).where(slot_log.c.slot == slot)).scalar()
        return str(value) if value is not None else None

    # suppression list ---------------------------------------------------------------------

    def suppress(self, email: str, *, reason: str, now: datetime) -> None:
        with self._begin() as conn:
            conn.execute(
                insert(suppressions)
                .prefix_with("OR REPLACE")
                .values(email=email.lower(), reason=reason, at=_iso(now))
            )

    def suppressed(self) -> dict[str, str]:
        with self._connect() as conn:
            return {r.email: r.reason for r in conn.execute(select(suppressions))}

    # plumbing -----------------------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            return self.engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _begin(self) -> Any:
        try:
            return self.engine.begin()
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.path}: {exc}") from exc


def create_tables(engine: Engine, tables: MetaData) -> None:
    """create_all that tolerates another process creating the same tables at the same
    moment (a cron tick racing `digest run` on a new database)."""
    for attempt in range(5):
        try:
            tables.create_all(engine)
            return
        except OperationalError as exc:
            if "already exists" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the review page read while a send writes; busy_timeout rides out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # In WAL mode NORMAL is still crash-safe for the database; it only skips an fsync per
    # commit, which is what lets the ledger commit every few messages at full speed.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_readonly_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _edition(row: Any) -> Edition:
    rendered = RenderedEdition(
        subject=row["subject"], preheader=row["preheader"], html=row["html"], text=row["text"]
    )
    return Edition(
        id=row["id"],
        slot=row["slot"],
        state=EditionState(row["state"]),
        revision=row["revision"],
        stories=tuple(Story.from_dict(s) for s in json.loads(row["stories"])),
        rendered=rendered,
        created_at=datetime.fromisoformat(row["created_at"]),
        content_hash=row["content_hash"],
        warnings=tuple(json.loads(row["warnings"])),
    )
