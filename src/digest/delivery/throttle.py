"""Which limits a message is under (global rate, window, its domain), taken from the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from digest.config.settings import SendSettings, parse_rate
from digest.store.limits import Grant, Limit, Permits
from digest.store.repository import Store

DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Want:
    """One message that needs permits: its holder id (edition:address:attempt) and address."""

    holder: str
    email: str


class Limits:
    """``send.rate_per_second``, ``send.window_messages`` and ``send.domain_limits``, exact
    across every worker, run, edition and host because the permits live in the database.

    Keys are global (not per edition): two editions sending at once share one window.
    """

    def __init__(
        self,
        store: Store,
        options: SendSettings,
        *,
        busy_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.busy_seconds = busy_seconds
        shared: list[Limit] = []
        if options.rate_per_second:
            shared.append(Limit("rate", options.rate_per_second, 1.0))
        if options.window_messages:
            shared.append(Limit("window", options.window_messages, options.window_seconds))
        self.shared = tuple(shared)
        self.domains = {d: parse_rate(r) for d, r in options.domain_limits.items()}
        self.permits = Permits(store) if self.active else None

    @property
    def active(self) -> bool:
        return bool(self.shared or self.domains)

    def limits_for(self, email: str) -> tuple[Limit, ...]:
        domain = email.rpartition("@")[2].lower()
        rate = self.domains.get(domain) or self.domains.get(DEFAULT)
        if rate is None:
            return self.shared
        return (*self.shared, Limit(f"domain:{domain}", rate[0], rate[1]))

    def is_shared(self, key: str) -> bool:
        return any(lim.key == key for lim in self.shared)

    def acquire(self, wants: Sequence[Want], *, worker: str = "") -> Grant:
        """Permits for as many of ``wants`` as the limits allow now, in order."""
        if self.permits is None or not wants:
            return Grant([w.holder for w in wants], {})
        now = self.clock()
        return self.permits.acquire(
            [(w.holder, self.limits_for(w.email)) for w in wants],
            now=now,
            busy_until=now + self.busy_seconds,
            worker=worker,
        )

    def close(self) -> None:
        if self.permits is not None:
            self.permits.close()
