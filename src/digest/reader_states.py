"""A reader's states and the moves between them: one table, like an edition's.

A reader's state is a column (``subscribers.state``); an address on the suppression list
carries its own kind (``suppressions.kind``: unsubscribed, bounced or complained), which
overrides the stored state wherever the list is read. Both are written only through the
moves below, so "complained" is never turned back into "unsubscribed" by a later write,
and nothing but the reader's own double opt-in makes an opted-out reader active again.
"""

from __future__ import annotations

from digest.models import SubscriberState

S = SubscriberState

# Who may move a reader where. "reader" moves are the reader's own (a confirmed sign-up,
# the preference page); the others come from the file sync, an import, an editor or mail.
TRANSITIONS: dict[SubscriberState, frozenset[SubscriberState]] = {
    S.PENDING: frozenset({S.ACTIVE, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED, S.REMOVED}),
    S.ACTIVE: frozenset({S.PAUSED, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED, S.REMOVED}),
    S.PAUSED: frozenset({S.ACTIVE, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED, S.REMOVED}),
    S.REMOVED: frozenset({S.ACTIVE, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    # Opted out: only the reader's new double opt-in (a "reader" move) reactivates.
    S.UNSUBSCRIBED: frozenset({S.BOUNCED, S.COMPLAINED}),
    S.BOUNCED: frozenset({S.COMPLAINED}),
    S.COMPLAINED: frozenset(),
}
READER_MOVES: frozenset[tuple[SubscriberState, SubscriberState]] = frozenset(
    {(S.UNSUBSCRIBED, S.ACTIVE), (S.BOUNCED, S.ACTIVE), (S.COMPLAINED, S.ACTIVE)}
)

# The kinds a suppression can have, weakest first: a suppression is only ever strengthened.
SUPPRESSION_KINDS: tuple[SubscriberState, ...] = (S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED)


def allowed(old: SubscriberState, new: SubscriberState, *, by_reader: bool = False) -> bool:
    """Whether a reader in ``old`` may move to ``new`` (staying put is always allowed)."""
    if old is new or new in TRANSITIONS[old]:
        return True
    return by_reader and (old, new) in READER_MOVES


def strongest(current: SubscriberState | None, new: SubscriberState) -> SubscriberState:
    """The kind a suppression keeps when ``new`` is recorded over ``current``."""
    if new not in SUPPRESSION_KINDS:
        raise ValueError(f"{new} is not a kind of suppression")
    if current is None:
        return new
    return max(current, new, key=SUPPRESSION_KINDS.index)
