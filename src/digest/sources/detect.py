"""The "auto" source kind: sniff what a URL serves and parse it as feed, JSON Feed or page.

`digest collect URL` uses it, so trying a source runs the same parsers as configuring it.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from digest.models import Story
from digest.sources.base import Fetched, Source
from digest.sources.feed import FeedSource
from digest.sources.jsonfeed import JsonFeedSource, looks_like_jsonfeed
from digest.sources.page import PageSource

# Types that say what the body is; anything else (text/html, text/xml, text/plain, JSON,
# octet-stream...) is decided by the document's root element, since servers send feeds
# under all of those.
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/rss",
        "application/x-rss+xml",
    }
)
JSONFEED_TYPES = frozenset({"application/feed+json"})
FEED_ROOTS = frozenset({"rss", "feed", "rdf:rdf", "rdf", "channel"})
PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Before the root element: a BOM, blanks, the XML declaration and other processing
# instructions, comments, and a DOCTYPE (with an internal subset).
_PROLOG = re.compile(
    r"\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!doctype(?:[^\[>]|\[.*?\])*>)*", re.IGNORECASE | re.DOTALL
)
_ROOT = re.compile(r"<([A-Za-z_][\w.:-]*)")


def root_element(body: bytes) -> str:
    """The lower-cased name of the document's first element ("rss", "html"...), or ""."""
    head = body[:8192]
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            text = head[2:].decode(codec, "ignore")
            break
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    rest = text[_PROLOG.match(text).end() :]  # type: ignore[union-attr]
    found = _ROOT.match(rest)
    return found.group(1).lower() if found else ""


def detect_kind(fetched: Fetched) -> str:
    """``feed``, ``jsonfeed`` or ``page`` for ``fetched``: by a Content-Type that says
    which, else by the root element (``<rss>``, ``<feed>``, ``<rdf:RDF>``, ``<html>``) or
    a JSON object with a jsonfeed.org ``version``, else by the generic Content-Type."""
    media = fetched.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in FEED_TYPES:
        return "feed"
    if media in JSONFEED_TYPES:
        return "jsonfeed"
    root = root_element(fetched.body)
    if root in FEED_ROOTS:
        return "feed"
    if root == "html":
        return "page"
    if looks_like_jsonfeed(fetched.body):
        return "jsonfeed"
    if media in PAGE_TYPES or (root and "xml" not in media and root in _HTML_ELEMENTS):
        return "page"
    if "json" in media:
        return "jsonfeed"
    return "feed"  # feedparser's error names the problem best for anything else


# Elements a page without <html> may start with (browsers add the missing <html>).
_HTML_ELEMENTS = frozenset(
    {
        "head",
        "body",
        "meta",
        "title",
        "link",
        "div",
        "p",
        "main",
        "article",
        "header",
        "section",
        "h1",
        "script",
        "style",
    }
)


class AutoSource(Source):
    """A source whose kind is detected from each response; no options of its own."""

    kind: ClassVar[str] = "auto"
    options: ClassVar[frozenset[str]] = frozenset()
    kinds: ClassVar[dict[str, type[Source]]] = {
        "feed": FeedSource,
        "jsonfeed": JsonFeedSource,
        "page": PageSource,
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kwargs = kwargs

    def parse(self, fetched: Fetched) -> list[Story]:
        return self.kinds[detect_kind(fetched)](**self._kwargs).parse(fetched)
