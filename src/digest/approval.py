"""The edition lifecycle: one table of allowed transitions and the one function applying it.

``transition`` is pure: it checks a move against TRANSITIONS and returns the audit entry.
``apply`` is the only code that changes an edition's state (or makes a new revision): it
writes that entry through the store's compare-and-set, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.exceptions import StateError
from digest.models import AuditEntry, Edition, EditionState
from digest.store import Revision, Store, Transaction

S = EditionState

# Every allowed move. Anything else is refused with a message that states the current state.
TRANSITIONS: dict[EditionState, frozenset[EditionState]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL}),
    # pending -> pending records a new revision (an edit) or one of several approvals needed.
    # A new build for the same slot supersedes a pending or approved (never a sending) one.
    S.PENDING_APPROVAL: frozenset(
        {S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.EXPIRED, S.SUPERSEDED}
    ),
    # approved -> rejected is an editor's cancel before the first message (delivery.control).
    S.APPROVED: frozenset({S.SENDING, S.EXPIRED, S.SUPERSEDED, S.REJECTED}),
    S.REJECTED: frozenset(),
    # sending -> sending is a resume after a crash; failed -> sending is a retry.
    S.SENDING: frozenset({S.SENT, S.FAILED, S.SENDING}),
    S.FAILED: frozenset({S.SENDING}),
    S.SENT: frozenset(),
    S.EXPIRED: frozenset(),
    S.SUPERSEDED: frozenset(),
}

# What each state means to someone trying to send, for the refusal message.
_SEND_HINTS: dict[EditionState, str] = {
    S.DRAFT: "it has not been submitted for approval",
    S.PENDING_APPROVAL: "it awaits approval; run `digest approve {id} --by NAME` first",
    S.REJECTED: "it was rejected; build a new edition",
    S.SENT: "it has been sent already",
    S.EXPIRED: "it expired without being sent",
    S.SUPERSEDED: "a newer edition was built for its slot; `digest status` shows which",
}


def transition(
    edition: Edition,
    to: EditionState,
    *,
    actor: str,
    via: str,
    now: datetime,
    note: str = "",
    revision: Revision | None = None,
) -> AuditEntry:
    """The audit entry for moving ``edition`` to ``to``; StateError if the move is not allowed.

    With ``revision`` (new content for a pending edition) the entry makes revision N+1 and
    carries the new content's hash.
    """
    if to not in TRANSITIONS[edition.state]:
        if edition.state is S.SUPERSEDED:
            raise StateError(
                f"edition {edition.id} is superseded: a newer edition was built for slot "
                f"{edition.slot}; `digest status` shows it"
            )
        if to is S.SENDING:
            hint = _SEND_HINTS.get(edition.state, "").format(id=edition.id)
            raise StateError(f"edition {edition.id} is {edition.state}: cannot send, {hint}")
        raise StateError(
            f"edition {edition.id} is {edition.state}; it cannot become {to} "
            f"(allowed: {', '.join(sorted(TRANSITIONS[edition.state])) or 'none, it is final'})"
        )
    if not actor.strip():
        raise StateError("a transition needs the name of who makes it (--by NAME)")
    if revision is not None and not (edition.state is to is S.PENDING_APPROVAL):
        raise StateError(f"edition {edition.id} is {edition.state}: only a pending one is edited")
    return AuditEntry(
        edition_id=edition.id,
        from_state=edition.state,
        to_state=to,
        actor=actor,
        via=via,
        at=now,
        revision=edition.revision + (1 if revision else 0),
        content_hash=revision.content_hash if revision else edition.content_hash,
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
    entry = transition(edition, to, actor=actor, via=via, now=now, note=note, revision=revision)
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


def deadline_for(wave: datetime, *, minutes_before: int) -> datetime:
    """The approval deadline: ``minutes_before`` the earliest wave the edition must serve.

    Arithmetic on the absolute instant (slots.served_wave), never on a wall clock,
    so a daylight-saving day moves neither the deadline past the send nor before the build.
    """
    return wave.astimezone(UTC) - timedelta(minutes=minutes_before)
