"""When to stop trying a host for the rest of a run: a dead or tarpitting server.

A run that keeps sending to a server that does not answer waits out one timeout per
message; with hundreds of rows that is hours. After ``send.host_failures`` timeouts or
refused connections in a row on one host (any of its connections), the breaker opens: that
host's rows are deferred untried and the run ends. An answer of any kind (a 250, a 451, a
550) shows the host is alive and closes the count again. The run also ends once the host
is still failing after ``send.retry_in_run_seconds`` of real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from digest.backends.base import Backend
from digest.exceptions import BackendError, PermanentFailure, TemporaryFailure

# What says "nobody is answering": the causes of the backend's failure, not its text.
# A connection dropped mid-message or a 421 greeting is an answer of sorts and does not count.
DOWN = (TimeoutError, ConnectionRefusedError)


def host_of(backend: Backend) -> str:
    """The name notices and errors give the host: ``smtp 127.0.0.1:2525``."""
    address = getattr(backend, "address", "")
    return f"{backend.name} {address}" if address else backend.name


def unreachable(failure: BackendError) -> bool:
    """A timeout or a refused connection under the failure (smtplib wraps a timeout in
    SMTPServerDisconnected, so the whole chain is looked at)."""
    if not isinstance(failure, TemporaryFailure):
        return False
    cause: BaseException | None = failure.__cause__
    for _ in range(5):
        if cause is None:
            return False
        if isinstance(cause, DOWN):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class Breaker:
    """Consecutive timeouts per host, shared by the run's connection threads."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.started = clock()
        self.lock = threading.Lock()
        self.failures: dict[str, int] = {}
        self.last: dict[str, str] = {}
        self.opened: dict[str, str] = {}  # host -> why its rows wait for the next run

    def record(self, host: str, failure: BackendError | None) -> None:
        with self.lock:
            if failure is None or isinstance(failure, PermanentFailure):
                self.failures[host] = 0
            elif unreachable(failure):
                count = self.failures[host] = self.failures.get(host, 0) + 1
                self.last[host] = str(failure)
                if self.limit and count >= self.limit and host not in self.opened:
                    self.opened[host] = (
                        f"{host} timed out or refused the connection {count} times in a "
                        f"row (send.host_failures); its deliveries wait for the next run; "
                        f"last error: {failure}"
                    )
            elif failure.__cause__ is None:
                self.failures[host] = 0  # a 4xx reply: the host answered

    def blocked(self, host: str) -> str:
        """Why ``host`` is not tried again in this run ("" while it may be)."""
        with self.lock:
            return self.opened.get(host, "")

    def stop_reason(self) -> str:
        """Why the run ends now: an open breaker, or a host still failing after the run's
        retry window; "" to go on."""
        with self.lock:
            if self.opened:
                return next(iter(self.opened.values()))
            if self.clock() - self.started < self.window:
                return ""
            failing = [h for h, n in self.failures.items() if n]
            if not failing:
                return ""
            host = failing[0]
            return (
                f"{host} was still failing after send.retry_in_run_seconds "
                f"({self.window:g} s); its deliveries wait for the next run; "
                f"last error: {self.last.get(host, '')}"
            )
