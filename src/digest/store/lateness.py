"""Deferred rows that must not be retried any more: past their wave's maximum lateness
(ended ``skipped``, not sent late) or past the retry deadline (ended ``failed``).

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


RETRY_DEADLINE = "expired: retry deadline passed; last error: "


def expire_late(ledger: Ledger, edition_id: int, *, tried_before: datetime, now: datetime) -> int:
    """Deferred rows of ``edition_id`` first tried before ``tried_before``: skipped."""
    return end_deferred(ledger, edition_id, tried_before, now, D.SKIPPED, EXPIRED)


def expire_retries(
    ledger: Ledger, edition_id: int, *, first_attempt_before: datetime, now: datetime
) -> int:
    """Deferred rows that kept failing past the retry deadline become failed (expired)."""
    return end_deferred(ledger, edition_id, first_attempt_before, now, D.FAILED, RETRY_DEADLINE)


def end_deferred(
    ledger: Ledger,
    edition_id: int,
    tried_before: datetime,
    now: datetime,
    state: DeliveryState,
    why: str,
) -> int:
    """Deferred rows first tried before ``tried_before`` end in ``state``, ``why`` put
    before their last error; in the ledger's own write transaction (and its lock retry)."""
    return ledger._update(
        update(deliveries)
        .where(deliveries.c.edition_id == edition_id)
        .where(deliveries.c.state == D.DEFERRED.value)
        .where(deliveries.c.first_attempt_at != "")
        .where(deliveries.c.first_attempt_at < stamp(tried_before))
        .values(
            state=state.value,
            updated_at=now,
            claim="",
            last_error=literal(why).concat(deliveries.c.last_error),
        )
    )
