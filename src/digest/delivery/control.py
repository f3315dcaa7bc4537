"""Editors' control of a send, from the desk or the CLI: pause, resume, cancel, progress.

Each action is one transaction with its audit row (``approval.apply``): pause and resume
are sending -> sending entries with a note, cancel is approved -> rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.approval import apply
from digest.exceptions import StateError
from digest.models import DeliveryState, Edition, EditionState
from digest.store import Store
from digest.store.pause import Paused, Pauses

S = EditionState
D = DeliveryState


def pause(store: Store, edition_id: int, *, by: str, via: str, now: datetime) -> Edition:
    """Stop a send: no new message goes out, those in flight finish; StateError if the
    edition is not sending or is paused already."""
    edition = store.get_edition(edition_id)
    if edition.state is not S.SENDING:
        raise StateError(f"edition {edition_id} is {edition.state}: only a sending edition pauses")
    held = Pauses(store).get(edition_id)
    if held is not None:
        raise StateError(f"edition {edition_id} was paused already by {held.by}")
    with store.transaction() as tx:
        Pauses.put(tx.conn, edition_id, by=by, now=now)
        note = "paused: no new message goes out; those in flight finish"
        apply(tx, edition, S.SENDING, actor=by, via=via, now=now, note=note)
    return store.get_edition(edition_id)


def resume(store: Store, edition_id: int, *, by: str, via: str, now: datetime) -> Edition:
    """Lift a pause (the caller then sends the rest); StateError if it is not paused."""
    edition = store.get_edition(edition_id)
    if Pauses(store).get(edition_id) is None:
        raise StateError(f"edition {edition_id} is not paused ({edition.state})")
    with store.transaction() as tx:
        Pauses.lift(tx.conn, edition_id)
        apply(tx, edition, S.SENDING, actor=by, via=via, now=now, note="resumed")
    return store.get_edition(edition_id)


def cancel(store: Store, edition_id: int, *, by: str, via: str, now: datetime) -> Edition:
    """An approved edition that has not started sending is not sent (rejected, audited)."""
    edition = store.get_edition(edition_id)
    if edition.state is S.SENDING:
        raise StateError(
            f"edition {edition_id} is sending already; pause it (`digest pause {edition_id}`)"
        )
    if edition.state is not S.APPROVED:
        raise StateError(f"edition {edition_id} is {edition.state}: only an approved one cancels")
    with store.transaction() as tx:
        note = "cancelled before the first message"
        apply(tx, edition, S.REJECTED, actor=by, via=via, now=now, note=note)
    return store.get_edition(edition_id)


@dataclass(frozen=True, slots=True)
class Progress:
    """A send in figures: the ledger's counts, its pace, and its real start and end."""

    edition_id: int
    state: EditionState
    total: int
    sent: int
    deferred: int
    failed: int
    suppressed: int  # skipped: unsubscribed, suppressed, nothing in their topics, stale
    left: int
    started: datetime | None
    ended: datetime | None
    paused: Paused | None
    per_minute: float  # messages sent per minute since the start
    seconds_left: float | None  # at that pace; None before the first message or when done

    def to_dict(self) -> dict[str, object]:
        return {
            "edition": self.edition_id,
            "state": str(self.state),
            "total": self.total,
            "sent": self.sent,
            "deferred": self.deferred,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "left": self.left,
            "started": self.started.isoformat() if self.started else None,
            "ended": self.ended.isoformat() if self.ended else None,
            "paused": self.paused is not None,
            "paused_by": self.paused.by if self.paused else "",
            "per_minute": round(self.per_minute, 1),
            "seconds_left": None if self.seconds_left is None else round(self.seconds_left),
        }


def progress(store: Store, edition_id: int, *, now: datetime) -> Progress:
    """Where the send of ``edition_id`` stands (all zeros before it starts)."""
    edition = store.get_edition(edition_id)
    counts = store.delivery_counts(edition_id)
    trail = store.audit_trail(edition_id)
    started = next((a.at for a in trail if a.to_state is S.SENDING), None)
    ended = next((a.at for a in trail if a.to_state in (S.SENT, S.FAILED)), None)
    sent, failed = counts.get(D.SENT.value, 0), counts.get(D.FAILED.value, 0)
    suppressed = counts.get(D.SKIPPED.value, 0) + counts.get(D.UNKNOWN.value, 0)
    total = sum(counts.values())
    left = total - sent - failed - suppressed
    elapsed = ((ended or now) - started).total_seconds() if started else 0.0
    rate = 60 * sent / elapsed if elapsed > 0 else 0.0
    eta = 60 * left / rate if rate > 0 and left and ended is None else None
    return Progress(
        edition_id=edition_id,
        state=edition.state,
        total=total,
        sent=sent,
        deferred=counts.get(D.DEFERRED.value, 0),
        failed=failed,
        suppressed=suppressed,
        left=left,
        started=started,
        ended=ended,
        paused=Pauses(store).get(edition_id) if edition.state is S.SENDING else None,
        per_minute=rate,
        seconds_left=eta,
    )
