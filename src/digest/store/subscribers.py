"""The readers' list in the store: subscribers, consents, double opt-in confirmations.

Every reader-facing lookup is by key (the lower-cased address, a unique index) or by id, so
the reader pages cost the same at ten subscribers and at a million. Lists are streamed in
keyset order, never loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from digest.models import Subscriber, SubscriberState
from digest.store import receiving, suppress
from digest.store.events import enqueue
from digest.store.repository import Store
from digest.store.subscriber_rows import (
    ERASED_SALT,
    Pending,
    Record,
    address_hash,
    address_key,
    iso,
    to_record,
    with_state,
    writing,
)
from digest.store.tables import (
    confirmations,
    consents,
    erasures,
    subscribers,
    suppressions,
    topics_of,
    topics_text,
)

__all__ = [
    "ERASED_SALT",
    "Pending",
    "Receiving",
    "Record",
    "SubscriberStore",
    "address_hash",
    "address_key",
    "writing",
]

S = SubscriberState
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Receiving:
    """The readers of the next edition as of ``now``: iterable, and known to the ledger,
    which copies them inside the database instead of reading them out (``Ledger.populate``).
    """

    readers: SubscriberStore
    now: datetime

    @property
    def store(self) -> Store:
        return self.readers.store

    def __iter__(self) -> Iterator[Subscriber]:
        return self.readers._receiving(self.now)


class SubscriberStore:
    """Reads and writes of the readers' list; each write method is one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # reads --------------------------------------------------------------------------------

    def get(self, email: str) -> Record | None:
        query = with_state().where(subscribers.c.key == address_key(email))
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        return to_record(row) if row else None

    def get_id(self, subscriber_id: int) -> Record | None:
        query = with_state().where(subscribers.c.id == subscriber_id)
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        return to_record(row) if row else None

    def is_erased(self, email: str) -> bool:
        query = select(erasures.c.hash).where(erasures.c.hash == address_hash(email))
        with self.store.reading() as conn:
            return conn.execute(query).first() is not None

    def receiving(self, *, now: datetime) -> Receiving:
        """Everyone the next edition goes to, streamed by key: the active readers, then the
        paused ones whose pause is over. Suppressed addresses are left to the ledger, which
        records them as skipped."""
        return Receiving(self, now)

    def _receiving(self, now: datetime) -> Iterator[Subscriber]:
        for state in receiving.STATES:
            for row in self._keyset(receiving.condition(state, now)):
                yield Subscriber(row.email, row.name, row.timezone, topics_of(row.topics))

    def _keyset(self, where: Any) -> Iterator[Any]:
        last = ""
        while True:
            query = (
                select(
                    subscribers.c.key,
                    subscribers.c.email,
                    subscribers.c.name,
                    subscribers.c.timezone,
                    subscribers.c.topics,
                )
                .where(where)
                .where(subscribers.c.key > last)
                .order_by(subscribers.c.key)
                .limit(CHUNK)
            )
            with self.store.reading() as conn:
                rows = conn.execute(query).all()
            yield from rows
            if len(rows) < CHUNK:
                return
            last = rows[-1].key

    def selections(self, *, now: datetime) -> list[tuple[str, ...]]:
        """Every distinct topic selection among the readers of the next edition."""
        query = select(subscribers.c.topics).distinct().where(receiving.clause(now))
        with self.store.reading() as conn:
            found = [topics_of(t) for t in conn.execute(query).scalars()]
        return list(dict.fromkeys(found))

    def timezones(self, *, now: datetime) -> set[str]:
        """The distinct time zones of the next edition's readers ("" for none given)."""
        query = select(subscribers.c.timezone).distinct().where(receiving.clause(now))
        with self.store.reading() as conn:
            return set(conn.execute(query).scalars())

    def listing(self, states: Sequence[SubscriberState] = ()) -> Iterator[Record]:
        """Subscribers (in ``states``, effective state, or all) by address, streamed."""
        last = ""
        wanted = {s.value for s in states}
        while True:
            query = (
                with_state()
                .where(subscribers.c.key > last)
                .order_by(subscribers.c.key)
                .limit(CHUNK)
            )
            with self.store.reading() as conn:
                rows = conn.execute(query.add_columns(subscribers.c.key.label("k"))).all()
            for row in rows:
                if not wanted or row.state in wanted:
                    yield to_record(row)
            if len(rows) < CHUNK:
                return
            last = rows[-1].k

    def version(self) -> tuple[int, str]:
        """Changes whenever the list does (a sign-up, an unsubscribe, a sync): how many rows,
        and the latest change. For caches of what depends on the list."""
        query = select(func.count(), func.max(subscribers.c.updated_at))
        with self.store.reading() as conn:
            count, latest = conn.execute(query).one()
        return int(count), str(latest or "")

    def counts(self) -> dict[str, int]:
        """How many subscribers are in each stored state."""
        query = select(subscribers.c.state, func.count()).group_by(subscribers.c.state)
        with self.store.reading() as conn:
            return {state: int(n) for state, n in conn.execute(query)}

    def suppression(self, email: str) -> str | None:
        """The suppression reason of an address, if any (a lookup by key)."""
        query = select(suppressions.c.reason).where(suppressions.c.email == address_key(email))
        with self.store.reading() as conn:
            value = conn.execute(query).scalar()
        return str(value) if value is not None else None

    def consents(self, subscriber_id: int) -> list[dict[str, Any]]:
        query = (
            select(consents)
            .where(consents.c.subscriber_id == subscriber_id)
            .order_by(consents.c.id)
        )
        with self.store.reading() as conn:
            return [
                {
                    "at": iso(r.at),
                    "action": r.action,
                    "method": r.method,
                    "ip": r.ip,
                    "text": r.text,
                }
                for r in conn.execute(query)
            ]

    def pending(self, nonce: str) -> Pending | None:
        query = select(confirmations).where(confirmations.c.nonce == nonce)
        with self.store.reading() as conn:
            r = conn.execute(query).first()
        return None if r is None else _pending(r)

    def pending_for(self, subscriber_id: int) -> list[Pending]:
        query = (
            select(confirmations)
            .where(confirmations.c.subscriber_id == subscriber_id)
            .order_by(confirmations.c.created_at)
        )
        with self.store.reading() as conn:
            return [_pending(r) for r in conn.execute(query)]

    # writes -------------------------------------------------------------------------------

    def create(
        self,
        subscriber: Subscriber,
        *,
        state: SubscriberState,
        source: str,
        now: datetime,
        consent: tuple[str, str, str, str] | None = None,
    ) -> int:
        """A new subscriber; ``consent`` is (action, method, ip, text). Returns its id."""
        with writing(self.store) as conn:
            return _insert(conn, subscriber, state=state, source=source, now=now, consent=consent)

    def change(
        self,
        subscriber_id: int,
        *,
        now: datetime,
        consent: tuple[str, str, str, str] | None = None,
        **values: Any,
    ) -> None:
        """Set columns (``topics`` as a tuple, ``state`` as a SubscriberState) of one row."""
        if "topics" in values:
            values["topics"] = topics_text(tuple(values["topics"]))
        if "state" in values:
            values["state"] = SubscriberState(values["state"]).value
        with writing(self.store) as conn:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(updated_at=now, **values)
            )
            if consent:
                _consent(conn, subscriber_id, consent, now)

    def opt_out(
        self, email: str, *, reason: str, now: datetime, consent: tuple[str, str, str, str]
    ) -> Record | None:
        """Suppress an address and mark its subscriber unsubscribed, in one transaction."""
        key = address_key(email)
        with writing(self.store) as conn:
            suppress.record(conn, key, reason=reason, kind=S.UNSUBSCRIBED, now=now)
            conn.execute(
                update(subscribers)
                .where(subscribers.c.key == key)
                .values(state=S.UNSUBSCRIBED.value, updated_at=now)
            )
            row = conn.execute(select(subscribers.c.id).where(subscribers.c.key == key)).first()
            if row is not None:
                _consent(conn, row.id, consent, now)
        return self.get(email)

    def request(
        self,
        email: str,
        *,
        nonce: str,
        name: str,
        topics: Sequence[str],
        ip: str,
        text: str,
        now: datetime,
        timezone: str = "",
    ) -> int:
        """Record a sign-up awaiting confirmation; a new address gets a pending row."""
        key = address_key(email)
        with writing(self.store) as conn:
            row = conn.execute(select(subscribers.c.id).where(subscribers.c.key == key)).first()
            if row is None:
                sub = Subscriber(email.strip(), "", "", ())
                subscriber_id = _insert(conn, sub, state=S.PENDING, source="web", now=now)
            else:
                subscriber_id = int(row.id)
            conn.execute(
                insert(confirmations).values(
                    nonce=nonce,
                    subscriber_id=subscriber_id,
                    name=name,
                    topics=topics_text(tuple(topics)),
                    ip=ip,
                    text=text,
                    created_at=now,
                    timezone=timezone,
                )
            )
        return subscriber_id

    def recent_requests(self, subscriber_id: int, *, since: datetime) -> int:
        """Confirmation mails sent to one subscriber since ``since`` (the per-address limit)."""
        query = (
            select(func.count())
            .select_from(confirmations)
            .where(confirmations.c.subscriber_id == subscriber_id)
            .where(confirmations.c.created_at >= since)
        )
        with self.store.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def confirm(self, nonce: str, *, ip: str, now: datetime) -> Record | None:
        """Apply a confirmed sign-up: active, with what the reader asked for; their earlier
        opt-out (or erasure) is lifted, because they asked again and proved the address."""
        with writing(self.store) as conn:
            r = conn.execute(select(confirmations).where(confirmations.c.nonce == nonce)).first()
            if r is None:
                return None
            sub = conn.execute(select(subscribers).where(subscribers.c.id == r.subscriber_id))
            row = sub.first()
            if row is None:
                return None
            values: dict[str, Any] = {
                "state": S.ACTIVE.value,
                "topics": r.topics,
                "updated_at": now,
                "since": now if S(row.state) is not S.ACTIVE else row.since,
            }
            if r.name:
                values["name"] = r.name
            if r.timezone and not row.timezone:
                # The browser's guess fills a gap; never a zone the reader (or the file) set.
                values["timezone"] = r.timezone
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))
            conn.execute(delete(confirmations).where(confirmations.c.subscriber_id == row.id))
            conn.execute(delete(suppressions).where(suppressions.c.email == row.key))
            conn.execute(delete(erasures).where(erasures.c.hash == address_hash(row.key)))
            _consent(conn, row.id, ("subscribe", "web", r.ip, r.text), r.created_at)
            _consent(conn, row.id, ("confirm", "web", ip, "confirmed the e-mailed link"), now)
            enqueue(conn, "reader.confirmed", {"email": row.key}, now=now)
        return self.get_id(int(row.id))

    def purge_pending(self, *, before: datetime) -> int:
        """Forget sign-ups never confirmed: old confirmations, and pending rows left without
        one (they never became subscribers, so nothing of them is kept)."""
        with writing(self.store) as conn:
            conn.execute(delete(confirmations).where(confirmations.c.created_at < before))
            orphans = select(subscribers.c.id).where(subscribers.c.state == S.PENDING.value)
            orphans = orphans.where(
                ~select(confirmations.c.nonce)
                .where(confirmations.c.subscriber_id == subscribers.c.id)
                .exists()
            )
            ids = list(conn.execute(orphans).scalars())
            for i in range(0, len(ids), CHUNK):
                part = ids[i : i + CHUNK]
                conn.execute(delete(consents).where(consents.c.subscriber_id.in_(part)))
                conn.execute(delete(subscribers).where(subscribers.c.id.in_(part)))
            return len(ids)


def _insert(
    conn: Connection,
    subscriber: Subscriber,
    *,
    state: SubscriberState,
    source: str,
    now: datetime,
    consent: tuple[str, str, str, str] | None = None,
    **extra: Any,
) -> int:
    row = {
        "key": address_key(subscriber.email),
        "email": subscriber.email.strip(),
        "name": subscriber.name,
        "timezone": subscriber.timezone,
        "topics": topics_text(tuple(subscriber.topics)),
        "state": state.value,
        "paused_until": "",
        "source": source,
        "since": now if state is S.ACTIVE else "",
        "created_at": now,
        "updated_at": now,
        **extra,
    }
    key = conn.execute(insert(subscribers).values(**row)).inserted_primary_key
    assert key is not None  # an autoincrement insert always has one
    if consent:
        _consent(conn, int(key[0]), consent, now)
    return int(key[0])


def _consent(
    conn: Connection, subscriber_id: int, consent: tuple[str, str, str, str], at: datetime
) -> None:
    action, method, ip, text = consent
    conn.execute(
        insert(consents).values(
            subscriber_id=subscriber_id,
            at=at,
            action=action,
            method=method,
            ip=ip,
            text=text,
        )
    )


def _pending(r: Any) -> Pending:
    """A confirmations row as a Pending sign-up."""
    return Pending(
        r.nonce,
        r.subscriber_id,
        r.name,
        topics_of(r.topics),
        r.ip,
        r.text,
        r.created_at,
        r.timezone,
    )
