"""Who receives the next edition, written once: the active readers, then the paused ones
whose pause is over. The freeze's raw SQL, the counts and the streamed list all read it here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, text

from digest.models import SubscriberState
from digest.store.tables import stamp, subscribers

S = SubscriberState

# The stored states that may receive, in the order the list is streamed and frozen.
STATES: tuple[SubscriberState, ...] = (S.ACTIVE, S.PAUSED)
# What a paused reader also needs: a pause that is over (":now" is the moment of asking).
_PAUSE_OVER = "paused_until <> '' AND paused_until <= :now"


def needs_pause_over(state: SubscriberState) -> bool:
    return state is S.PAUSED


def pause_over_sql() -> str:
    """The pause condition for plain DBAPI statements, with one "?" for now."""
    return _PAUSE_OVER.replace(":now", "?")


def condition(state: SubscriberState, now: datetime) -> Any:
    """The rule for readers stored in ``state`` as a SQLAlchemy clause."""
    clause = subscribers.c.state == state.value
    if needs_pause_over(state):
        return and_(clause, text(_PAUSE_OVER).bindparams(now=stamp(now)))
    return clause


def clause(now: datetime) -> Any:
    """Every reader of the next edition as of ``now``, as a SQLAlchemy clause."""
    return or_(*(condition(state, now) for state in STATES))
