"""Exact rate limits: never more than N messages in any window of T seconds."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Window:
    """At most ``limit`` messages in any ``seconds``-long window, as the server sees them.

    A permit counts from the moment it is taken until ``seconds`` after it is released (the
    message was accepted). Whatever instant the server logged a message at lies between the
    two, so no window of the server's log can hold more than ``limit`` messages, however
    uneven the delivery times are.
    """

    def __init__(
        self,
        limit: int,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("a window needs limit >= 1 and seconds > 0")
        self.limit = limit
        self.seconds = seconds
        self.clock = clock
        self.sleep = sleep
        self._done: deque[float] = deque()
        self._busy = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self.clock()
                while self._done and self._done[0] <= now - self.seconds:
                    self._done.popleft()
                if self._busy + len(self._done) < self.limit:
                    self._busy += 1
                    return
                wait = (self._done[0] + self.seconds - now) if self._done else 0.01
            self.sleep(max(wait, 0.001))

    def release(self) -> None:
        with self._lock:
            self._busy -= 1
            self._done.append(self.clock())


class Throttle:
    """All configured windows at once (e.g. per second and per hour)."""

    def __init__(self, windows: list[Window]) -> None:
        self.windows = windows

    def acquire(self) -> None:
        # Windows are taken in a fixed order; a slot held while waiting for the next window
        # only delays, it never lets a window overflow.
        for window in self.windows:
            window.acquire()

    def release(self) -> None:
        for window in self.windows:
            window.release()
