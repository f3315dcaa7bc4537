"""Rows of the readers' list as Python sees them, and the one way to write it.

``Record`` is a stored subscriber with its effective state (a suppression's kind overrides
the stored state); ``writing`` is the write transaction every change of the list uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, select

from digest.models import Subscriber, SubscriberState
from digest.store.engine import guarded
from digest.store.repository import Store
from digest.store.tables import subscribers, suppressions, topics_of

S = SubscriberState
ERASED_SALT = "digest.erased.v1:"


@contextmanager
def writing(store: Store, *, dry_run: bool = False) -> Iterator[Connection]:
    """One write transaction that takes SQLite's write lock at BEGIN (IMMEDIATE).

    A deferred transaction that reads first fails at once with "database is locked" when
    another process (a send, a tick, the web server) committed since its read, busy timeout
    or not; one that waits for the lock up front cannot. ``dry_run`` rolls back at the end.
    Any error rolls back, so nothing is half-written.
    """
    with guarded(store.where), store.engine.connect() as raw:
        if raw.dialect.name != "sqlite":
            transaction = raw.begin()
            try:
                yield raw
            except BaseException:
                transaction.rollback()
                raise
            transaction.rollback() if dry_run else transaction.commit()
            return
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("ROLLBACK" if dry_run else "COMMIT")


def address_key(email: str) -> str:
    """The lookup key of an address: trimmed and lower-cased."""
    return email.strip().lower()


def address_hash(email: str) -> str:
    """What is kept of an erased address: a salted SHA-256, enough to recognise it again."""
    return hashlib.sha256((ERASED_SALT + address_key(email)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Record:
    """One stored subscriber; ``state`` already reflects the suppression list."""

    id: int
    email: str
    name: str
    timezone: str
    topics: tuple[str, ...]
    state: SubscriberState
    paused_until: datetime | None
    source: str
    since: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        return address_key(self.email)

    def subscriber(self) -> Subscriber:
        return Subscriber(self.email, self.name, self.timezone, self.topics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "timezone": self.timezone,
            "topics": list(self.topics),
            "state": str(self.state),
            "paused_until": iso(self.paused_until),
            "source": self.source,
            "since": iso(self.since),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Pending:
    """A sign-up waiting for its confirmation: what the reader asked for, and when."""

    nonce: str
    subscriber_id: int
    name: str
    topics: tuple[str, ...]
    ip: str
    text: str
    created_at: datetime


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


_COLUMNS = (
    subscribers.c.id,
    subscribers.c.email,
    subscribers.c.name,
    subscribers.c.timezone,
    subscribers.c.topics,
    subscribers.c.paused_until,
    subscribers.c.source,
    subscribers.c.since,
    subscribers.c.created_at,
    subscribers.c.updated_at,
)


def with_state() -> Any:
    """Subscribers with their effective state: a suppression overrides the stored one."""
    state = case(
        (suppressions.c.email.is_not(None), suppressions.c.kind), else_=subscribers.c.state
    ).label("state")
    joined = subscribers.outerjoin(suppressions, suppressions.c.email == subscribers.c.key)
    return select(*_COLUMNS, state).select_from(joined)


def to_record(row: Any) -> Record:
    return Record(
        id=row.id,
        email=row.email,
        name=row.name,
        timezone=row.timezone,
        topics=topics_of(row.topics),
        state=S(row.state),
        paused_until=row.paused_until,
        source=row.source,
        since=row.since,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
