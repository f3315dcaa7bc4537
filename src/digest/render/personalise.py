"""Per-recipient composition: each reader's approved variant, made into wire bytes cheaply.

MJML and CSS inlining ran once per variant at build time; here only the placeholders (name,
address, signed unsubscribe and preference links, view-in-browser link, why they get this),
Date and Message-ID are filled in per recipient.
"""

from __future__ import annotations

import functools
import itertools
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.backends.base import Envelope
from digest.models import Edition, Publication, Subscriber, Variant
from digest.render.dates import date_label
from digest.render.message import PreparedMessage, Recipient
from digest.render.message import sender_address as envelope_sender
from digest.render.variants import ALL, approved_variant
from digest.tokens import Signer, unsubscribe_url


class EnvelopeFactory(Protocol):
    """One subscriber -> (wire bytes, content hash of the variant they carry), or None when
    the subscriber gets nothing from this edition (no story in their topics). A resend
    passes the ``message_id`` the ledger kept, so every copy carries the same one."""

    def __call__(
        self, subscriber: Subscriber, now: datetime, message_id: str | None = None
    ) -> tuple[Envelope, str] | None: ...


@dataclass(frozen=True, slots=True)
class Footer:
    """One reader's footer values: their signed preference link and why they get this."""

    preferences_url: str = ""
    reason: str = ""
    signed_up: str = ""


@dataclass(frozen=True, slots=True)
class Personaliser:
    """Turns one subscriber into wire bytes; built once per edition variant.

    ``view_url`` is the edition's archive page; ``about`` gives each reader's Footer (a
    lookup by key, made by the wiring), and previews without it get placeholder links.
    """

    prepared: PreparedMessage
    publication: Publication
    signer: Signer | None
    sender: str = ""  # the SMTP envelope sender, parsed once from publication.sender
    domain: str = ""  # the Message-ID domain, parsed once
    view_url: str = ""
    # Each message's own envelope sender (returnpath.ReturnPaths.address), or None for
    # ``sender``: a bounce then names its message even when it quotes nothing of it.
    return_path: Callable[[str], str] | None = None
    about: Callable[[Subscriber], Footer] | None = None
    _base: str = field(default="", init=False, repr=False)  # base_url without a final "/"
    # Message-IDs: 96 random bits once, then a counter (unique without a syscall each).
    _ids: Iterator[int] = field(default_factory=itertools.count, init=False, repr=False)
    _prefix: str = field(default_factory=lambda: secrets.token_hex(12), init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.sender:
            object.__setattr__(self, "sender", envelope_sender(self.publication))
        if not self.domain:
            object.__setattr__(self, "domain", self.publication.sender_domain)
        object.__setattr__(self, "_base", self.publication.base_url.rstrip("/"))

    def envelope(
        self, subscriber: Subscriber, *, now: datetime, message_id: str | None = None
    ) -> Envelope:
        base = self._base
        url = (
            unsubscribe_url(base, self.signer, subscriber.email)
            if self.signer
            else f"{base}/u/preview"
        )
        # personalise() checks the Message-ID, ours and a kept one alike.
        message_id = message_id or f"<{self._prefix}.{next(self._ids):x}@{self.domain}>"
        footer = self.about(subscriber) if self.about is not None else Footer()
        recipient = Recipient(
            email=subscriber.email,
            name=subscriber.name,
            unsubscribe_url=url,
            view_url=self.view_url or f"{base}/archive/",
            preferences_url=footer.preferences_url or f"{base}/p/preview",
            reason=footer.reason,
            signed_up=footer.signed_up,
            date_line=local_date_line(now, subscriber.timezone or self.publication.timezone),
        )
        data = self.prepared.personalise(recipient, date=now, message_id=message_id)
        sender = self.return_path(message_id) if self.return_path else self.sender
        return Envelope(sender, subscriber.email, data, message_id, dot_safe=True)


@functools.lru_cache(maxsize=1024)
def local_date_line(now: datetime, zone: str) -> str:
    """The date line of a message sent at ``now`` to a reader in ``zone``: their local date.

    A send stamps thousands of messages with the same few zones and seconds: cached."""
    try:
        tz = ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        tz = ZoneInfo("UTC")  # checked at sync; a stored zone that went away reads as UTC
    return date_label(now.astimezone(tz).date())


def envelope_factory(
    edition: Edition,
    variants: Sequence[Variant],
    personaliser: Callable[[Edition], Personaliser],
    *,
    keep_lead: bool,
) -> EnvelopeFactory:
    """The send engine's hook: each subscriber gets an approved variant, or None (skipped).

    One Personaliser per variant, made on first use and kept for the run; the whole
    edition's is made at once so a missing secret fails before anything is sent.
    """
    whole = personaliser(edition), edition.rendered.content_hash
    makers: dict[str, tuple[Personaliser, str]] = {ALL: whole}
    # Readers share a handful of selections: choose once per selection, not per reader.
    chosen: dict[tuple[str, ...], tuple[Personaliser, str] | None] = {(): whole}

    def pick(topics: tuple[str, ...]) -> tuple[Personaliser, str] | None:
        found = approved_variant(edition, variants, topics, keep_lead=keep_lead)
        if found is None:
            return None
        key, rendered = found
        if key not in makers:
            makers[key] = personaliser(replace(edition, rendered=rendered)), rendered.content_hash
        return makers[key]

    def make(
        subscriber: Subscriber, now: datetime, message_id: str | None = None
    ) -> tuple[Envelope, str] | None:
        topics = subscriber.topics
        if topics not in chosen:
            chosen[topics] = pick(topics)
        maker = chosen[topics]
        if maker is None:
            return None
        return maker[0].envelope(subscriber, now=now, message_id=message_id), maker[1]

    return make
