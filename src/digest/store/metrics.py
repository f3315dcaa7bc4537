"""What the metrics endpoint reads at scrape time: figures kept in the state database, so
the work of every process (workers, ticks, sends on other hosts) shows, not one process's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from digest.models import DeliveryState
from digest.store.ops import LAST_TICK
from digest.store.repository import Store
from digest.store.tables import deliveries, editions, slot_log, source_health, stamp, suppressions

# The window of the send rate: long enough to smooth a worker's batches.
RATE_WINDOW = timedelta(minutes=5)
QUEUED = (DeliveryState.PENDING.value, DeliveryState.DEFERRED.value)


@dataclass(slots=True)
class Figures:
    """One scrape's figures."""

    deliveries: dict[str, int] = field(default_factory=dict)  # ledger rows by state
    queued: int = 0  # pending or deferred rows
    due: int = 0  # of those, due now
    sent_recently: int = 0  # rows sent within RATE_WINDOW
    suppressions: dict[str, int] = field(default_factory=dict)  # by reason
    editions: dict[str, int] = field(default_factory=dict)  # by state
    source_failures: dict[str, int] = field(default_factory=dict)  # consecutive, by source
    last_tick: datetime | None = None


def read_figures(store: Store, now: datetime) -> Figures:
    """Every figure in one read transaction; counts by GROUP BY, so a scrape costs a few
    index or table scans however many processes wrote them."""
    figures = Figures()
    by_state = select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
    queued = deliveries.c.state.in_(QUEUED)
    due = select(func.count()).where(queued, deliveries.c.next_attempt_at <= stamp(now))
    recent = select(func.count()).where(
        deliveries.c.state == DeliveryState.SENT.value,
        deliveries.c.sent_at >= stamp(now - RATE_WINDOW),
    )
    reasons = select(suppressions.c.reason, func.count()).group_by(suppressions.c.reason)
    states = select(editions.c.state, func.count()).group_by(editions.c.state)
    sources = select(source_health.c.name, source_health.c.consecutive_failures)
    tick = select(slot_log.c.at).where(slot_log.c.slot == LAST_TICK)
    with store.reading() as conn:
        figures.deliveries = {str(s): int(n) for s, n in conn.execute(by_state)}
        figures.queued = sum(figures.deliveries.get(s, 0) for s in QUEUED)
        figures.due = int(conn.execute(due).scalar() or 0)
        figures.sent_recently = int(conn.execute(recent).scalar() or 0)
        figures.suppressions = {str(r): int(n) for r, n in conn.execute(reasons)}
        figures.editions = {str(s): int(n) for s, n in conn.execute(states)}
        figures.source_failures = {str(s): int(n) for s, n in conn.execute(sources)}
        at = conn.execute(tick).scalar()
    figures.last_tick = at if isinstance(at, datetime) else None
    return figures


def ping(store: Store) -> None:
    """A read of a table (not just ``SELECT 1``, which a SQLite file that became unreadable
    still answers); StoreError (one line) when the database cannot be read."""
    with store.reading() as conn:
        conn.execute(select(editions.c.id).limit(1)).scalar()
