"""The published editions: every edition that went out (sending or sent), newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from digest.models import EditionState, Story
from digest.store.repository import Store
from digest.store.tables import audit, editions

PUBLISHED = (EditionState.SENDING.value, EditionState.SENT.value)


@dataclass(frozen=True, slots=True)
class Published:
    """One edition as the archive shows it: no recipient, only what every reader got."""

    id: int
    slot: str
    subject: str
    preheader: str
    stories: tuple[Story, ...]
    sent_at: datetime


def _published() -> Select[Any]:
    started = (
        select(audit.c.edition_id, func.min(audit.c.at).label("sent_at"))
        .where(audit.c.to_state == EditionState.SENDING.value)
        .group_by(audit.c.edition_id)
        .subquery()
    )
    return (
        select(
            editions.c.id,
            editions.c.slot,
            editions.c.subject,
            editions.c.preheader,
            editions.c.stories,
            started.c.sent_at,
        )
        .join(started, started.c.edition_id == editions.c.id)
        .where(editions.c.state.in_(PUBLISHED))
    )


def _row(r: Any) -> Published:
    stories = tuple(Story.from_dict(s) for s in json.loads(r.stories))
    # A min() over the column loses its type: the stored text comes back as is.
    at = datetime.fromisoformat(r.sent_at) if isinstance(r.sent_at, str) else r.sent_at
    return Published(r.id, r.slot, r.subject, r.preheader, stories, at)


def published(store: Store, *, limit: int = 50) -> list[Published]:
    """The newest ``limit`` published editions."""
    query = _published().order_by(editions.c.id.desc()).limit(limit)
    with store.reading() as conn:
        return [_row(r) for r in conn.execute(query)]


def published_edition(store: Store, edition_id: int) -> Published | None:
    """One published edition by id; None if there is none, or it never went out."""
    query = _published().where(editions.c.id == edition_id)
    with store.reading() as conn:
        row = conn.execute(query).first()
    return _row(row) if row else None
