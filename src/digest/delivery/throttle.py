"""Which limits a message is under (global rate, window, its domain), taken from the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from digest.config.settings import SendSettings, parse_rate, warmup_cap
from digest.store.limits import Grant, Limit, Permits
from digest.store.repository import Store

DEFAULT = "default"
WARMUP = "warmup:"  # a permit key per day: warmup:2026-12-07
DAY = 86400.0


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
        today: Callable[[], datetime] | None = None,
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
        # The warm-up's day is the engine's (a test's frozen clock moves it), in UTC.
        self.warmup = options.warmup
        self.today = today or (lambda: datetime.now(UTC))
        self.permits = Permits(store) if self.active else None
        if self.permits is not None and self.warmup.start_date:
            self.permits.forget(WARMUP, keep=self._warmup_key())  # the days before

    @property
    def active(self) -> bool:
        return bool(self.shared or self.domains or self.warmup.start_date)

    def _warmup_key(self) -> str:
        return f"{WARMUP}{self.today().astimezone(UTC).date().isoformat()}"

    def _warmup_limit(self) -> Limit | None:
        cap = warmup_cap(self.warmup, self.today().astimezone(UTC).date())
        # Kept two days, so every message of the (UTC) day counts whatever the hour.
        return None if cap is None else Limit(self._warmup_key(), cap, 2 * DAY)

    def limits_for(self, email: str) -> tuple[Limit, ...]:
        domain = email.rpartition("@")[2].lower()
        rate = self.domains.get(domain) or self.domains.get(DEFAULT)
        found = self.shared
        if rate is not None:
            found = (*found, Limit(f"domain:{domain}", rate[0], rate[1]))
        warmup = self._warmup_limit()
        return found if warmup is None else (*found, warmup)

    def is_shared(self, key: str) -> bool:
        return any(lim.key == key for lim in self.shared)

    def acquire(self, wants: Sequence[Want], *, worker: str = "") -> Grant:
        """Permits for as many of ``wants`` as the limits allow now, in order."""
        if self.permits is None or not wants:
            return Grant([w.holder for w in wants], {})
        now = self.clock()
        grant = self.permits.acquire(
            [(w.holder, self.limits_for(w.email)) for w in wants],
            now=now,
            busy_until=now + self.busy_seconds,
            worker=worker,
        )
        if not any(key.startswith(WARMUP) for key in grant.full):
            return grant
        # Today's warm-up cap is used up: nobody goes before the next (UTC) day starts, and
        # the readers refused stay pending until then, never lost.
        day = self.today().astimezone(UTC)
        tomorrow = datetime.combine(day.date() + timedelta(days=1), datetime.min.time(), UTC)
        # One second past midnight: the worker converts this real time back to its clock
        # a few milliseconds later, and the row must land on the new day.
        opens = now + (tomorrow - day).total_seconds() + 1.0
        retry = {h: max(at, opens) for h, at in grant.retry_at.items()}
        return Grant(grant.granted, retry, grant.full)

    def close(self) -> None:
        if self.permits is not None:
            self.permits.close()
