"""Each edition's figures for the desk's Editions page: recipients, sent, failed, and the
readers who unsubscribed after it (read queries only)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, exists, func, select

from digest.models import DeliveryState
from digest.store.repository import Store
from digest.store.tables import deliveries, delivery_summaries, suppressions

D = DeliveryState


@dataclass(frozen=True, slots=True)
class Figures:
    recipients: int = 0  # ledger rows but those skipped (suppressed, no story in their topics)
    sent: int = 0
    failed: int = 0
    unsubscribes: int = 0  # unsubscribed after this edition, before the next reached them


def edition_figures(store: Store, ids: Sequence[int]) -> dict[int, Figures]:
    """Figures of the editions ``ids``, in three grouped queries (not one per edition)."""
    if not ids:
        return {}
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    by_state = (
        select(deliveries.c.edition_id, deliveries.c.state, func.count())
        .where(deliveries.c.edition_id.in_(ids))
        .group_by(deliveries.c.edition_id, deliveries.c.state)
    )
    kept = select(delivery_summaries.c.edition_id, delivery_summaries.c.counts).where(
        delivery_summaries.c.edition_id.in_(ids)
    )
    # An unsubscribe counts for the last edition the reader got before it.
    later = deliveries.alias("later")
    unsubscribed = (
        select(deliveries.c.edition_id, func.count())
        .join(suppressions, suppressions.c.email == func.lower(deliveries.c.email))
        .where(deliveries.c.edition_id.in_(ids))
        .where(deliveries.c.state == D.SENT.value)
        .where(suppressions.c.kind == "unsubscribed")
        .where(suppressions.c.at >= deliveries.c.sent_at)
        .where(
            ~exists().where(
                and_(
                    later.c.email == deliveries.c.email,
                    later.c.state == D.SENT.value,
                    later.c.sent_at > deliveries.c.sent_at,
                    later.c.sent_at <= suppressions.c.at,
                )
            )
        )
        .group_by(deliveries.c.edition_id)
    )
    with store.reading() as conn:
        for edition_id, state, n in conn.execute(by_state):
            counts[int(edition_id)][str(state)] = int(n)
        for edition_id, text in conn.execute(kept):  # pruned editions keep only counts
            counts[int(edition_id)] = {str(k): int(v) for k, v in json.loads(text).items()}
        gone = {int(e): int(n) for e, n in conn.execute(unsubscribed)}
    return {
        i: Figures(
            recipients=sum(c.values()) - c.get(D.SKIPPED.value, 0),
            sent=c.get(D.SENT.value, 0),
            failed=c.get(D.FAILED.value, 0),
            unsubscribes=gone.get(i, 0),
        )
        for i, c in counts.items()
    }
