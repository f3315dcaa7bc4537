"""What editors do to the list by hand: add, remove, show (GDPR access), erase, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.addresses import normalise_address
from digest.exceptions import AddressError, ConfigError, DigestError
from digest.models import Subscriber, SubscriberState
from digest.render.message import clean_name
from digest.store import Store, personal
from digest.store.bounces import BounceStore, Policy
from digest.store.subscribers import Record, SubscriberStore, address_key
from digest.subscribers.files import entries

S = SubscriberState
BY_EDITOR = "added by an editor with `digest subscribers add`"


def _checked(email: str) -> str:
    try:
        return normalise_address(email)
    except AddressError as exc:
        raise ConfigError(str(exc)) from None


def add(
    store: Store,
    email: str,
    *,
    name: str | None,
    topics: Sequence[str] | None,
    timezone: str | None,
    now: datetime,
) -> Record:
    """Subscribe ``email`` (or update them); never someone who opted out or was erased."""
    email = _checked(email)
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {timezone!r} (use an IANA name)") from None
    subs = SubscriberStore(store)
    record = subs.get(email)
    if record is None and subs.is_erased(email):
        raise DigestError(
            f"{email} was erased on request and is never added again; only the reader can "
            "subscribe again, through the sign-up form"
        )
    if record is not None and record.state.opted_out:
        raise DigestError(
            f"{email} is {record.state}; only the reader can subscribe again, through the "
            "sign-up form (nothing was changed)"
        )
    consent = ("subscribe", "cli", "", BY_EDITOR)
    if record is None:
        sub = Subscriber(email, clean_name(name or ""), timezone or "", tuple(topics or ()))
        subs.create(sub, state=S.ACTIVE, source="cli", now=now, consent=consent)
    else:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = clean_name(name)
        if topics is not None:
            values["topics"] = tuple(topics)
        if timezone is not None:
            values["timezone"] = timezone
        if record.state in (S.PENDING, S.REMOVED):
            values.update(state=S.ACTIVE, since=now)
        subs.change(record.id, now=now, consent=consent if "state" in values else None, **values)
    found = subs.get(email)
    assert found is not None  # just written
    return found


def _stored(email: str) -> str:
    """The form ``email`` is stored in (an IDN domain as punycode); as given if invalid, so
    an address stored before the check can still be found."""
    try:
        return normalise_address(email)
    except AddressError:
        return email.strip()


def remove(store: Store, email: str, *, now: datetime) -> Record:
    """Unsubscribe ``email`` on their behalf: suppressed, so no sync adds them again."""
    email = _stored(email)
    subs = SubscriberStore(store)
    if subs.get(email) is None:
        raise DigestError(f"{email.strip()} is not on the list; `digest subscribers list` shows it")
    done = subs.opt_out(
        email,
        reason="unsubscribed: removed by an editor",
        now=now,
        consent=("unsubscribe", "cli", "", "removed by an editor"),
    )
    assert done is not None
    return done


def show(store: Store, email: str) -> dict[str, Any]:
    """Everything digest holds about one address (a GDPR access request)."""
    email = _stored(email)
    subs = SubscriberStore(store)
    record = subs.get(email)
    return {
        "email": email.strip(),
        "subscriber": record.to_dict() if record else None,
        "consents": subs.consents(record.id) if record else [],
        "pending_confirmations": [
            {
                "asked_at": p.created_at.isoformat(),
                "name": p.name,
                "topics": list(p.topics),
                "ip": p.ip,
                "text": p.text,
            }
            for p in (subs.pending_for(record.id) if record else [])
        ],
        "suppressed": subs.suppression(email),
        "bounces": BounceStore(store, Policy()).events(email),
        "erased": subs.is_erased(email),
        "deliveries": personal.deliveries_for(store, email),
    }


def erase(
    store: Store, email: str, *, now: datetime, subscriber_file: Path | None = None
) -> tuple[dict[str, int], int | None]:
    """Delete every personal datum about ``email``, keep its hash; and the line where the
    subscriber file still lists it (the file is the editor's to fix), if it does."""
    email = _stored(email)
    counts = personal.erase(store, email, now=now)
    line = None
    if subscriber_file is not None and subscriber_file.exists():
        key = address_key(email)
        try:
            line = next(
                (n for n, s in entries(subscriber_file) if address_key(s.email) == key), None
            )
        except ConfigError:
            line = None
    return counts, line


def export(store: Store, *, as_json: bool) -> Iterator[str]:
    """The list, streamed: CSV of the readers who get editions (a subscriber file, ready to
    import), or JSON of every subscriber with state and origin."""
    subs = SubscriberStore(store)
    if as_json:
        yield "["
        first = True
        for record in subs.listing():
            yield ("\n" if first else ",\n") + json.dumps(record.to_dict(), ensure_ascii=False)
            first = False
        yield "\n]\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email", "name", "timezone", "topics"])
    for record in subs.listing([S.ACTIVE, S.PAUSED]):
        writer.writerow([record.email, record.name, record.timezone, ";".join(record.topics)])
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
