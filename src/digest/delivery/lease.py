"""A lease lock in the store, so only one process sends an edition (or runs a slot) at a time."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from digest.exceptions import LockedError
from digest.store.locks import Locks
from digest.store.repository import Store


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
        owner: str | None = None,
    ) -> None:
        self.locks = Locks(store)
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._renewed = 0.0

    def _at(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    def _stale(self, holder: str, expires_at: datetime) -> bool:
        host, _, pid = holder.rpartition(":")
        if expires_at < self._at(self.clock()):
            return True
        return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))

    def acquire(self) -> None:
        now = self.clock()
        self.locks.take(
            self.name, self.owner, now=self._at(now), until=self._at(now + self.ttl),
            stale=self._stale,
        )  # fmt: skip
        self._renewed = now

    def renew(self) -> None:
        """Extend the lease; cheap to call often (writes at most every ttl/4).

        LockedError if the lease was lost meanwhile (it lapsed and another process took it):
        the holder must stop at once rather than go on as if it still held it.
        """
        now = self.clock()
        if now - self._renewed < self.ttl / 4:
            return
        if not self.locks.extend(self.name, self.owner, until=self._at(now + self.ttl)):
            raise LockedError(f"{self.name}: this process lost its lease; stopping")
        self._renewed = now

    def release(self) -> None:
        self.locks.drop(self.name, self.owner)

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
