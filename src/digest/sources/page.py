"""The "page" source kind: an article page (one story) or a front page of teaser cards.

Options (all optional): ``mode`` (``auto``, ``article`` or ``front``) and CSS selectors
``item`` (one per teaser card; setting it means ``front``), then, inside each item,
``link``, ``title``, ``teaser``, ``image``, ``caption`` and ``credit``. In ``auto`` mode a
page marked as an article (JSON-LD or og:type) is one story; otherwise ``<article>`` cards
with a headline link are teasers; otherwise the page's title and description are one story.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import urlsplit

from cssselect import SelectorError
from lxml.cssselect import CSSSelector

from digest.charsets import decode_html
from digest.exceptions import ConfigError, SourceError
from digest.models import Image, Story
from digest.normalize import (
    canonical_url,
    clean_text,
    cut_teaser,
    drop_leading,
    parse_date,
    safe_http_url,
)
from digest.sources.article import Extracted, body_teaser, extract, short_title_of, title_of
from digest.sources.base import Fetched, Source
from digest.sources.bylines import FULL_TEXT_WORDS, byline, word_count
from digest.sources.htmlmeta import ArticleMeta, article_meta, drop_unsafe, json_ld, parse_html

SELECTORS = ("item", "link", "title", "teaser", "image", "caption", "credit")
MODES = ("auto", "article", "front")
# Defaults inside an item when its selector is not configured, tried in this order (a
# selector list would match in document order, finding a thumbnail's link before the
# headline's).
DEFAULTS = {
    "link": ("h1 a[href], h2 a[href], h3 a[href], h4 a[href]", "a[href]"),
    "title": ("h1", "h2", "h3", "h4"),
    "teaser": ("p",),
    "image": ("img",),
    "caption": ("figcaption",),
    "credit": (".credit", "[class*=credit]", "[itemprop=copyrightHolder]"),
}
AUTO_ITEM = "article"


class PageSource(Source):
    """Stories from an HTML page; see the module docstring for the options."""

    kind: ClassVar[str] = "page"
    options: ClassVar[frozenset[str]] = frozenset({"mode", *SELECTORS})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = str(self.extra.get("mode", "auto"))
        if self.mode not in MODES:
            raise ConfigError(
                f"source {self.name!r} (page): mode must be one of {', '.join(MODES)}"
            )
        self.selectors: dict[str, list[CSSSelector]] = {}
        for key in SELECTORS:
            values = (self.extra[key],) if key in self.extra else DEFAULTS.get(key, (AUTO_ITEM,))
            try:
                self.selectors[key] = [CSSSelector(str(v)) for v in values]
            except SelectorError as exc:
                raise ConfigError(
                    f"source {self.name!r} (page): {key} selector {values[0]!r} is invalid ({exc})"
                ) from exc
        if "item" in self.extra and self.mode == "auto":
            self.mode = "front"

    def parse(self, fetched: Fetched) -> list[Story]:
        if not fetched.body.strip():
            raise SourceError(f"{self.name}: empty response from {fetched.url}")
        text = fetched.decoded(decode_html(fetched.body, fetched.headers))
        doc = parse_html(text, fetched.headers, f"{self.name}: {fetched.url}")
        meta = article_meta(doc, json_ld(doc))
        drop_unsafe(doc)
        moved = _moved(doc, meta)
        if moved is not None:
            where = f" to {moved}" if moved else ""
            raise SourceError(
                f"{self.name}: {fetched.url} is a redirect page{where}, not an article;"
                " set the source's url to where it points"
            )
        mode = self.mode
        cards: list[Any] = []
        if mode != "article":
            cards = [c for c in self._find(doc, "item") if self._links(c)]
            if mode == "auto":
                mode = _auto_mode(doc, cards, meta, fetched.url)
                if mode == "article" and len(cards) >= 2 and not meta.is_article:
                    fetched.warn(
                        f"{self.name}: {fetched.url} was read as one article although it has"
                        f" {len(cards)} teaser cards; set mode: front (or article) to choose"
                    )
        if mode == "front":
            stories = [s for c in cards if (s := self._card(c, fetched)) is not None]
            dropped = len(cards) - len(stories)
            if dropped:
                fetched.warn(
                    f"{self.name}: {dropped} teaser card(s) at {fetched.url} have no headline"
                    " or link text and were skipped; set the page source's title selector"
                )
            if not stories:
                raise SourceError(
                    f"{self.name}: no teaser items with a link found at {fetched.url}"
                    f" (item selector {self.extra.get('item', AUTO_ITEM)!r})"
                )
            return self.select(stories)
        story = self._article(meta, fetched, text)
        if story is None:
            raise SourceError(
                f"{self.name}: {fetched.url} has no article title (JSON-LD, OpenGraph or"
                " <title>) and no teaser cards; set the page source's item selector"
            )
        return self.select([story])

    def _article(self, meta: ArticleMeta, fetched: Fetched, text: str) -> Story | None:
        extracted: Extracted | None = None

        def extraction() -> Extracted:  # trafilatura only for what the page does not say
            nonlocal extracted
            if extracted is None:
                extracted = extract(text, fetched.url)
            return extracted

        title = clean_text(title_of(meta, fetched.url))
        if not title:
            title = clean_text(title_of(meta, fetched.url, extraction().title))
        if not title:
            return None
        teaser = clean_text(meta.teaser)
        if not teaser:
            teaser = clean_text(body_teaser(extraction().paragraphs, title))
            if teaser:
                fetched.fallback("teaser from the article's text (no description)")
        url = safe_http_url(canonical_url(meta.url, base=fetched.url)) if meta.url else None
        url = url or canonical_url(fetched.url)
        image = None
        src = safe_http_url(canonical_url(meta.image, base=fetched.url)) if meta.image else None
        if src:
            caption = clean_text(meta.caption)
            image = Image(src, clean_text(meta.image_alt), caption, clean_text(meta.credit))
        published, undated = parse_date(meta.published or None, fallback=fetched.fetched_at)
        if undated:
            published, undated = parse_date(extraction().date or None, fallback=published)
        author = byline(*meta.authors) or next(
            (b for name in meta.meta_authors if (b := byline(name))), ""
        )
        words = meta.word_count
        if not words and extracted is not None:  # counted only when it was read anyway
            words = word_count(" ".join(extracted.paragraphs))
        return Story(
            url=url,
            title=title,
            teaser=cut_teaser(teaser, self.teaser_length),
            source=self.name,
            published=published,
            section=self.section or clean_text(meta.section),
            image=image,
            undated=undated,
            weight=self.weight,
            author=author,
            word_count=words if words >= FULL_TEXT_WORDS else 0,
            short_title=clean_text(short_title_of(meta, fetched.url, title)),
        )

    def _find(self, el: Any, key: str) -> list[Any]:
        """Matches of the first of ``key``'s selectors that matches anything in ``el``."""
        for selector in self.selectors[key]:
            found: list[Any] = selector(el)
            if found:
                return found
        return []

    def _links(self, card: Any) -> list[Any]:
        return [el for el in self._find(card, "link") if el.get("href")]

    def _card(self, card: Any, fetched: Fetched) -> Story | None:
        links = self._links(card)
        href = str(links[0].get("href")) if links else ""
        url = safe_http_url(canonical_url(href, base=fetched.url)) if href else None
        if url is None:
            return None
        # Cards without a heading: the link's text, any link's text, its title or aria-label,
        # else the alt text of the card's image.
        title = self._text(card, "title") or next(
            (
                t
                for el in (links[0], *card.iter("a"))
                for t in (
                    clean_text(el.text_content()),
                    clean_text(el.get("title") or ""),
                    clean_text(el.get("aria-label") or ""),
                )
                if t
            ),
            "",
        )
        if not title:
            title = next(
                (t for el in card.iter("img") if (t := clean_text(el.get("alt") or ""))), ""
            )
        if not title:
            return None
        credit = self._text(card, "credit")
        caption = self._text(card, "caption")
        if credit and caption.endswith(credit) and caption != credit:
            caption = caption[: -len(credit)].rstrip(" ,;:|/–—-")  # a credit inside figcaption
        image = None
        for el in self._find(card, "image"):
            # Lazy-loading pages put the real image in data-src and a placeholder in src.
            srcset = (el.get("srcset") or "").strip().split(" ")[0]
            for src in (el.get("data-src"), el.get("src"), srcset):
                absolute = safe_http_url(canonical_url(src, base=fetched.url)) if src else None
                if absolute:
                    image = Image(absolute, clean_text(el.get("alt") or ""), caption, credit)
                    break
            if image:
                break
        teaser = self._text(card, "teaser", skip_in=("figure", "figcaption", "header"))
        teaser = drop_leading(
            drop_leading(teaser, title), *(x for x in (image.alt if image else "", caption) if x)
        )
        times = card.xpath(".//time/@datetime")
        published, undated = parse_date(times[0] if times else None, fallback=fetched.fetched_at)
        return Story(
            url=url,
            title=title,
            teaser=cut_teaser(teaser, self.teaser_length),
            source=self.name,
            published=published,
            section=self.section,
            image=image,
            undated=undated,
            weight=self.weight,
        )

    def _text(self, card: Any, key: str, skip_in: tuple[str, ...] = ()) -> str:
        """Text of the ``key`` selector's matches in ``card``: the first for short fields,
        all of them joined for the teaser (a body of several paragraphs)."""
        matches = [
            el
            for el in self._find(card, key)
            if key in self.extra or not _inside(el, card, skip_in)
        ]
        if key != "teaser":
            matches = matches[:1]
        return clean_text(" ".join(el.text_content() for el in matches))


# A date, a long id, a wiki title or a slug of three words or more: one article's path.
# Underscores join the words of section names ("/news/world/us_and_canada"), so a slug of
# underscores needs five words to be an article's.
_ARTICLE_PATH = re.compile(
    r"/\d{4}/\d{1,2}/|\d{5,}|/wiki/.|[^/_-]+-[^/_-]+-[^/]+/?$"
    r"|/[^/_-]+(?:_[^/_-]+){4,}/?$"
)


def _article_url(url: str) -> bool:
    """Whether ``url`` looks like one article's (a date, an id, a slug), not a front page."""
    path = urlsplit(url).path
    return bool(path.strip("/")) and bool(_ARTICLE_PATH.search(path))


FRONT_CARDS = 4  # this many teaser cards make a front page, even with a lead in full
_MOVED = re.compile(
    r"^(?:document|object|page|resource|file)\s+(?:has\s+)?moved|moved\s+(?:permanently|temporarily)"
    r"|^(?:30[12378]\s+)?(?:found|see other|temporary redirect|permanent redirect)$|^redirect",
    re.IGNORECASE,
)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\";]+)", re.IGNORECASE)
STUB_TEXT = 600  # a redirect stub says little more than where to go


def _auto_mode(doc: Any, cards: list[Any], meta: ArticleMeta, url: str) -> str:
    """``front`` or ``article`` for a page in auto mode (see the module docstring)."""
    if len(cards) < 2 or meta.is_article or _article_url(url):
        return "article"
    # A front page may show its lead story in full above the cards: with enough cards the
    # prose is that lead, not an article the cards are "related" to, unless the page's
    # unlinked <h1> headline sits in it (the article's own <article>).
    if not _prose_outside(doc, cards):
        return "front"
    return "front" if len(cards) >= FRONT_CARDS and not _own_headline(doc, cards) else "article"


def _own_headline(doc: Any, cards: list[Any]) -> bool:
    """Whether an <h1> without a link, the page's own headline, is inside one of ``cards``."""
    held = {el for card in cards for el in card.iter("h1")}  # held, so identity is stable
    return any(
        h1 in held and not h1.xpath(".//a[@href]") and h1.text_content().strip()
        for h1 in doc.iter("h1")
    )


def _moved(doc: Any, meta: ArticleMeta) -> str | None:
    """Where a "Document Moved" / meta-refresh stub points ("" if it does not say), or None
    when the page is not such a stub."""
    body_text = " ".join(doc.text_content().split())
    if len(body_text) > STUB_TEXT:
        return None
    heads = [meta.html_title, meta.h1]
    refresh = [
        el.get("content") or ""
        for el in doc.iter("meta")
        if (el.get("http-equiv") or "").lower() == "refresh"
    ]
    if not any(_MOVED.search(" ".join(h.split())) for h in heads if h) and not refresh:
        return None
    for content in refresh:
        found = _REFRESH_URL.search(content)
        if found:
            return found.group(1).strip()
    links = doc.xpath("//a/@href")
    return str(links[0]).strip() if links else ""


PROSE = 400  # characters of paragraph text outside the cards that make a page an article
LEAD = 300  # a card this long, holding two thirds of the cards' text, is the article itself


def _prose_outside(doc: Any, cards: list[Any]) -> bool:
    """Whether the page reads as one article (with "related" cards) rather than a front
    page: an article's worth of paragraphs outside the cards, or one card (the article's
    own <article>) holding most of the cards' text while the others are bare links."""
    inside = {el for card in cards for el in card.iter("p")}  # held, so identity is stable
    outside = sum(_prose(el) for el in doc.iter("p") if el not in inside)
    sizes = [sum(_prose(el) for el in card.iter("p")) for card in cards]
    biggest = max(sizes, default=0)
    return outside >= PROSE or (biggest >= LEAD and biggest >= 2 * (sum(sizes) - biggest))


def _prose(el: Any) -> int:
    """Length of a paragraph of prose (not navigation, a footer, a form or a button)."""
    if any(a.tag in ("footer", "nav", "aside", "form") for a in el.iterancestors()):
        return 0
    text = " ".join(el.text_content().split())
    return len(text) if len(text) >= 60 else 0


def _inside(el: Any, card: Any, tags: tuple[str, ...]) -> bool:
    """Whether ``el`` sits in one of ``tags`` below ``card`` (a default selector's noise)."""
    for ancestor in el.iterancestors():
        if ancestor is card:
            return False
        if ancestor.tag in tags:
            return True
    return False
