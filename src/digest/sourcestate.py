"""Per-source state across runs: conditional-GET validators with the last stories, and health."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    insert,
    inspect,
    select,
    update,
)  # fmt: skip
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from digest.config import Settings
from digest.exceptions import StoreError
from digest.models import Story
from digest.store import Store, create_tables

metadata = MetaData()

source_cache = Table(
    "source_cache",
    metadata,
    Column("name", String, primary_key=True),
    # What the stories were parsed with (url, kind, options...): any change drops the cache.
    Column("fingerprint", Text, nullable=False),
    Column("etag", Text, nullable=False, default=""),
    Column("last_modified", Text, nullable=False, default=""),
    Column("stories", Text, nullable=False),
    Column("fetched_at", String, nullable=False),
)

source_health = Table(
    "source_health",
    metadata,
    Column("name", String, primary_key=True),
    Column("url", Text, nullable=False),
    Column("last_success", String, nullable=False, default=""),
    Column("last_error", Text, nullable=False, default=""),
    Column("last_error_at", String, nullable=False, default=""),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("items_seen", Integer, nullable=False, default=0),
    Column("not_modified", Integer, nullable=False, default=0),
    # JSON list of what the last parse had to guess (encoding, teaser from body, no date).
    Column("fallbacks", Text, nullable=False, default="[]"),
)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """The validators of a source's last full response and the stories parsed from it."""

    fingerprint: str
    etag: str
    last_modified: str
    stories: tuple[Story, ...]


@dataclass(frozen=True, slots=True)
class Health:
    """How one source has been doing; times are aware UTC, None when it never happened."""

    name: str
    url: str = ""
    last_success: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    items_seen: int = 0
    not_modified: bool = False  # the last success was a 304 answered from the cache
    fallbacks: tuple[str, ...] = ()  # what the last parse had to guess, for the editor

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "consecutive_failures": self.consecutive_failures,
            "items_seen": self.items_seen,
            "not_modified": self.not_modified,
            "fallbacks": list(self.fallbacks),
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one collection run learnt about one source, to be recorded in one go."""

    name: str
    url: str
    ok: bool
    error: str = ""
    items: int = 0
    cache: CacheEntry | None = None  # a new cache entry (after a 200), else None
    not_modified: bool = False
    fallbacks: tuple[str, ...] = ()  # from this run's parse (a 304 keeps the last ones)


class SourceState:
    """Cache and health tables on the store's engine (own MetaData).

    Read-only (``Store.open_readonly``, as `digest preview` uses): reads work and every
    write is skipped, so nothing reaches the state file. Call it from one thread only.
    """

    def __init__(self, store: Store, *, readonly: bool | None = None) -> None:
        self.store = store
        self.readonly = _is_readonly(store) if readonly is None else readonly
        if not self.readonly:
            try:
                create_tables(store.engine, metadata)
                _add_missing_columns(store)
            except SQLAlchemyError as exc:
                raise StoreError(f"{store.path}: cannot create the source tables: {exc}") from exc

    def cache(self, names: Iterable[str]) -> dict[str, CacheEntry]:
        wanted = list(names)
        rows = self._read(select(source_cache).where(source_cache.c.name.in_(wanted)))
        out: dict[str, CacheEntry] = {}
        for r in rows:
            try:
                stories = tuple(Story.from_dict(d) for d in json.loads(r["stories"]))
            except (ValueError, KeyError, TypeError):
                continue  # a damaged entry only costs one full fetch
            out[r["name"]] = CacheEntry(r["fingerprint"], r["etag"], r["last_modified"], stories)
        return out

    def health(self, names: Iterable[str] | None = None) -> dict[str, Health]:
        query = select(source_health)
        if names is not None:
            query = query.where(source_health.c.name.in_(list(names)))
        return {r["name"]: _health(r) for r in self._read(query)}

    def record(self, outcomes: Iterable[Outcome], *, now: datetime) -> dict[str, Health]:
        """Apply every outcome; the sources' health afterwards (computed even when read-only)."""
        outcomes = list(outcomes)
        before = self.health(o.name for o in outcomes)
        after = {o.name: _next(before.get(o.name), o, now) for o in outcomes}
        if self.readonly or not outcomes:
            return after
        try:
            with self.store.engine.begin() as conn:
                _upsert(conn, source_health, [_row(after[o.name]) for o in outcomes])
                _upsert(conn, source_cache, [_cache_row(o, now) for o in outcomes if o.cache])
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.store.path}: cannot record source health: {exc}") from exc
        return after

    def _read(self, query: Any) -> list[Mapping[str, Any]]:
        try:
            with self.store.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(query)]
        except SQLAlchemyError:
            if self.readonly:
                return []  # an older or absent state file has no such table: nothing known
            raise


def _add_missing_columns(store: Store) -> None:
    """Add columns newer than a state file's tables (no migration tool owns these yet)."""
    with store.engine.begin() as conn:
        have = {c["name"] for c in inspect(conn).get_columns("source_health")}
        if have and "fallbacks" not in have:
            conn.exec_driver_sql(
                "ALTER TABLE source_health ADD COLUMN fallbacks TEXT NOT NULL DEFAULT '[]'"
            )


def _is_readonly(store: Store) -> bool:
    url = store.engine.url
    return url.query.get("mode") == "ro" or url.database in (None, "", ":memory:")


def _next(prev: Health | None, o: Outcome, now: datetime) -> Health:
    prev = prev or Health(name=o.name)
    if o.ok:
        fallbacks = prev.fallbacks if o.not_modified else o.fallbacks
        return Health(o.name, o.url, now, prev.last_error, prev.last_error_at, 0, o.items,
                      o.not_modified, fallbacks)  # fmt: skip
    return Health(o.name, o.url, prev.last_success, o.error, now,
                  prev.consecutive_failures + 1, prev.items_seen, prev.not_modified,
                  prev.fallbacks)  # fmt: skip


def _health(r: Mapping[str, Any]) -> Health:
    return Health(
        name=r["name"],
        url=r["url"],
        last_success=_time(r["last_success"]),
        last_error=r["last_error"],
        last_error_at=_time(r["last_error_at"]),
        consecutive_failures=int(r["consecutive_failures"]),
        items_seen=int(r["items_seen"]),
        not_modified=bool(r["not_modified"]),
        fallbacks=_fallbacks(r.get("fallbacks")),
    )


def _fallbacks(value: Any) -> tuple[str, ...]:
    try:
        data = json.loads(value) if value else []
    except ValueError:
        return ()
    return tuple(str(x) for x in data) if isinstance(data, list) else ()


def _time(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _row(h: Health) -> dict[str, Any]:
    return {
        "name": h.name,
        "url": h.url,
        "last_success": _iso(h.last_success),
        "last_error": h.last_error,
        "last_error_at": _iso(h.last_error_at),
        "consecutive_failures": h.consecutive_failures,
        "items_seen": h.items_seen,
        "not_modified": int(h.not_modified),
        "fallbacks": json.dumps(list(h.fallbacks), ensure_ascii=False),
    }


def _cache_row(o: Outcome, now: datetime) -> dict[str, Any]:
    assert o.cache is not None  # callers pass only outcomes that carry a cache entry
    return {
        "name": o.name,
        "fingerprint": o.cache.fingerprint,
        "etag": o.cache.etag,
        "last_modified": o.cache.last_modified,
        "stories": json.dumps([s.to_dict() for s in o.cache.stories], ensure_ascii=False),
        "fetched_at": _iso(now),
    }


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert or update ``rows`` by name, in two statements (executemany), not per row."""
    if not rows:
        return
    names = [r["name"] for r in rows]
    have = set(conn.execute(select(table.c.name).where(table.c.name.in_(names))).scalars())
    old = [{**r, "key": r["name"]} for r in rows if r["name"] in have]
    if old:
        conn.execute(update(table).where(table.c.name == bindparam("key")), old)
    new = [r for r in rows if r["name"] not in have]
    if new:
        conn.execute(insert(table), new)


def health_report(settings: Settings) -> list[dict[str, Any]]:
    """Each configured source's health as a dict, read without writing the state file."""
    store = Store.open_readonly(settings.state_path)
    try:
        known = SourceState(store, readonly=True).health()
    finally:
        store.close()
    rows = []
    for s in settings.sources:
        h = known.get(s.name) or Health(name=s.name, url=s.url)
        alert = settings.fetch.failure_alert
        rows.append(
            {**h.to_dict(), "url": s.url, "kind": s.kind,
             "alert": alert > 0 and h.consecutive_failures >= alert}
        )  # fmt: skip
    return rows
