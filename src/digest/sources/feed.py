"""The "feed" source kind: RSS 0.9x, 1.0, 2.0 and Atom, parsed by feedparser."""

from __future__ import annotations

import io
import re
from typing import Any, ClassVar
from urllib.parse import urljoin

from digest.charsets import decode_xml
from digest.exceptions import SourceError
from digest.models import Image, Story
from digest.normalize import (
    canonical_url,
    clean_text,
    cut_teaser,
    drop_leading,
    parse_date,
    safe_http_url,
)
from digest.sources.base import Fetched, Source

_XML_ENCODING = re.compile(r"""(^\s*<\?xml[^>]*?encoding\s*=\s*["'])[^"']*(["'])""")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
TITLE_FROM_TEASER = 100


class FeedSource(Source):
    """Stories from an RSS or Atom feed; no options beyond the common ones."""

    kind: ClassVar[str] = "feed"
    options: ClassVar[frozenset[str]] = frozenset()

    def parse(self, fetched: Fetched) -> list[Story]:
        if not fetched.body.strip():
            raise SourceError(f"{self.name}: empty response from {fetched.url}")
        original = {k.lower(): v for k, v in fetched.headers.items()}
        headers = dict(original)
        # feedparser resolves relative links inside content against Content-Location.
        headers.setdefault("content-location", fetched.url)
        # Decoded here (BOM, HTTP charset, XML declaration, then detection), then handed
        # over as UTF-8 that says so, so feedparser's own charset guess never runs.
        text = fetched.decoded(decode_xml(fetched.body, fetched.headers))
        text = _XML_ENCODING.sub(r"\1utf-8\2", text, count=1)
        media = original.get("content-type", "").split(";", 1)[0].strip().lower()
        if "xml" not in media and "rss" not in media and "atom" not in media:
            media = "application/xml"
        headers["content-type"] = f"{media}; charset=utf-8"
        # A stream, never str or bytes: feedparser fetches a str URL and open()s a str or
        # bytes that name a local file, so a body reading "/etc/passwd" would be read from disk.
        body = io.BytesIO(text.encode("utf-8"))
        # Relative links inside HTML content are not resolved: every such field becomes
        # plain text (clean_text drops the markup), so it was work for nothing.
        import feedparser  # on first use: ~15 MB that a sending process never needs

        result = feedparser.parse(body, response_headers=headers, resolve_relative_uris=False)
        entries = result.get("entries", [])
        if not entries:
            if not result.get("version"):
                raise SourceError(
                    f"{self.name}: {fetched.url} is not an RSS or Atom feed"
                    f" (content-type {original.get('content-type', 'unknown')!r})"
                )
            if result.get("bozo") and not result.get("feed", {}).get("title"):
                reason = result.get("bozo_exception", "unreadable XML")
                raise SourceError(f"{self.name}: malformed feed at {fetched.url} ({reason})")
        return self.select(s for e in entries if (s := self._story(e, fetched)) is not None)

    def _story(self, entry: Any, fetched: Fetched) -> Story | None:
        link = _entry_link(entry)
        url = safe_http_url(canonical_url(link, base=fetched.url)) if link else None
        if url is None:
            return None
        caption = _media_caption(entry)
        teaser = drop_leading(clean_text(_summary(entry, caption)), caption)
        teaser = cut_teaser(teaser, self.teaser_length)
        title = clean_text(entry.get("title", ""))
        if not title:
            title = cut_teaser(teaser, TITLE_FROM_TEASER)
        if not title:
            return None
        published, undated = parse_date(
            entry.get("published_parsed")
            or entry.get("updated_parsed")
            or entry.get("published")
            or entry.get("updated"),
            fallback=fetched.fetched_at,
        )
        return Story(
            url=url,
            title=title,
            teaser=teaser,
            source=self.name,
            published=published,
            section=self.section or _first_category(entry),
            image=_image(entry, fetched.url, caption),
            undated=undated,
            weight=self.weight,
        )


def _entry_link(entry: Any) -> str:
    link = entry.get("link") or ""
    if link:
        return str(link)
    for item in entry.get("links", []):
        if item.get("rel", "alternate") == "alternate" and item.get("href"):
            return str(item["href"])
    # An RSS guid is a permalink unless isPermaLink="false".
    if entry.get("guidislink") and entry.get("id"):
        return str(entry["id"])
    return ""


def _media_caption(entry: Any) -> str:
    """media:description; feedparser files it under content as text/plain after a summary."""
    if not (entry.get("media_content") or entry.get("media_thumbnail")):
        return ""
    for item in entry.get("content", []):
        if item.get("type") == "text/plain" and item.get("value"):
            return clean_text(str(item["value"]))
    return ""


def _summary(entry: Any, caption: str) -> str:
    summary = entry.get("summary") or ""
    if summary:
        return str(summary)
    # content:encoded or Atom content, skipping the media caption feedparser stores there.
    for item in entry.get("content", []):
        value = str(item.get("value") or "")
        if value and clean_text(value) != caption:
            return value
    return caption


def _first_category(entry: Any) -> str:
    for tag in entry.get("tags", []):
        term = clean_text(str(tag.get("term") or tag.get("label") or ""))
        if term:
            return term
    return ""


def _image(entry: Any, base: str, caption: str) -> Image | None:
    credit = ""
    for item in entry.get("media_credit", []):
        credit = clean_text(str(item.get("content") or ""))
        if credit:
            break
    for url in _image_urls(entry):
        absolute = safe_http_url(urljoin(base, url.strip()))
        if absolute is not None:
            return Image(url=absolute, alt=caption, caption=caption, credit=credit)
    return None


def _image_urls(entry: Any) -> list[str]:
    """Candidate image URLs, best first: media:content, media:thumbnail, enclosures."""
    urls: list[str] = []
    for item in entry.get("media_content", []):
        url = str(item.get("url") or "")
        kind = str(item.get("type") or "")
        medium = str(item.get("medium") or "")
        if url and (_is_image(kind, url) or medium == "image"):
            urls.append(url)
    urls.extend(str(i["url"]) for i in entry.get("media_thumbnail", []) if i.get("url"))
    for link in entry.get("links", []):
        href = str(link.get("href") or "")
        if link.get("rel") == "enclosure" and href and _is_image(str(link.get("type") or ""), href):
            urls.append(href)
    return urls


def _is_image(kind: str, url: str) -> bool:
    if kind:
        return kind.lower().startswith("image/")
    return url.lower().split("?", 1)[0].endswith(IMAGE_SUFFIXES)
