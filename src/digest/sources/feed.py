"""The "feed" source kind: RSS 0.9x, 1.0, 2.0 and Atom, parsed by feedparser."""

from __future__ import annotations

import io
import re
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

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
from digest.sources.bylines import FULL_TEXT_WORDS, byline, word_count
from digest.sources.images import first_inline_image, is_image

_XML_ENCODING = re.compile(r"""(^\s*<\?xml[^>]*?encoding\s*=\s*["'])[^"']*(["'])""")
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
        atom = str(result.get("version", "")).startswith("atom")
        # An Atom entry without an author has the feed's (RFC 4287, 4.2.1).
        channel = result.get("feed", {})
        inherited = byline(*(str(a.get("name") or "") for a in channel.get("authors", [])))
        site = urljoin(fetched.url, str(channel.get("link") or ""))
        return self.select(
            s
            for e in entries
            if (s := self._story(e, fetched, atom, inherited if atom else "", site)) is not None
        )

    def _story(
        self, entry: Any, fetched: Fetched, atom: bool, inherited: str, site: str
    ) -> Story | None:
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
        # Our own parser first: feedparser reads a zone it does not know ("IST") as UTC.
        # dict.get: feedparser's own get() maps a missing "updated" to "published" with a
        # DeprecationWarning.
        published, undated = parse_date(
            dict.get(entry, "published") or dict.get(entry, "updated"),
            fallback=fetched.fetched_at,
        )
        if undated:
            published, undated = parse_date(
                dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed"),
                fallback=fetched.fetched_at,
            )
        link_base = urljoin(fetched.url, link)
        return Story(
            url=url,
            title=title,
            teaser=teaser,
            source=self.name,
            published=published,
            section=self.section or _first_category(entry),
            image=_image(entry, _content_base(entry, fetched.url, link_base, site), caption),
            undated=undated,
            weight=self.weight,
            author=_author(entry, atom) or _credited_author(entry) or inherited,
            word_count=_full_text_words(entry, caption),
        )


def _content_base(entry: Any, feed_url: str, link_base: str, site: str) -> str:
    """What relative URLs in an item's HTML are relative to: the xml:base the feed declares
    for that content, else the item's link, unless that link goes to another site (a link
    blog's item points at the story it quotes), when it says nothing about where the feed's
    own images live and the feed's site is the base."""
    for detail in [*entry.get("content", []), entry.get("summary_detail") or {}]:
        # feedparser reports Content-Location (the feed's URL) when nothing is declared.
        declared = str(detail.get("base") or "")
        if declared and declared != feed_url:
            return urljoin(feed_url, declared)
    own = {urlsplit(feed_url).hostname, urlsplit(site).hostname}
    return link_base if urlsplit(link_base).hostname in own else site


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


def _author(entry: Any, atom: bool) -> str:
    """dc:creator, RSS author ("jo@x.org (Jo Lee)") and Atom author/name, every one listed."""
    raw = str(entry.get("author") or "")
    authors = [a for a in entry.get("authors", []) if isinstance(a, dict)]
    if "@" in raw and not atom:
        # feedparser splits "address (name)" with a pattern that cuts long top-level domains
        # ("tom@news.example" -> name "ple (Tom"), so that author is read from its raw text.
        others = [str(a.get("name") or "") for a in authors if not a.get("email")]
        return byline(raw, *others)
    return byline(*(str(a.get("name") or "") for a in authors)) or byline(raw)


def _credited_author(entry: Any) -> str:
    """media:credit role="author" (video sites name the uploader so)."""
    return byline(
        *(
            str(c.get("content") or "")
            for c in entry.get("media_credit", [])
            if str(c.get("role") or "").lower() == "author"
        )
    )


def _content(entry: Any, caption: str) -> str:
    """content:encoded or Atom content (the full text where the feed carries it), else ""."""
    for item in entry.get("content", []):
        value = str(item.get("value") or "")
        if value and clean_text(value) != caption:
            return value
    return ""


def _full_text_words(entry: Any, caption: str) -> int:
    words = word_count(_content(entry, caption))
    return words if words >= FULL_TEXT_WORDS else 0


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
    inline = first_inline_image(_inline_html(entry), base)
    if inline is not None:
        return Image(url=inline.url, alt=inline.alt, credit=credit)
    return None


def _image_urls(entry: Any) -> list[str]:
    """Candidate image URLs, best first: media:content, media:thumbnail, enclosures (RSS 2.0
    and RSS 1.0's enc:enclosure), itunes:image (feedparser files an item's itunes:image as
    its ``image``)."""
    urls: list[str] = []
    for item in entry.get("media_content", []):
        url = str(item.get("url") or "")
        kind = str(item.get("type") or "")
        medium = str(item.get("medium") or "")
        if url and (is_image(kind, url) or medium == "image"):
            urls.append(url)
    urls.extend(str(i["url"]) for i in entry.get("media_thumbnail", []) if i.get("url"))
    for link in entry.get("links", []):
        href = str(link.get("href") or "")
        if link.get("rel") == "enclosure" and href and is_image(str(link.get("type") or ""), href):
            urls.append(href)
    # RSS 1.0's enclosure module (<enc:enclosure rdf:resource=... enc:type=...>, Craigslist).
    enc = dict.get(entry, "enc_enclosure")
    if isinstance(enc, dict):
        # The module says rdf:resource and enc:type; Craigslist writes them unprefixed.
        href = str(enc.get("rdf:resource") or enc.get("resource") or "")
        if href and is_image(str(enc.get("enc:type") or enc.get("type") or ""), href):
            urls.append(href)
    itunes = entry.get("image")
    if isinstance(itunes, dict) and (itunes.get("href") or itunes.get("url")):
        urls.append(str(itunes.get("href") or itunes.get("url")))
    # An RSS <image><url> inside an item (Medscape's feeds): feedparser leaves it as "href".
    stray = str(dict.get(entry, "href") or "").strip()
    if stray and is_image("", stray):
        urls.append(stray)
    return urls


def _inline_html(entry: Any) -> str:
    """The item's HTML (content, then summary), where its first real <img> may be."""
    values = [str(c.get("value") or "") for c in entry.get("content", [])]
    return "\n".join([*values, str(entry.get("summary") or "")])
