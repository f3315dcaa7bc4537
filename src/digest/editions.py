"""Approvals, revisions and the deadline, stored atomically with the edition and its audit row."""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from digest.approval import check_revision, deadline_for, edit_stories, transition
from digest.config import EditorSettings, Settings
from digest.exceptions import DigestError, StateError, StoreError
from digest.models import Edition, EditionState
from digest.pipeline import render
from digest.store import AuditEntry, Store, audit, create_tables, editions
from digest.variants import VariantStore

S = EditionState

metadata = MetaData()

# One row per editor who approved one revision; only the current revision's rows count.
approvals = Table(
    "approvals",
    metadata,
    Column("edition_id", Integer, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("editor", String, primary_key=True),  # lower-cased name or address: the identity
    Column("actor", String, nullable=False),
    Column("via", String, nullable=False),
    Column("at", String, nullable=False),
)

# Engines whose database has the approvals table already (created on first use).
_ready: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """The edition after an approval, and how many of the needed approvals it now has."""

    edition: Edition
    count: int
    needed: int

    @property
    def approved(self) -> bool:
        return self.edition.state is S.APPROVED


def editor_name(settings: Settings, by: str) -> str:
    """Who acts, as recorded: with editors configured, only they may approve, edit or reject."""
    editors = settings.approval.editors
    if not editors:
        return by.strip()
    found = find_editor(settings, by)
    if found is None:
        names = ", ".join(e.name for e in editors)
        raise DigestError(
            f"{by!r} is not one of the editors in approval.editors ({names}); "
            "pass an editor's name or e-mail address"
        )
    return found.name


def find_editor(settings: Settings, who: str) -> EditorSettings | None:
    key = who.strip().lower()
    for editor in settings.approval.editors:
        if key in (editor.name.lower(), editor.email.lower()):
            return editor
    return None


def approvals_for(store: Store, edition: Edition) -> list[str]:
    """Who approved the edition's current revision so far, in order."""
    _ensure(store)
    query = (
        select(approvals.c.actor)
        .where(approvals.c.edition_id == edition.id)
        .where(approvals.c.revision == edition.revision)
        .order_by(approvals.c.at, approvals.c.actor)
    )
    with _connect(store) as conn:
        return list(conn.execute(query).scalars())


def approve(
    settings: Settings,
    store: Store,
    edition_id: int,
    *,
    by: str,
    via: str,
    now: datetime,
    revision: int | None = None,
) -> ApprovalResult:
    """Record one editor's approval of the current revision; approve once enough agree."""
    _ensure(store)
    edition = store.get_edition(edition_id)
    check_revision(edition, revision)
    name = editor_name(settings, by)
    needed = settings.approval.approvals_needed
    transition(edition, S.APPROVED, actor=name, via=via, now=now)  # refuses a wrong state early
    with _begin(store) as conn:
        done = conn.execute(
            insert(approvals)
            .prefix_with("OR IGNORE")
            .values(edition_id=edition.id, revision=edition.revision, editor=name.lower(),
                    actor=name, via=via, at=now.astimezone(UTC).isoformat())
        ).rowcount  # fmt: skip
        if done != 1:
            raise StateError(
                f"{name} has already approved revision {edition.revision} of edition "
                f"{edition.id}; it needs approvals from {needed} different editors"
            )
        count = int(
            conn.execute(
                select(func.count())
                .select_from(approvals)
                .where(approvals.c.edition_id == edition.id)
                .where(approvals.c.revision == edition.revision)
            ).scalar_one()
        )
        to = S.APPROVED if count >= needed else S.PENDING_APPROVAL
        note = f"approval {count} of {needed}" if needed > 1 else ""
        _commit(conn, transition(edition, to, actor=name, via=via, now=now, note=note))
    return ApprovalResult(store.get_edition(edition_id), count, needed)


def reject(
    settings: Settings,
    store: Store,
    edition_id: int,
    *,
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
    entry = transition(
        edition, S.REJECTED, actor=editor_name(settings, by), via=via, now=now, note=reason.strip()
    )
    with _begin(store) as conn:
        _commit(conn, entry)
    return store.get_edition(edition_id)


def revise(
    settings: Settings,
    store: Store,
    edition_id: int,
    *,
    by: str,
    via: str,
    now: datetime,
    remove: Sequence[str] = (),
    pin: str | None = None,
    position: int = 1,
    revision: int | None = None,
) -> Edition:
    """Remove or pin stories of a pending edition: a new revision, re-rendered and audited.

    Approvals and proof links of earlier revisions stop counting, as their tokens name the
    revision they were made for.
    """
    if not remove and pin is None:
        raise DigestError("nothing to change: give --remove URL or --pin URL")
    edition = store.get_edition(edition_id)
    check_revision(edition, revision)
    name = editor_name(settings, by)
    transition(edition, S.PENDING_APPROVAL, actor=name, via=via, now=now)  # only while pending
    stories = edit_stories(
        edition.stories, edition_id=edition.id, remove=remove, pin=pin, position=position
    )
    # Render exactly as the build did: as of its time (the edition keeps its date) and with
    # the template extras it recorded. Topic variants of the old revision go stale by hash.
    built = VariantStore(store).ranking(edition.id)
    rendered = render(settings, stories, now=edition.created_at, extra=built[1] if built else None)
    changes = [f"removed {u}" for u in remove]
    if pin is not None:
        changes.append(f"pinned {pin} at {position}")
    new = edition.revision + 1
    entry = AuditEntry(
        edition_id=edition.id, from_state=S.PENDING_APPROVAL, to_state=S.PENDING_APPROVAL,
        actor=name, via=via, at=now, revision=new, content_hash=rendered.content_hash,
        note=f"revision {new}: " + "; ".join(changes),
    )  # fmt: skip
    content = {
        "revision": new,
        "stories": json.dumps([s.to_dict() for s in stories]),
        "subject": rendered.subject,
        "preheader": rendered.preheader,
        "html": rendered.html,
        "text": rendered.text,
        "content_hash": rendered.content_hash,
    }
    with _begin(store) as conn:
        _commit(conn, entry, expect_revision=edition.revision, content=content)
    return store.get_edition(edition_id)


def enforce_deadline(
    settings: Settings, store: Store, edition_id: int, *, now: datetime
) -> Edition:
    """At or after the approval deadline, settle a still-pending edition by the policy.

    ``skip`` expires it (nothing is sent); ``send`` approves it, recorded as an automatic
    approval at the deadline. Before the deadline, or for any other state, nothing changes.
    The scheduler calls this at the deadline; calling it again is harmless.
    """
    edition = store.get_edition(edition_id)
    if edition.state is not S.PENDING_APPROVAL or now < deadline(settings, edition):
        return edition
    policy = settings.approval.at_deadline
    got = len(approvals_for(store, edition))
    needed = settings.approval.approvals_needed
    if policy == "send":
        entry = transition(
            edition, S.APPROVED, actor="digest", via="deadline", now=now,
            note=f"auto-approved at the deadline (approval.at_deadline: send; "
                 f"{got} of {needed} approvals)",
        )  # fmt: skip
    else:
        entry = transition(
            edition, S.EXPIRED, actor="digest", via="deadline", now=now,
            note=f"not approved by the deadline (approval.at_deadline: skip; "
                 f"{got} of {needed} approvals); nothing will be sent",
        )  # fmt: skip
    with _begin(store) as conn:
        _commit(conn, entry)
    return store.get_edition(edition_id)


def deadline(settings: Settings, edition: Edition) -> datetime:
    """When the edition must be approved by: ``deadline_minutes`` before its send time."""
    return deadline_for(
        edition.slot,
        timezone=settings.schedule.timezone,
        minutes_before=settings.approval.deadline_minutes,
    )


def approved_hash(store: Store, edition_id: int) -> str | None:
    """The content hash recorded when the edition was approved (None if it never was)."""
    trail = [a for a in store.audit_trail(edition_id) if a.to_state is S.APPROVED]
    return trail[-1].content_hash if trail else None


# storage -------------------------------------------------------------------------------------


def _commit(
    conn: Any,
    entry: AuditEntry,
    *,
    expect_revision: int | None = None,
    content: dict[str, Any] | None = None,
) -> None:
    """Compare-and-set the edition's state (and revision), then write the audit row."""
    expected = entry.revision if expect_revision is None else expect_revision
    result = conn.execute(
        update(editions)
        .where(editions.c.id == entry.edition_id)
        .where(editions.c.state == entry.from_state.value)
        .where(editions.c.revision == expected)
        .values(state=entry.to_state.value, updated_at=entry.at.astimezone(UTC).isoformat(),
                **(content or {}))
    )  # fmt: skip
    if result.rowcount != 1:
        row = conn.execute(
            select(editions.c.state, editions.c.revision).where(editions.c.id == entry.edition_id)
        ).first()
        raise StateError(
            f"edition {entry.edition_id} changed meanwhile (now {row.state}, revision "
            f"{row.revision}); look again and retry"
        )
    conn.execute(
        insert(audit).values(
            edition_id=entry.edition_id, from_state=entry.from_state.value,
            to_state=entry.to_state.value, actor=entry.actor, via=entry.via,
            at=entry.at.astimezone(UTC).isoformat(), revision=entry.revision,
            content_hash=entry.content_hash, note=entry.note,
        )
    )  # fmt: skip


def _ensure(store: Store) -> None:
    if store.engine not in _ready:
        try:
            create_tables(store.engine, metadata)
        except SQLAlchemyError as exc:
            raise StoreError(f"{store.path}: cannot create the approvals table: {exc}") from exc
        _ready.add(store.engine)


def _connect(store: Store) -> Any:
    try:
        return store.engine.connect()
    except SQLAlchemyError as exc:
        raise StoreError(f"{store.path}: {exc}") from exc


def _begin(store: Store) -> Any:
    try:
        return store.engine.begin()
    except SQLAlchemyError as exc:
        raise StoreError(f"{store.path}: {exc}") from exc
