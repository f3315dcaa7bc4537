"""What a backend's answer means for a row: its outcome, and whether the run must stop."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from digest.config.settings import SendSettings
from digest.exceptions import BackendError, InDoubtFailure, PermanentFailure, TemporaryFailure
from digest.models import DeliveryState
from digest.store.ledger import Outcome, Row

D = DeliveryState
IN_DOUBT = "in doubt: "


def answer(
    row: Row,
    failure: BackendError | None,
    options: SendSettings,
    now: datetime,
    provider_id: str = "",
) -> tuple[Outcome, BackendError | None]:
    """The row's outcome, and the failure that stops the run (the backend as a whole);
    ``provider_id`` is the id a provider's HTTP API gave the accepted message."""
    email = row.subscriber.email
    if failure is None:
        return Outcome(email, D.SENT, provider_id=provider_id), None
    if isinstance(failure, PermanentFailure):
        return Outcome(email, D.FAILED, str(failure)), None
    if isinstance(failure, InDoubtFailure):
        # Counted and reported by the worker; resent, same Message-ID, only under resend.
        if options.in_doubt == "skip":
            return Outcome(email, D.UNKNOWN, f"{IN_DOUBT}{failure}"), None
        due = backoff(row, options, now)
        return Outcome(email, D.DEFERRED, f"{IN_DOUBT}{failure}", due), None
    if isinstance(failure, TemporaryFailure):
        due = backoff(row, options, now)
        if failure.retry_after:  # the server said when: not before that
            due = max(due, now + timedelta(seconds=failure.retry_after))
        return Outcome(email, D.DEFERRED, str(failure), due), None
    # The backend as a whole failed (login refused, bad certificate) before this
    # message went out: the row goes back to pending and the run stops.
    return Outcome(email, D.PENDING, str(failure)), failure


def untried(row: Row, options: SendSettings, now: datetime, why: str) -> Outcome:
    """A row taken off the queue untried: deferred when its host is given up on (``why``),
    else back to pending (the run was interrupted)."""
    email = row.subscriber.email
    if not why:
        return Outcome(email, D.PENDING, "interrupted before sending")
    return Outcome(email, D.DEFERRED, f"not tried: {why}", backoff(row, options, now))


def worth_waiting(
    found: dict[str, datetime], *, now: datetime, started: datetime, window: timedelta
) -> datetime | None:
    """Of the next due times by state, the one a run waits for: a pending row due within
    ``window`` from now, or a retry due within ``window`` of the run's start."""
    options = []
    if D.PENDING.value in found and found[D.PENDING.value] <= now + window:
        options.append(found[D.PENDING.value])
    if D.DEFERRED.value in found and found[D.DEFERRED.value] <= started + window:
        options.append(found[D.DEFERRED.value])
    return min(options) if options else None


def backoff(row: Row, options: SendSettings, now: datetime) -> datetime:
    base = options.retry_base_seconds * 2**row.attempts
    delay = min(options.retry_max_seconds, base) * random.uniform(0.5, 1.5)
    return now + timedelta(seconds=delay)
