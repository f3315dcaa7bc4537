"""Retries that would go out later than their wave's maximum lateness: ended, not sent.

``Ledger.skip_stale`` skips rows never tried; this ends the deferred ones. A row is first
tried at its wave's time or later, so a first attempt before ``now - max_lateness`` means
its wave is past the lateness too: it ends ``skipped`` (the closest final state; there is
no ``expired`` delivery state and no schema change for one) with an error that says
``expired`` and keeps the last failure.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import literal, update

from digest.models import DeliveryState
from digest.store.ledger import Ledger
from digest.store.tables import deliveries, stamp

D = DeliveryState
EXPIRED = "expired: its wave passed schedule.max_lateness_minutes; not retried late; last error: "


def expire_late(ledger: Ledger, edition_id: int, *, tried_before: datetime, now: datetime) -> int:
    """Deferred rows of ``edition_id`` first tried before ``tried_before``: skipped."""
    return ledger._update(  # the ledger's own write transaction (and its retry on a lock)
        update(deliveries)
        .where(deliveries.c.edition_id == edition_id)
        .where(deliveries.c.state == D.DEFERRED.value)
        .where(deliveries.c.first_attempt_at != "")
        .where(deliveries.c.first_attempt_at < stamp(tried_before))
        .values(
            state=D.SKIPPED.value,
            updated_at=now,
            claim="",
            last_error=literal(EXPIRED).concat(deliveries.c.last_error),
        )
    )
