"""What the public sign-up form lets through: sliding-window limits per client, address, form.

Every check here looks only at the request (who sends it, from which page, for which
address), never at the list, so a refusal tells nothing about who is subscribed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from digest.config.settings import SignupSettings
from digest.web.auth import network as client_key


class Window:
    """At most ``limit`` events per ``seconds`` for each key; memory stays bounded."""

    def __init__(
        self,
        limit: int,
        seconds: float,
        *,
        keep: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.seconds, self.keep, self.clock = limit, seconds, keep, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> int:
        """Seconds until ``key`` may act again; 0: allowed, and counted."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > self.keep:  # forget quiet keys
                self._seen = {
                    k: v for k, v in self._seen.items() if v and v[-1] > now - self.seconds
                }
            hits = self._seen.setdefault(key, deque())
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.seconds - now))
            hits.append(now)
            return 0


@dataclass(frozen=True, slots=True)
class Limited:
    """Which limit a sign-up hit, and how long to wait."""

    what: str  # "client", "address" or "form"
    retry_after: int


class SignupGuard:
    """The sign-up form's limits (per client, per target address, for the whole form)."""

    def __init__(
        self, settings: SignupSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        seconds = settings.window_minutes * 60.0
        self.client = Window(settings.per_client, seconds, clock=clock)
        self.address = Window(settings.per_address, seconds, clock=clock)
        self.form = Window(settings.per_form, seconds, clock=clock)

    def check(self, *, host: str, email: str) -> Limited | None:
        """None when this sign-up may go ahead (it is then counted), else the limit hit.

        The client is checked first, so one noisy network cannot use up a stranger's
        address allowance or the whole form's.
        """
        if wait := self.client.wait(client_key(host)):
            return Limited("client", wait)
        if wait := self.address.wait(email.strip().casefold()):
            return Limited("address", wait)
        if wait := self.form.wait(""):
            return Limited("form", wait)
        return None
