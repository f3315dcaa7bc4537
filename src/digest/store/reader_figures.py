"""The readers' figures for the desk: how many in each state, and who came and went per week.

Each figure is one grouped query, so the page costs the same few table scans at a million
readers as at ten: the state of every reader is its effective one (a suppression's kind
overrides the stored state, as everywhere the list is read), and the weeks are buckets of a
CASE over the fixed-format UTC text timestamps (the same SQL on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from digest.store.repository import Store
from digest.store.tables import subscribers, suppressions

WEEK = timedelta(weeks=1)


@dataclass(frozen=True, slots=True)
class Week:
    """One week of the list's growth: readers confirmed in it, and readers who left."""

    start: datetime
    joined: int
    left: int


def state_counts(store: Store) -> dict[str, int]:
    """How many readers are in each effective state, in one grouped query."""
    state = case(
        (suppressions.c.email.is_not(None), suppressions.c.kind), else_=subscribers.c.state
    ).label("state")
    joined = subscribers.outerjoin(suppressions, suppressions.c.email == subscribers.c.key)
    query = select(state, func.count()).select_from(joined).group_by(state)
    with store.reading() as conn:
        return {str(s): int(n) for s, n in conn.execute(query)}


def _bucket(column: Any, starts: Sequence[datetime]) -> Any:
    """The index of the week ``column`` falls in (latest week first in the CASE)."""
    whens = [(column >= start, i) for i, start in reversed(list(enumerate(starts)))]
    return case(*whens, else_=-1).label("week")


def _per_week(
    store: Store, column: Any, source: Any, starts: Sequence[datetime], end: datetime
) -> list[int]:
    week = _bucket(column, starts)
    query = (
        select(week, func.count())
        .select_from(source)
        .where(column >= starts[0], column <= end)
        .group_by(week)
    )
    counts = [0] * len(starts)
    with store.reading() as conn:
        for index, n in conn.execute(query):
            if 0 <= index < len(starts):
                counts[index] = int(n)
    return counts


def growth(store: Store, *, now: datetime, weeks: int = 12) -> list[Week]:
    """The last ``weeks`` weeks up to ``now``, oldest first: confirmations (a reader's
    ``since``) against leavers (unsubscribed, bounced or complained: the suppression list)."""
    starts = [now - WEEK * (weeks - i) for i in range(weeks)]
    joined = _per_week(store, subscribers.c.since, subscribers, starts, now)
    # Readers who left: an address suppressed without ever being a reader is not one.
    readers = suppressions.join(subscribers, subscribers.c.key == suppressions.c.email)
    left = _per_week(store, suppressions.c.at, readers, starts, now)
    return [Week(s, j, lv) for s, j, lv in zip(starts, joined, left, strict=True)]
