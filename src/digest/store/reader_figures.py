"""The readers' figures for the desk: how many in each state, and who came and went per week.

Each figure is a grouped query or two, never a row per reader in Python: the state of every
reader is its effective one (a suppression's kind overrides the stored state, as everywhere
the list is read), and the weeks are buckets of a CASE over the fixed-format UTC text
timestamps (the same SQL on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, select

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
    """How many readers are in each effective state: the stored states counted from their
    index, then each suppressed reader moved from its stored state to its suppression's
    kind (the suppression list is scanned, each reader looked up by key; a join would scan
    the million readers instead)."""
    stored = select(subscribers.c.state, func.count()).group_by(subscribers.c.state)
    reader_state = (
        select(subscribers.c.state)
        .where(subscribers.c.key == suppressions.c.email)
        .scalar_subquery()
        .label("stored")
    )
    moved = (
        select(suppressions.c.kind, reader_state, func.count())
        .where(exists().where(subscribers.c.key == suppressions.c.email))
        .group_by(suppressions.c.kind, reader_state)
    )
    counts: dict[str, int] = {}
    with store.reading() as conn:
        for state, n in conn.execute(stored):
            counts[str(state)] = counts.get(str(state), 0) + int(n)
        for kind, state, n in conn.execute(moved):
            counts[str(state)] -= int(n)
            counts[str(kind)] = counts.get(str(kind), 0) + int(n)
    return {state: n for state, n in counts.items() if n}


def _bucket(column: Any, starts: Sequence[datetime]) -> Any:
    """The index of the week ``column`` falls in (latest week first in the CASE)."""
    whens = [(column >= start, i) for i, start in reversed(list(enumerate(starts)))]
    return case(*whens, else_=-1).label("week")


def _per_week(
    store: Store,
    column: Any,
    source: Any,
    starts: Sequence[datetime],
    end: datetime,
    *where: Any,
) -> list[int]:
    week = _bucket(column, starts)
    query = (
        select(week, func.count())
        .select_from(source)
        .where(column >= starts[0], column <= end, *where)
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
    left = _per_week(
        store,
        suppressions.c.at,
        suppressions,
        starts,
        now,
        exists().where(subscribers.c.key == suppressions.c.email),
    )
    return [Week(s, j, lv) for s, j, lv in zip(starts, joined, left, strict=True)]
