"""Leases and heartbeats in the store, renewed from a thread independent of the deliveries.

A Lease lets one process coordinate an edition's send (or run a slot, or the scheduler); a
Heartbeat keeps a worker's claims on ledger rows alive.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from digest.exceptions import DigestError, LockedError
from digest.store.ledger import Ledger
from digest.store.locks import Locks
from digest.store.repository import Store
from digest.store.tables import stamp


def _keep(ref: weakref.ref[Lease], done: threading.Event, every: float) -> None:
    while not done.wait(every):
        lease = ref()
        if lease is None:
            return
        try:
            lease.renew()
        except LockedError:
            lease.lost.set()
            return
        except Exception:  # noqa: S112 - a failed renewal is retried; expiry is the limit
            continue
        finally:
            del lease


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

    Once acquired it is renewed every ttl/4 by a thread of its own, however long the holder
    waits (a throttle, a slow server, a long send inside a tick). If a renewal finds the
    lease taken (it lapsed while this process was stopped), ``lost`` is set and the holder
    must stop. On the same host, a holder whose process is gone loses it at once, so a send
    restarted right after a crash does not wait out the lease.
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
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

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
            self.name,
            self.owner,
            now=self._at(now),
            until=self._at(now + self.ttl),
            stale=self._stale,
        )
        self._renewed = now
        if self.clock is time.time and self._thread is None:
            self._done.clear()
            # The thread holds the lease weakly: a lease its holder dropped without release
            # (one taken afresh by every scheduler tick) stops being renewed, and its thread
            # ends, instead of piling up.
            self._thread = threading.Thread(
                target=_keep,
                args=(weakref.ref(self), self._done, self.ttl / 4),
                daemon=True,
                name=self.name,
            )
            self._thread.start()

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
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
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
        if exc is None:
            self.release()
            return
        # Leaving on an error (the database went away for good): a release that fails too
        # must not hide it; the lease runs out by itself (at once for a dead local holder).
        with contextlib.suppress(DigestError):
            self.release()


class Heartbeat:
    """A worker's registration and its heartbeat, from a thread: its claims on ledger rows
    hold while it beats, whatever its deliveries are doing.

    ``valid_for(s)`` tells the sender whether its claims are sure to hold ``s`` more seconds
    (judged by the monotonic clock since the last beat the database took); a worker that
    was stopped longer than ``ttl`` finds its registration gone and must claim afresh.
    """

    def __init__(self, ledger: Ledger, *, ttl: float) -> None:
        self.ledger = ledger
        self.ttl = ttl
        self.host = socket.gethostname()
        self.token = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lost = threading.Event()
        self._valid_until = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def live() -> str:
        """The real time claims are judged at, in the stored form."""
        return stamp(datetime.now(UTC))

    def start(self) -> None:
        # Workers of this host whose process is gone (kill -9): their claims lapse now.
        gone = [t for t, pid in self.ledger.local_workers(self.host) if not _alive(pid)]
        self.ledger.reap(gone)
        began = time.monotonic()
        now = datetime.now(UTC)
        self.ledger.register(
            self.token,
            host=self.host,
            pid=os.getpid(),
            now=now,
            until=datetime.fromtimestamp(now.timestamp() + self.ttl, UTC),
        )
        self._valid_until = began + self.ttl * 0.75  # a margin for clock skew between hosts
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
        self._thread.start()

    def valid_for(self, seconds: float) -> bool:
        return not self.lost.is_set() and time.monotonic() + seconds < self._valid_until

    def _beat(self) -> None:
        while not self._done.wait(self.ttl / 4):
            began = time.monotonic()
            now = datetime.now(UTC)
            until = datetime.fromtimestamp(now.timestamp() + self.ttl, UTC)
            try:
                alive = self.ledger.heartbeat(self.token, now=now, until=until)
            except DigestError:
                continue  # the database is away: the claims run out at _valid_until
            if not alive:
                self.lost.set()
                return
            self._valid_until = began + self.ttl * 0.75  # a margin for clock skew between hosts

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(DigestError):  # else the registration runs out by itself
            self.ledger.retire(self.token, now=datetime.now(UTC))
