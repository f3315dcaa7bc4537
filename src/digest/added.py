"""A story the editor adds to an edition: fetched from its URL and read like a ``page``
source's article, or typed by hand (headline, link, teaser, optional image).

The fetch goes through the one hardened client (digest.http) under the sources' rules: a
loopback or private address is refused unless a configured source with ``allow_private``
lives at the same origin (scheme, host and port), so the desk cannot be made to read
the server's own network.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from digest.config import Settings
from digest.config.settings import SourceSettings
from digest.edits import HEADLINE_MAX, TEASER_MAX
from digest.exceptions import DigestError, FetchError, SourceError
from digest.http import Fetcher
from digest.models import Image, Story
from digest.normalize import canonical_url, safe_http_url, untrusted_story
from digest.sources.base import Fetched
from digest.sources.page import PageSource

SOURCE = "Added by the editor"


def _link(url: str, what: str) -> str:
    safe = safe_http_url(url)
    if safe is None:
        raise DigestError(f"{what} {url.strip()[:200]!r} is not an http(s) address; paste one")
    return safe


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default)


def private_allowed(url: str, sources: Sequence[SourceSettings]) -> bool:
    """Whether ``url`` may be on a private address: a configured allow_private source is
    at its origin (the editor's own intranet feed, a test server)."""
    return any(s.allow_private and _origin(s.url) == _origin(url) for s in sources)


def fetch_story(settings: Settings, url: str, *, now: datetime) -> Story:
    """The article at ``url`` as one story; DigestError naming the URL if it cannot be."""
    link = _link(url, "the story's address")
    allow = private_allowed(link, settings.sources)
    try:
        with Fetcher(settings=settings.fetch) as fetcher:
            response = fetcher.fetch(link, allow_private=allow)
        page = PageSource(name=SOURCE, url=link, mode="article", allow_private=allow)
        fetched = Fetched(
            url=response.url, body=response.body, headers=response.headers, fetched_at=now
        )
        stories = page.parse(fetched)
    except (FetchError, SourceError) as exc:
        raise DigestError(f"could not add the story: {exc}; add it by hand instead") from exc
    if not stories:
        raise DigestError(f"could not add {link}: no article found there; add it by hand")
    return untrusted_story(stories[0])  # third-party text, as every collected story


def hand_story(*, url: str, title: str, teaser: str, image: str, now: datetime) -> Story:
    """A story typed by the editor; the texts are checked as an edit's are."""
    link = canonical_url(_link(url, "the story's link"))
    headline = " ".join(title.split())
    if not headline:
        raise DigestError("a story added by hand needs a headline")
    if len(headline) > HEADLINE_MAX:
        raise DigestError(f"the headline is {len(headline)} characters; keep it to {HEADLINE_MAX}")
    text = " ".join(teaser.split())
    if len(text) > TEASER_MAX:
        raise DigestError(f"the teaser is {len(text)} characters; keep it to {TEASER_MAX}")
    picture = Image(_link(image, "the image address")) if image.strip() else None
    story = Story(
        url=link, title=headline, teaser=text, source=SOURCE, published=now, image=picture
    )
    return untrusted_story(story)  # typed by an editor, often pasted from elsewhere
