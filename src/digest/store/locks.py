"""Lease rows: named locks with an owner and an expiry time (queries only; see delivery.lease)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from digest.exceptions import LockedError
from digest.store.engine import guarded
from digest.store.repository import Store
from digest.store.tables import locks


class Locks:
    """The ``locks`` table of one store."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.where = store.where

    def take(
        self,
        name: str,
        owner: str,
        *,
        now: datetime,
        until: datetime,
        stale: Callable[[str, datetime], bool],
    ) -> None:
        """Hold ``name`` until ``until``; LockedError if another owner holds a live lease.

        ``stale(owner, expires_at)`` decides whether the current holder's lease may be taken
        over (it expired, or its process is gone).
        """
        with guarded(self.where), self.engine.begin() as conn:
            row = conn.execute(select(locks).where(locks.c.name == name)).first()
            if row is not None:
                if row.owner != owner and not stale(row.owner, row.expires_at):
                    raise LockedError(
                        f"{name} is held by process {row.owner} (lease until "
                        f"{row.expires_at:%H:%M:%S} UTC); wait for it to finish, or stop it first"
                    )
                conn.execute(delete(locks).where(locks.c.name == name))
            try:
                conn.execute(insert(locks).values(name=name, owner=owner, expires_at=until))
            except IntegrityError as exc:
                raise LockedError(f"{name} was taken by another process just now") from exc

    def extend(self, name: str, owner: str, *, until: datetime) -> bool:
        """Move the expiry of ``owner``'s lease; False if ``owner`` no longer holds it."""
        with guarded(self.where), self.engine.begin() as conn:
            done = conn.execute(
                update(locks)
                .where(locks.c.name == name)
                .where(locks.c.owner == owner)
                .values(expires_at=until)
            )
            return bool(done.rowcount)

    def drop(self, name: str, owner: str) -> None:
        with guarded(self.where), self.engine.begin() as conn:
            conn.execute(delete(locks).where(locks.c.name == name).where(locks.c.owner == owner))
