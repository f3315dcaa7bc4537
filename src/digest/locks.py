"""A lease lock in the store, so only one process sends an edition at a time."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from digest.exceptions import LockedError
from digest.store import Store, locks


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """Held while renewed; a holder that dies stops renewing and loses it after ``ttl``.

    On the same host, a holder whose process is gone loses it at once, so a send restarted
    right after a crash does not wait out the lease.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = store.engine
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._renewed = 0.0

    def acquire(self) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(locks).where(locks.c.name == self.name)).first()
            if row is not None:
                host, _, pid = row.owner.rpartition(":")
                stale = row.expires_at < now or (
                    host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))
                )
                if not stale and row.owner != self.owner:
                    raise LockedError(
                        f"{self.name} is held by process {row.owner} (lease until "
                        f"{time.strftime('%H:%M:%S', time.localtime(row.expires_at))}); "
                        "wait for it to finish, or stop it first"
                    )
                conn.execute(delete(locks).where(locks.c.name == self.name))
            try:
                conn.execute(
                    insert(locks).values(
                        name=self.name, owner=self.owner, expires_at=now + self.ttl
                    )
                )
            except IntegrityError as exc:
                raise LockedError(f"{self.name} was taken by another process just now") from exc
        self._renewed = now

    def renew(self) -> None:
        """Extend the lease; cheap to call often (writes at most every ttl/4)."""
        now = self.clock()
        if now - self._renewed < self.ttl / 4:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(locks)
                .where(locks.c.name == self.name)
                .where(locks.c.owner == self.owner)
                .values(expires_at=now + self.ttl)
            )
        self._renewed = now

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(locks).where(locks.c.name == self.name).where(locks.c.owner == self.owner)
            )

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
