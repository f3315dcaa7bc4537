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

_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF|channel)[\s>]", re.IGNORECASE)
_HTML_ROOT = re.compile(rb"<(?:!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE)
FEED_TYPES = ("rss", "atom", "rdf", "/xml", "+xml")


def detect_kind(fetched: Fetched) -> str:
    """``feed``, ``jsonfeed`` or ``page`` for the body of ``fetched``.

    The body decides before the Content-Type does, since servers often send feeds as
    text/html or text/plain.
    """
    head = fetched.body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    ctype = fetched.headers.get("content-type", "").lower()
    if looks_like_jsonfeed(fetched.body):
        return "jsonfeed"
    if _FEED_ROOT.search(head) and not _HTML_ROOT.search(head[:512]):
        return "feed"
    if _HTML_ROOT.search(head) or "html" in ctype:
        return "page"
    if head.startswith(b"<?xml") or any(t in ctype for t in FEED_TYPES):
        return "feed"
    if "json" in ctype:
        return "jsonfeed"
    return "feed"  # feedparser's error names the problem best for anything else


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
