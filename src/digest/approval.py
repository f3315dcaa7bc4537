"""The edition lifecycle: one table of allowed transitions and the one function applying it.

``transition`` is pure: it checks a move against TRANSITIONS and returns the audit entry.
``apply`` is the only code that changes an edition's state (or makes a new revision): it
writes that entry through the store's compare-and-set, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.exceptions import DigestError, StateError
from digest.models import AuditEntry, Edition, EditionState
from digest.store import Revision, Store, Transaction

S = EditionState

# Every allowed move. Anything else is refused with a message that states the current state.
TRANSITIONS: dict[EditionState, frozenset[EditionState]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL}),
    # pending -> pending records a new revision (an edit) or one of several approvals needed.
    S.PENDING_APPROVAL: frozenset({S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.EXPIRED}),
    S.APPROVED: frozenset({S.SENDING, S.EXPIRED}),
    S.REJECTED: frozenset(),
    # sending -> sending is a resume after a crash; failed -> sending is a retry.
    S.SENDING: frozenset({S.SENT, S.FAILED, S.SENDING}),
    S.FAILED: frozenset({S.SENDING}),
    S.SENT: frozenset(),
    S.EXPIRED: frozenset(),
}

# What each state means to someone trying to send, for the refusal message.
_SEND_HINTS: dict[EditionState, str] = {
    S.DRAFT: "it has not been submitted for approval",
    S.PENDING_APPROVAL: "it awaits approval; run `digest approve {id} --by NAME` first",
    S.REJECTED: "it was rejected; build a new edition",
    S.SENT: "it has been sent already",
    S.EXPIRED: "it expired without being sent",
}


def transition(
    edition: Edition,
    to: EditionState,
    *,
    actor: str,
    via: str,
    now: datetime,
    note: str = "",
) -> AuditEntry:
    """The audit entry for moving ``edition`` to ``to``; StateError if the move is not allowed."""
    if to not in TRANSITIONS[edition.state]:
        if to is S.SENDING:
            hint = _SEND_HINTS.get(edition.state, "").format(id=edition.id)
            raise StateError(f"edition {edition.id} is {edition.state}: cannot send, {hint}")
        raise StateError(
            f"edition {edition.id} is {edition.state}; it cannot become {to} "
            f"(allowed: {', '.join(sorted(TRANSITIONS[edition.state])) or 'none, it is final'})"
        )
    if not actor.strip():
        raise StateError("a transition needs the name of who makes it (--by NAME)")
    return AuditEntry(
        edition_id=edition.id,
        from_state=edition.state,
        to_state=to,
        actor=actor,
        via=via,
        at=now,
        revision=edition.revision,
        content_hash=edition.content_hash,
        note=note,
    )


def apply(
    tx: Transaction,
    edition: Edition,
    to: EditionState,
    *,
    actor: str,
    via: str,
    now: datetime,
    note: str = "",
    revision: Revision | None = None,
) -> AuditEntry:
    """Check the move and write it (with new content when ``revision`` is given).

    A revision is a pending -> pending move that makes revision N+1 with the new content's
    hash; StateError if the move is refused or another process changed the edition first.
    """
    entry = transition(edition, to, actor=actor, via=via, now=now, note=note)
    if revision is not None:
        if not (edition.state is S.PENDING_APPROVAL and to is S.PENDING_APPROVAL):
            raise StateError(
                f"edition {edition.id} is {edition.state}: only a pending one is edited"
            )
        entry = AuditEntry(
            edition_id=edition.id, from_state=edition.state, to_state=to, actor=entry.actor,
            via=via, at=now, revision=edition.revision + 1,
            content_hash=revision.content_hash, note=note,
        )  # fmt: skip
    tx.write_transition(entry, revision=revision)
    return entry


def move(
    store: Store,
    edition: Edition,
    to: EditionState,
    *,
    actor: str,
    via: str,
    now: datetime,
    note: str = "",
) -> Edition:
    """``apply`` in a transaction of its own; the edition as it is afterwards."""
    with store.transaction() as tx:
        apply(tx, edition, to, actor=actor, via=via, now=now, note=note)
    return store.get_edition(edition.id)


def check_revision(edition: Edition, revision: int | None) -> None:
    """StateError unless ``revision`` (what the editor looked at) is the edition's current one."""
    if revision is not None and revision != edition.revision:
        raise StateError(
            f"edition {edition.id} has changed: you looked at revision {revision}, it is now "
            f"revision {edition.revision}; review the new revision (the latest proof or "
            f"`digest status {edition.id}`)"
        )


def deadline_for(slot: str, *, timezone: str, minutes_before: int) -> datetime:
    """The approval deadline of a slot ("YYYY-MM-DDTHH:MM" in ``timezone``)."""
    try:
        day, hhmm = slot.split("T", 1)
        send_at = datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm))
    except ValueError:
        raise DigestError(f"edition slot {slot!r} is not YYYY-MM-DDTHH:MM") from None
    return send_at.replace(tzinfo=ZoneInfo(timezone)) - timedelta(minutes=minutes_before)
