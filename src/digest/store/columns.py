"""The stored forms every table shares: ONE MetaData, one timestamp type, topic lists.

Kept apart from the table definitions (``store.tables``, ``store.webhook_tables``) so each
of those stays small and none imports another.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Dialect, MetaData, String
from sqlalchemy.types import TypeDecorator

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"
"""The one stored form of a time: UTC, microseconds, so strings compare like the times."""


@functools.lru_cache(maxsize=1024)
def topics_text(topics: tuple[str, ...]) -> str:
    """The one stored form of a topic selection: a JSON list (cached: readers share a few)."""
    return json.dumps(list(topics), ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def topics_of(text: str) -> tuple[str, ...]:
    """The topic selection a ``topics_text`` value holds."""
    return tuple(json.loads(text))


def stamp(value: datetime) -> str:
    """``value`` in the stored form (aware times only)."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


class Timestamp(TypeDecorator[datetime]):
    """An aware datetime stored as fixed-format UTC text; ``""`` (never/none) reads as None.

    Text rather than a native type so SQLite and PostgreSQL hold the same values and the
    empty string keeps meaning "not yet" (due now, never sent) in comparisons.
    """

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value  # "" and already-stamped values compare as stored
        return stamp(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return datetime.fromisoformat(value) if value else None


metadata = MetaData()
