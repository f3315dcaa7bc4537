"""Per-source state across runs: conditional-GET validators with the last stories, and health."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from digest.gcpause import pausing
from digest.models import Story
from digest.store.engine import guarded
from digest.store.repository import Store
from digest.store.sql import upsert
from digest.store.tables import source_cache, source_health


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
    """The store's source cache and health tables.

    Read-only (``Store.open_readonly``, as `digest preview` uses): reads work and every
    write is skipped, so nothing reaches the state file. Call it from one thread only.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.readonly = store.readonly

    @pausing
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

    def report(
        self, sources: Iterable[tuple[str, str, str]], failure_alert: int
    ) -> list[dict[str, Any]]:
        """Health rows for the (name, url, kind) of each configured source, flagged failing
        after ``failure_alert`` (> 0) failed runs in a row."""
        known = self.health()
        rows = []
        for name, url, kind in sources:
            h = known.get(name) or Health(name=name, url=url)
            alert = failure_alert > 0 and h.consecutive_failures >= failure_alert
            rows.append({**h.to_dict(), "url": url, "kind": kind, "alert": alert})
        return rows

    def record(self, outcomes: Iterable[Outcome], *, now: datetime) -> dict[str, Health]:
        """Apply every outcome; the sources' health afterwards (computed even when read-only)."""
        outcomes = list(outcomes)
        before = self.health(o.name for o in outcomes)
        after = {o.name: _next(before.get(o.name), o, now) for o in outcomes}
        if self.readonly or not outcomes:
            return after
        with self.store.transaction() as tx:
            upsert(tx.conn, source_health, [_row(after[o.name]) for o in outcomes])
            upsert(tx.conn, source_cache, [_cache_row(o, now) for o in outcomes if o.cache])
        return after

    def _read(self, query: Any) -> list[Mapping[str, Any]]:
        with guarded(self.store.where), self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def _next(prev: Health | None, o: Outcome, now: datetime) -> Health:
    prev = prev or Health(name=o.name)
    if o.ok:
        fallbacks = prev.fallbacks if o.not_modified else o.fallbacks
        return Health(
            o.name,
            o.url,
            now,
            prev.last_error,
            prev.last_error_at,
            0,
            o.items,
            o.not_modified,
            fallbacks,
        )
    return Health(
        o.name,
        o.url,
        prev.last_success,
        o.error,
        now,
        prev.consecutive_failures + 1,
        prev.items_seen,
        prev.not_modified,
        prev.fallbacks,
    )


def _health(r: Mapping[str, Any]) -> Health:
    return Health(
        name=r["name"],
        url=r["url"],
        last_success=r["last_success"],
        last_error=r["last_error"],
        last_error_at=r["last_error_at"],
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


def _row(h: Health) -> dict[str, Any]:
    return {
        "name": h.name,
        "url": h.url,
        "last_success": h.last_success,
        "last_error": h.last_error,
        "last_error_at": h.last_error_at,
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
        "fetched_at": now,
    }
