"""Approve, reject, edit, test-send and the deadline, in terms of approval.apply and the store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.addresses import normalise_address
from digest.approval import apply, check_revision, deadline_for, transition
from digest.backends.base import Backend, Envelope
from digest.config.settings import ApprovalSettings, EditorSettings
from digest.edits import NOTHING_TO_CHANGE, Draft, Edit, Kind, apply_edits
from digest.exceptions import (
    AddressError,
    BackendError,
    DigestError,
    SendLimitReached,
    StateError,
)
from digest.models import Edition, EditionState, Subscriber, Variant
from digest.render.preflight import GMAIL_CLIP_BYTES, clipped
from digest.render.renderer import Renderer
from digest.render.variants import approved_variant
from digest.slots import Slot, served_wave, slot_day
from digest.store import Revision, Store
from digest.store.desk import DeskState

S = EditionState


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """The edition after an approval, and how many of the needed approvals it now has."""

    edition: Edition
    count: int
    needed: int

    @property
    def approved(self) -> bool:
        return self.edition.state is S.APPROVED


def find_editor(policy: ApprovalSettings, who: str) -> EditorSettings | None:
    key = who.strip().lower()
    for editor in policy.editors:
        if key in (editor.name.lower(), editor.email.lower()):
            return editor
    return None


def counting(policy: ApprovalSettings) -> set[str] | None:
    """The editor keys whose approvals count (the store keeps lower-cased names), or None
    for any: with editors configured, ``policy`` (App.policy) leaves revoked ones out, so an
    approval given before a revocation stops counting toward approvals_needed."""
    return {e.name.lower() for e in policy.editors} if policy.editors else None


def counted_approvers(store: Store, edition: Edition, policy: ApprovalSettings) -> list[str]:
    """Who approved the current revision and still counts (see ``counting``), in order."""
    keys = counting(policy)
    return [a for a in store.approvers(edition) if keys is None or a.lower() in keys]


def editor_name(policy: ApprovalSettings, by: str) -> str:
    """Who acts, as recorded: with editors configured, only they may approve, edit or reject."""
    if not policy.editors:
        return by.strip()
    found = find_editor(policy, by)
    if found is None:
        names = ", ".join(e.name for e in policy.editors)
        raise DigestError(
            f"{by!r} is not one of the editors in approval.editors ({names}); "
            "pass an editor's name or e-mail address"
        )
    return found.name


def approve(
    store: Store,
    edition_id: int,
    *,
    policy: ApprovalSettings,
    by: str,
    via: str,
    now: datetime,
    revision: int | None = None,
) -> ApprovalResult:
    """Record one editor's approval of the current revision; approve once enough agree."""
    edition = store.get_edition(edition_id)
    if edition.state is S.SUPERSEDED:
        newer = store.latest_for_slot(edition.slot)
        instead = (
            f"; approve edition {newer.id} instead" if newer and newer.id != edition.id else ""
        )
        raise StateError(
            f"edition {edition.id} was superseded by a newer edition for slot {edition.slot}"
            f"{instead}"
        )
    check_revision(edition, revision)
    name = editor_name(policy, by)
    needed = policy.approvals_needed
    transition(edition, S.APPROVED, actor=name, via=via, now=now)  # refuses a wrong state early
    with store.transaction() as tx:
        count = tx.add_approval(
            edition, editor=name.lower(), actor=name, via=via, now=now, among=counting(policy)
        )
        if count == 0:
            raise StateError(
                f"{name} has already approved revision {edition.revision} of edition "
                f"{edition.id}; it needs approvals from {needed} different editors"
            )
        to = S.APPROVED if count >= needed else S.PENDING_APPROVAL
        note = f"approval {count} of {needed}" if needed > 1 else ""
        apply(tx, edition, to, actor=name, via=via, now=now, note=note)
    return ApprovalResult(store.get_edition(edition_id), count, needed)


def reject(
    store: Store,
    edition_id: int,
    *,
    policy: ApprovalSettings,
    by: str,
    reason: str,
    via: str,
    now: datetime,
    revision: int | None = None,
) -> Edition:
    """Reject the edition (any one editor may); it will never be sent."""
    if not reason.strip():
        raise DigestError("a rejection needs a reason (--reason TEXT)")
    edition = store.get_edition(edition_id)
    check_revision(edition, revision)
    with store.transaction() as tx:
        apply(
            tx,
            edition,
            S.REJECTED,
            actor=editor_name(policy, by),
            via=via,
            now=now,
            note=reason.strip(),
        )
    return store.get_edition(edition_id)


def revise(
    store: Store,
    edition_id: int,
    *,
    policy: ApprovalSettings,
    renderer: Renderer,
    selections: Iterable[Sequence[str]],
    by: str,
    via: str,
    now: datetime,
    edits: Sequence[Edit] = (),
    remove: Sequence[str] = (),
    pin: str | None = None,
    position: int = 1,
    revision: int | None = None,
) -> Edition:
    """Edit a pending edition (``edits``, after any ``remove`` and ``pin``): a new revision,
    re-rendered, with one audit line naming each change and its old and new wording.

    The revision's topic variants are rendered now, for every selection known now, so the
    next approval covers every byte that can be sent. Approvals and proof links of earlier
    revisions stop counting, as their tokens name the revision they were made for.
    """
    if pin is not None and pin in remove:
        raise DigestError(f"edition {edition_id}: cannot both remove and pin {pin}")
    edits = [
        *(Edit(Kind.REMOVE, url) for url in remove),
        *([Edit(Kind.PIN, pin, position=position)] if pin is not None else []),
        *edits,
    ]
    if not edits:
        raise DigestError(NOTHING_TO_CHANGE)
    edition = store.get_edition(edition_id)
    check_revision(edition, revision)
    name = editor_name(policy, by)
    transition(edition, S.PENDING_APPROVAL, actor=name, via=via, now=now)  # only while pending
    # Render exactly as the build did: as of its time (the edition keeps its date) and with
    # the template extras it recorded, plus the editors' note and subject.
    built = store.ranking(edition.id)
    draft = Draft(
        edition.stories, tuple(DeskState(store).set_aside(edition.id)), built[1] if built else {}
    )
    new, changes = apply_edits(
        draft, edits, edition_id=edition.id, subject=edition.rendered.subject
    )
    day = slot_day(edition.slot)
    rendered = renderer.render(new.stories, now=edition.created_at, extra=new.extra, day=day)
    variants = renderer.variants(
        new.stories, selections, now=edition.created_at, extra=new.extra, day=day
    )
    note = f"revision {edition.revision + 1}: " + "; ".join(changes)
    content = Revision(new.stories, rendered, variants, extra=new.extra, set_aside=new.set_aside)
    with store.transaction() as tx:
        apply(
            tx,
            edition,
            S.PENDING_APPROVAL,
            actor=name,
            via=via,
            now=now,
            note=note,
            revision=content,
        )
    return store.get_edition(edition_id)


def send_test(
    store: Store,
    edition_id: int,
    *,
    policy: ApprovalSettings,
    by: str,
    to: str,
    now: datetime,
    envelope: Callable[[Edition, str], Envelope],
    backend: Callable[[], Backend],
    revision: int | None = None,
    variant: str = "[]",
) -> Edition:
    """Mail the current revision (``variant``) to ``to``, subject prefixed [TEST].

    Recorded in the audit trail (``via: test-send``), never in the delivery ledger, and
    limited to ``policy.test_sends_per_hour`` per editor. ``envelope(edition, to)`` makes
    the message of the variant chosen by the caller.
    """
    try:
        address = normalise_address(to)  # an IDN domain as punycode, as readers' are
    except AddressError:
        raise DigestError(f"{to!r} is not an e-mail address a test can be sent to") from None
    edition = store.get_edition(edition_id)
    check_revision(edition, revision)
    name = editor_name(policy, by)
    transition(edition, S.PENDING_APPROVAL, actor=name, via="test-send", now=now)
    hour = timedelta(hours=1)
    sent = DeskState(store).audit_count(None, via="test-send", actor=name, since=now - hour)
    if sent >= policy.test_sends_per_hour:
        raise SendLimitReached(
            f"{name} has sent {sent} test e-mails in the last hour, the most "
            "approval.test_sends_per_hour allows; wait a while and try again"
        )
    message = envelope(edition, address)
    try:
        with backend() as connection:
            connection.send(message)
    except BackendError as exc:
        raise DigestError(f"the test e-mail to {address} was not sent: {exc}") from exc
    label = "whole edition" if variant == "[]" else f"variant {variant}"
    note = f"test send of revision {edition.revision} ({label}) to {address}; not a delivery"
    with store.transaction() as tx:
        apply(tx, edition, S.PENDING_APPROVAL, actor=name, via="test-send", now=now, note=note)
    return store.get_edition(edition_id)


@dataclass(frozen=True, slots=True)
class Audience:
    """Who an edition goes to: recipients in all, and per approved variant (key -> count)."""

    recipients: int
    by_variant: dict[str, int]
    skipped: int = 0  # suppressed, or no story in their topics
    frozen: bool = False  # counted from the delivery ledger (the list is fixed)


def audience(
    edition: Edition,
    variants: Sequence[Variant],
    subscribers: Iterable[Subscriber],
    *,
    suppressed: Callable[[list[str]], set[str]],
    keep_lead: bool,
    chunk: int = 500,
) -> Audience:
    """Count, streaming, the subscribers this edition would go to and which variant each gets.

    The same rule as sending: suppressed addresses are skipped, and so is a reader none of
    whose topics has a story; the variant is chosen once per distinct topic selection.
    """
    chosen: dict[tuple[str, ...], str | None] = {}
    counts: dict[str, int] = {}
    skipped = 0
    batch: list[Subscriber] = []

    def flush() -> None:
        nonlocal skipped
        gone = suppressed([s.email for s in batch])
        for sub in batch:
            if sub.email.lower() in gone:
                skipped += 1
                continue
            if sub.topics not in chosen:
                found = approved_variant(edition, variants, sub.topics, keep_lead=keep_lead)
                chosen[sub.topics] = found[0] if found else None
            key = chosen[sub.topics]
            if key is None:
                skipped += 1
            else:
                counts[key] = counts.get(key, 0) + 1
        batch.clear()

    for sub in subscribers:
        batch.append(sub)
        if len(batch) >= chunk:
            flush()
    flush()
    return Audience(sum(counts.values()), counts, skipped)


def deadline(
    edition: Edition, *, policy: ApprovalSettings, slot: Slot, lateness: timedelta
) -> datetime:
    """When the edition must be approved by: ``deadline_minutes`` before the earliest wave
    of its slot it must serve (slots.served_wave), as an absolute instant."""
    wave = served_wave(slot, edition.created_at, lateness)
    return deadline_for(wave, minutes_before=policy.deadline_minutes)


def enforce_deadline(
    store: Store, edition_id: int, *, policy: ApprovalSettings, deadline: datetime, now: datetime
) -> Edition:
    """At or after ``deadline`` (from ``deadline()``), settle a still-pending edition.

    ``skip`` expires it (nothing is sent); ``send`` approves it, recorded as an automatic
    approval at the deadline, unless Gmail would clip it (then it expires too: an edition
    nobody approved is never sent clipped). Before the deadline, or for any other state,
    nothing changes. The scheduler calls this at the deadline; calling it again is harmless.
    """
    edition = store.get_edition(edition_id)
    if edition.state is not S.PENDING_APPROVAL:
        return edition
    if now < deadline:
        return edition
    got = len(counted_approvers(store, edition, policy))
    needed = policy.approvals_needed
    too_big = clipped(edition.rendered, store.variants(edition))
    if policy.at_deadline == "send" and too_big:
        to = S.EXPIRED
        note = (
            f"not auto-approved at the deadline (approval.at_deadline: send; {got} of "
            f"{needed} approvals): the HTML of {', '.join(too_big)} is over "
            f"{GMAIL_CLIP_BYTES:,} bytes and Gmail would clip it; "
            "nothing will be sent"
        )
    elif policy.at_deadline == "send":
        to = S.APPROVED
        note = (
            f"auto-approved at the deadline (approval.at_deadline: send; {got} of {needed} "
            "approvals)"
        )
    else:
        to = S.EXPIRED
        note = (
            f"not approved by the deadline (approval.at_deadline: skip; {got} of {needed} "
            "approvals); nothing will be sent"
        )
    with store.transaction() as tx:
        apply(tx, edition, to, actor="digest", via="deadline", now=now, note=note)
    return store.get_edition(edition_id)


def expire_late(store: Store, edition_id: int, *, until: datetime, now: datetime) -> Edition:
    """An approved edition whose every wave passed its maximum lateness (``until``) expires:
    it is never sent as stale news."""
    edition = store.get_edition(edition_id)
    if edition.state is not S.APPROVED or now <= until:
        return edition
    note = (
        f"approved, but its slot {edition.slot} passed its maximum lateness at "
        f"{until.isoformat()}; not sent late"
    )
    with store.transaction() as tx:
        apply(tx, edition, S.EXPIRED, actor="digest", via="schedule", now=now, note=note)
    return store.get_edition(edition_id)


def approved_hash(store: Store, edition_id: int) -> str | None:
    """The content hash recorded when the edition was approved (None if it never was)."""
    trail = [a for a in store.audit_trail(edition_id) if a.to_state is S.APPROVED]
    return trail[-1].content_hash if trail else None
