"""Plain data passed between the stages: stories, subscribers, editions and deliveries."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from digest.schema import setting


@dataclass(frozen=True, slots=True)
class Rendition:
    """Our own resized copy of a story image for one ``role`` (``lead``, ``thumb``).

    ``width`` and ``height`` are the display size in CSS pixels; the file has twice as many
    pixels each way (retina screens).
    """

    role: str
    url: str
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "url": self.url, "width": self.width, "height": self.height}


@dataclass(frozen=True, slots=True)
class Image:
    """An image attached to a story; every field but url may be empty.

    ``renditions`` are set at build time when the images are ours (``images.mode: own``).
    """

    url: str
    alt: str = ""
    caption: str = ""
    credit: str = ""
    renditions: tuple[Rendition, ...] = ()

    def rendition(self, role: str) -> Rendition | None:
        return next((r for r in self.renditions if r.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": self.url,
            "alt": self.alt,
            "caption": self.caption,
            "credit": self.credit,
        }
        if self.renditions:
            out["renditions"] = [r.to_dict() for r in self.renditions]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Image:
        renditions = tuple(Rendition(**r) for r in data.get("renditions", ()))
        return cls(
            url=data["url"],
            alt=data.get("alt", ""),
            caption=data.get("caption", ""),
            credit=data.get("credit", ""),
            renditions=renditions,
        )


@dataclass(frozen=True, slots=True)
class Coverage:
    """Another story of the same real-world event, listed under the one that leads it."""

    source: str
    url: str
    title: str
    published: datetime

    def to_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "url": self.url,
            "title": self.title,
            "published": self.published.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Coverage:
        return cls(
            source=data["source"],
            url=data["url"],
            title=data["title"],
            published=datetime.fromisoformat(data["published"]),
        )


@dataclass(frozen=True, slots=True)
class Story:
    """One normalised item from a source.

    ``url`` is already canonical (see normalize.canonical_url); ``published`` is aware UTC.
    ``teaser`` is plain text. ``undated`` is true when the source gave no date and
    ``published`` is the fetch time. ``author``, ``word_count`` (0: unknown) and ``language``
    (a BCP 47 tag such as "ar" or "zh-Hant", "" when unknown) are set when the source says.
    ``coverage`` is the other stories of the same event, set by ranking when it groups them
    (``also_in`` names their sources). ``short_title`` is a shorter headline the source
    itself gives ("" when it gives none; see render.frame.short_headline).
    """

    url: str
    title: str
    teaser: str
    source: str
    published: datetime
    section: str = ""
    image: Image | None = None
    undated: bool = False
    weight: float = 1.0
    also_in: tuple[str, ...] = ()
    author: str = ""
    word_count: int = 0
    language: str = ""
    coverage: tuple[Coverage, ...] = ()
    short_title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "title": self.title,
            "teaser": self.teaser,
            "source": self.source,
            "published": self.published.isoformat(),
            "section": self.section,
            "image": self.image.to_dict() if self.image else None,
            "undated": self.undated,
            "weight": self.weight,
            "also_in": list(self.also_in),
            "author": self.author,
            "word_count": self.word_count,
            "language": self.language,
            "coverage": [c.to_dict() for c in self.coverage],
            "short_title": self.short_title,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Story:
        image = data.get("image")
        return cls(
            url=data["url"],
            title=data["title"],
            teaser=data["teaser"],
            source=data["source"],
            published=datetime.fromisoformat(data["published"]),
            section=data.get("section", ""),
            image=Image.from_dict(image) if image else None,
            undated=bool(data.get("undated", False)),
            weight=float(data.get("weight", 1.0)),
            also_in=tuple(data.get("also_in", ())),
            # Editions stored before these fields existed lack them.
            author=data.get("author", ""),
            word_count=int(data.get("word_count", 0)),
            language=data.get("language", ""),
            coverage=tuple(Coverage.from_dict(c) for c in data.get("coverage", ())),
            short_title=data.get("short_title", ""),
        )


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A recipient. ``topics`` empty means every section."""

    email: str
    name: str = ""
    timezone: str = ""
    topics: tuple[str, ...] = ()


class SubscriberState(enum.StrEnum):
    """Where a reader stands; only ACTIVE (and PAUSED once its date has passed) gets mail.

    UNSUBSCRIBED, BOUNCED and COMPLAINED are never made active again by a file sync, an
    import or an editor: only the reader, through a new double opt-in. REMOVED is an address
    that left the subscriber file under ``subscribers_sync: mirror``.
    """

    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    REMOVED = "removed"

    @property
    def opted_out(self) -> bool:
        """The reader (or their mail server) said no: nothing but the reader undoes it."""
        return self in (
            SubscriberState.UNSUBSCRIBED,
            SubscriberState.BOUNCED,
            SubscriberState.COMPLAINED,
        )


@dataclass(frozen=True, slots=True)
class Publication:
    """Who publishes the digest (config ``publication``); domain and list id default from
    the sender."""

    name: str = setting(doc="The publication's name.")
    sender: str = setting(doc="The From address.")
    base_url: str = setting(doc="Public https URL of `digest serve`.")
    postal_address: str = setting("", "Postal address for the footer.")
    reply_to: str = setting("", "Reply-To address.")
    domain: str = setting("", "Domain for Message-IDs (default: the sender's).")
    list_id: str = setting("", "The List-Id header (default: name slug and domain).")
    language: str = setting("en", "The lang of the HTML.")
    timezone: str = setting("UTC", "IANA zone for dates in the email.")
    privacy_url: str = setting("", "Privacy policy URL, linked from reader pages and mails.")

    @property
    def sender_domain(self) -> str:
        """The Message-ID domain: ``domain`` if set, else the sender's domain."""
        if self.domain:
            return self.domain
        return parseaddr(self.sender)[1].rpartition("@")[2].lower()

    @property
    def effective_list_id(self) -> str:
        """``list_id`` if set, else "<slug of name>.<domain>" (RFC 2919)."""
        if self.list_id:
            return self.list_id
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "digest"
        return f"{slug}.{self.sender_domain}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A story with its score, the factors behind it, and why it was kept or dropped.

    ``position`` is the kept story's 1-based place in the edition (1 is the lead), else 0.
    """

    story: Story
    score: float
    factors: dict[str, float] = field(default_factory=dict)
    kept: bool = False
    reason: str = ""
    position: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "story": self.story.to_dict(),
            "score": self.score,
            "factors": dict(self.factors),
            "kept": self.kept,
            "reason": self.reason,
            "position": self.position,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(
            story=Story.from_dict(data["story"]),
            score=float(data["score"]),
            factors={k: float(v) for k, v in data["factors"].items()},
            kept=bool(data["kept"]),
            reason=str(data["reason"]),
            position=int(data.get("position", 0)),
        )


class EditionState(enum.StrEnum):
    """The lifecycle of an edition; allowed moves live in approval.TRANSITIONS."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    # A newer edition was built for the same slot; this one is never sent.
    SUPERSEDED = "superseded"

    @property
    def final(self) -> bool:
        """Nothing more can happen to an edition in this state."""
        return self in (
            EditionState.SENT,
            EditionState.REJECTED,
            EditionState.EXPIRED,
            EditionState.SUPERSEDED,
        )


class DeliveryState(enum.StrEnum):
    """The state of one edition x subscriber row in the delivery ledger."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"
    # An interrupted run left the row in flight and `in_doubt: skip` chose not to resend it.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RenderedEdition:
    """What an edition looks like once rendered: frozen, hashed, shared by all recipients.

    ``html`` and ``text`` still contain the personalisation placeholders of
    render.placeholders, spelled with ``marker`` (random per rendering; "" in editions
    rendered before markers existed); they are filled per recipient at send time. The
    marker is inside ``html`` and ``text``, so the content hash covers it.
    """

    subject: str
    preheader: str
    html: str
    text: str
    marker: str = ""

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.subject, self.preheader, self.html, self.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Edition:
    """One issue of the digest for one slot, as stored."""

    id: int
    slot: str
    state: EditionState
    revision: int
    stories: tuple[Story, ...]
    rendered: RenderedEdition
    created_at: datetime
    content_hash: str = ""
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Variant:
    """The edition rendered for one topic selection; ``key`` is render.variants.variant_key."""

    key: str
    stories: tuple[Story, ...]
    rendered: RenderedEdition

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(json.loads(self.key))


def edition_hash(rendered: RenderedEdition, variants: Iterable[Variant] = ()) -> str:
    """What an approval covers: the whole edition and every topic variant, byte for byte.

    Without variants it is the whole edition's own hash, as editions always had.
    """
    parts = sorted((v.key, v.rendered.content_hash) for v in variants)
    if not parts:
        return rendered.content_hash
    h = hashlib.sha256(b"edition+variants\x00" + rendered.content_hash.encode())
    for key, value in parts:
        h.update(f"\x00{key}\x00{value}".encode())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored state change of an edition (or a new revision: from == to)."""

    edition_id: int
    from_state: EditionState
    to_state: EditionState
    actor: str
    via: str
    at: datetime
    revision: int
    content_hash: str
    note: str = ""
