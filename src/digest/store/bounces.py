"""Bounces and complaints in the store: the evidence rows and the suppressions they cause.

The policy (see README "Bounces and complaints"): a hard bounce suppresses the address at
once (state bounced); soft bounces are counted, and ``soft_limit`` of them within
``window`` suppress it too; a complaint suppresses it at once (state complained). Every
suppression goes through store.suppress.record, which only ever strengthens one, so no
later bounce, import or sync turns a complaint into anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select

from digest.models import SubscriberState
from digest.store import suppress
from digest.store.repository import Store
from digest.store.subscribers import address_key, writing
from digest.store.tables import bounce_events, suppressions

S = SubscriberState
SUPPRESSED = "suppressed"
COUNTED = "counted"
IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Event:
    """One recipient of one returned mail, as the policy sees it."""

    email: str
    kind: str  # hard, soft, complaint (anything else is ignored)
    status: str
    reason: str
    source: str = ""
    message_id: str = ""  # of the returned original, when the mail quotes it
    mail: str = ""  # a hash of the returned mail itself


@dataclass(frozen=True, slots=True)
class Policy:
    soft_limit: int = 3
    window: timedelta = timedelta(days=30)


class BounceStore:
    """Applies the bounce policy; each batch of events is one transaction."""

    def __init__(self, store: Store, policy: Policy) -> None:
        self.store = store
        self.policy = policy

    @contextmanager
    def batch(self, *, dry_run: bool = False) -> Iterator[Batch]:
        """A transaction to apply events in (rolled back at the end when ``dry_run``)."""
        with writing(self.store, dry_run=dry_run) as conn:
            yield Batch(conn, self.policy)

    def events(self, email: str) -> list[dict[str, Any]]:
        """The bounces and complaints recorded for an address, oldest first."""
        query = (
            select(bounce_events)
            .where(bounce_events.c.email == address_key(email))
            .order_by(bounce_events.c.at, bounce_events.c.id)
        )
        with self.store.reading() as conn:
            return [
                {
                    "at": r.at.isoformat(),
                    "kind": r.kind,
                    "status": r.status,
                    "reason": r.reason,
                    "action": r.action,
                    "source": r.source,
                    "message_id": r.message_id,
                }
                for r in conn.execute(query)
            ]


class Batch:
    """Events applied inside one open transaction."""

    def __init__(self, conn: Connection, policy: Policy) -> None:
        self.conn = conn
        self.policy = policy

    def apply(self, event: Event, *, now: datetime) -> str:
        """Record ``event`` and suppress its address if the policy says so.

        Returns the action: suppressed (the address is now, or already was, suppressed),
        counted (a soft bounce below the limit) or ignored (not a bounce).
        """
        if event.kind not in ("hard", "soft", "complaint") or not event.email.strip():
            return IGNORED
        key = address_key(event.email)
        if self._seen(key, event):
            return IGNORED
        current = self._suppression(key)
        evidence = " ".join(p for p in (event.status, event.reason) if p)
        action = SUPPRESSED
        if event.kind == "complaint":
            reason = f"complained: {evidence or 'feedback report'}"
            self._suppress(key, reason, S.COMPLAINED, now)
        elif event.kind == "hard":
            self._suppress(key, f"hard bounce: {evidence}", S.BOUNCED, now)
        else:
            since = now - self.policy.window
            recent = self.conn.execute(
                select(func.count())
                .select_from(bounce_events)
                .where(bounce_events.c.email == key)
                .where(bounce_events.c.kind == "soft")
                .where(bounce_events.c.at >= since)
            ).scalar_one()
            count = int(recent) + 1
            if current is not None:
                action = SUPPRESSED
            elif count >= self.policy.soft_limit:
                days = self.policy.window.days
                reason = f"hard bounce: {count} soft bounces in {days} days, last {evidence}"
                self._suppress(key, reason, S.BOUNCED, now)
            else:
                action = COUNTED
        self.conn.execute(
            insert(bounce_events).values(
                email=key,
                at=now,
                kind=event.kind,
                status=event.status[:20],
                reason=event.reason[:80],
                action=action,
                source=event.source,
                message_id=event.message_id,
                mail=event.mail,
            )
        )
        return action

    def _seen(self, key: str, event: Event) -> bool:
        """Already recorded: the same mail read again (an import run twice over a mailbox),
        or another notice of the same kind about the same sent message (a server's
        repeated "still trying" warnings count once)."""
        same = bounce_events.c.mail == event.mail if event.mail else None
        if event.message_id:
            about = (bounce_events.c.message_id == event.message_id) & (
                bounce_events.c.kind == event.kind
            )
            same = about if same is None else same | about
        if same is None:
            return False
        query = select(bounce_events.c.id).where(bounce_events.c.email == key).where(same)
        return self.conn.execute(query.limit(1)).first() is not None

    def _suppression(self, key: str) -> str | None:
        query = select(suppressions.c.reason).where(suppressions.c.email == key)
        value = self.conn.execute(query).scalar()
        return str(value) if value is not None else None

    def _suppress(self, key: str, reason: str, kind: SubscriberState, now: datetime) -> None:
        """Through the one writer of the list, which only ever strengthens a suppression
        (a complaint stays a complaint, with its evidence)."""
        suppress.record(self.conn, key, reason=reason, kind=kind, now=now)


def apply_all(
    store: BounceStore, events: Sequence[Event], *, now: datetime, dry_run: bool = False
) -> list[str]:
    """Apply ``events`` in one transaction; their actions, in order."""
    with store.batch(dry_run=dry_run) as batch:
        return [batch.apply(e, now=now) for e in events]
