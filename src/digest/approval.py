"""The edition lifecycle: one table of allowed transitions and the one function applying it."""

from __future__ import annotations

from datetime import datetime

from digest.exceptions import StateError
from digest.models import Edition, EditionState
from digest.store import AuditEntry

S = EditionState

# Every allowed move. Anything else is refused with a message that states the current state.
TRANSITIONS: dict[EditionState, frozenset[EditionState]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED}),
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
