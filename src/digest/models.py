"""Plain data passed between the stages: stories, subscribers, editions and deliveries."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Image:
    """An image attached to a story; every field but url may be empty."""

    url: str
    alt: str = ""
    caption: str = ""
    credit: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "alt": self.alt, "caption": self.caption, "credit": self.credit}


@dataclass(frozen=True, slots=True)
class Story:
    """One normalised item from a source.

    ``url`` is already canonical (see normalize.canonical_url); ``published`` is aware UTC.
    ``teaser`` is plain text. ``undated`` is true when the source gave no date and
    ``published`` is the fetch time.
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
            image=Image(**image) if image else None,
            undated=bool(data.get("undated", False)),
            weight=float(data.get("weight", 1.0)),
            also_in=tuple(data.get("also_in", ())),
        )


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A recipient. ``topics`` empty means every section."""

    email: str
    name: str = ""
    timezone: str = ""
    topics: tuple[str, ...] = ()


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
    render.placeholders; they are filled per recipient at send time.
    """

    subject: str
    preheader: str
    html: str
    text: str

    @property
    def content_hash(self) -> str:
        import hashlib

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
