"""HTML helpers for page sources: safe parsing, and an article's metadata from its markup.

Order of preference for each field of an article page (first non-empty wins); the page
source (digest.sources.article) settles the final title, teaser and date from these:

- title: JSON-LD ``headline`` / ``name`` > ``og:title`` > ``twitter:title`` >
  ``parsely-title`` (or ``parsely-page``) > ``dc.title``; also the page's ``<h1>`` and
  ``<title>``, which decide where the site name ends
- teaser: JSON-LD ``description`` > ``og:description`` > ``twitter:description`` >
  ``<meta name="description">`` (also ``dc.description``)
- image: JSON-LD ``image`` > ``og:image`` (``og:image:secure_url``) > ``twitter:image`` >
  ``parsely-image-url`` > ``<link rel="image_src">``; caption from the JSON-LD
  ImageObject ``caption``, alt from ``og:image:alt`` / ``twitter:image:alt`` (else the
  caption), credit from the ImageObject's ``creditText`` / ``copyrightHolder`` / ``author``
- published: JSON-LD ``datePublished`` > ``article:published_time`` > ``<meta>`` dates
  (``date``, ``pubdate``, ``parsely-pub-date``, ``dc.date``, ``sailthru.date``...) >
  ``itemprop=datePublished`` > the first ``<time datetime>`` (one marked ``pubdate`` first)
  > JSON-LD ``dateCreated`` / ``dateModified``
- site name: JSON-LD ``publisher.name`` > ``og:site_name`` > ``application-name``
- section: JSON-LD ``articleSection`` > ``article:section`` > ``parsely-section``
- URL: ``<link rel="canonical">`` > ``og:url`` > JSON-LD ``url`` > the fetched URL
- authors: JSON-LD ``author`` (object, list or string; else ``creator``) >
  ``<meta name="author">`` (``article:author``, ``parsely-author``, ``dc.creator``...);
  word count: JSON-LD ``wordCount``

JSON-LD is read also when wrapped in CDATA or an HTML comment, or with trailing commas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import lxml.etree
import lxml.html

from digest.charsets import decode_html
from digest.exceptions import SourceError

ARTICLE_TYPES = frozenset(
    {
        "Article",
        "NewsArticle",
        "ReportageNewsArticle",
        "AnalysisNewsArticle",
        "OpinionNewsArticle",
        "BackgroundNewsArticle",
        "ReviewNewsArticle",
        "BlogPosting",
        "LiveBlogPosting",
        "Report",
        "TechArticle",
        "ScholarlyArticle",
        "SocialMediaPosting",
        "Posting",
        "AdvertiserContentArticle",
        "SatiricalArticle",
    }
)
# Never text: dropped before any text is read, so their content cannot leak into a story.
UNSAFE_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg")
DATE_KEYS = (
    "article:published_time",
    "article:published",
    "og:published_time",
    "datepublished",
    "date",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "published_time",
    "parsely-pub-date",
    "dc.date",
    "dc.date.issued",
    "dcterms.date",
    "dcterms.created",
    "dcterms.issued",
    "sailthru.date",
    "citation_publication_date",
    "article.published",
    "original-publish-date",
    "cxenseparse:recs:publishtime",
    "datecreated",
)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_WRAPPERS = re.compile(
    r"^\s*(?://|/\*)?\s*(?:<!\[CDATA\[|<!--)\s*(?:\*/)?"
    r"|(?://|/\*)?\s*(?:\]\]>|-->)\s*(?:\*/)?\s*$"
)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


@dataclass(frozen=True, slots=True)
class ArticleMeta:
    """Raw (unsanitised) article fields; the page source cleans and resolves them."""

    is_article: bool  # JSON-LD article type or og:type article
    title: str = ""  # the best metadata title (may still carry the site's name)
    teaser: str = ""
    url: str = ""
    image: str = ""
    image_alt: str = ""
    caption: str = ""
    credit: str = ""
    published: str = ""
    site_name: str = ""
    section: str = ""
    h1: str = ""  # the first headline element's text
    html_title: str = ""  # <title>
    site_names: tuple[str, ...] = ()  # every name the site gives itself
    titles: tuple[str, ...] = ()  # every metadata title, in order of preference
    alternative: str = ""  # JSON-LD alternativeHeadline
    authors: tuple[str, ...] = ()  # JSON-LD author names
    meta_authors: tuple[str, ...] = ()  # <meta name=author> & co., each a whole byline
    word_count: int = 0  # JSON-LD wordCount, 0 when the page does not say


def parse_html(body: bytes | str, headers: Mapping[str, str], what: str) -> Any:
    """The lxml document of ``body`` (bytes are decoded as a browser would)."""
    text = body if isinstance(body, str) else decode_html(body, headers).text
    try:
        doc = lxml.html.document_fromstring(_XML_DECL.sub("", text).replace("\x00", ""))
    except (lxml.etree.LxmlError, ValueError) as exc:
        raise SourceError(f"{what} is not readable HTML ({exc})") from exc
    return doc


def json_ld(doc: Any) -> list[dict[str, Any]]:
    """Every JSON-LD node of the page (``@graph`` and lists flattened); bad blocks skipped."""
    nodes: list[dict[str, Any]] = []
    for script in doc.xpath("//script[@type]"):
        if script.get("type", "").strip().lower() != "application/ld+json":
            continue
        raw = _WRAPPERS.sub("", script.text or "").strip()
        for attempt in (raw, _TRAILING_COMMA.sub(r"\1", raw)):
            try:
                data = json.loads(attempt, strict=False)
            except ValueError:
                continue
            nodes.extend(_flatten(data))
            break
    return nodes


def drop_unsafe(doc: Any) -> None:
    """Remove elements whose content is never readable text (scripts, styles, frames...)."""
    for el in doc.iter(*UNSAFE_TAGS):
        if el.getparent() is not None:
            el.drop_tree()


def article_meta(doc: Any, nodes: list[dict[str, Any]]) -> ArticleMeta:
    """The article fields of the page, in the order of preference of the module docstring."""
    ld = next((n for n in nodes if ARTICLE_TYPES & _types(n)), {})
    if not ld:  # a WebPage whose mainEntity is the article
        ld = next(
            (m for n in nodes for m in _flatten(n.get("mainEntity")) if ARTICLE_TYPES & _types(m)),
            {},
        )
    meta = _meta(doc)
    parsely = _parsely_page(meta.get("parsely-page", ""))
    image_node = _first(ld.get("image"))
    image = _url_of(image_node)
    img = image_node if isinstance(image_node, dict) else {}
    publisher = _first(ld.get("publisher"))
    canonical = doc.xpath('//link[@rel="canonical"]/@href')
    image_src = doc.xpath('//link[@rel="image_src"]/@href')
    title_el = doc.find(".//title")
    caption = _text(img.get("caption")) or _text(img.get("description"))
    site_names = tuple(
        n
        for n in (
            _name(publisher),
            meta.get("og:site_name", ""),
            meta.get("application-name", ""),
            meta.get("apple-mobile-web-app-title", ""),
            meta.get("twitter:site", "").lstrip("@"),
            _name(ld.get("isPartOf")),
        )
        if n
    )
    titles = tuple(
        t.strip()
        for t in (
            _text(ld.get("headline")),
            _text(ld.get("name")),
            meta.get("og:title", ""),
            meta.get("twitter:title", ""),
            meta.get("parsely-title", ""),
            _text(parsely.get("title")),
            meta.get("dc.title", ""),
            meta.get("sailthru.title", ""),
        )
        if t and t.strip()
    )
    return ArticleMeta(
        is_article=bool(ld) or _article_signals(meta),
        title=titles[0] if titles else "",
        titles=titles,
        alternative=_text(ld.get("alternativeHeadline")).strip(),
        teaser=_pick(
            _text(ld.get("description")),
            meta.get("og:description"),
            meta.get("twitter:description"),
            meta.get("description"),
            meta.get("dc.description"),
        ),
        url=_pick(
            canonical[0] if canonical else "",
            meta.get("og:url"),
            _url_of(ld.get("url")),
            meta.get("parsely-link"),
        ),
        image=_pick(
            image,
            meta.get("og:image:secure_url"),
            meta.get("og:image"),
            meta.get("og:image:url"),
            meta.get("twitter:image"),
            meta.get("twitter:image:src"),
            meta.get("parsely-image-url"),
            image_src[0] if image_src else "",
        ),
        image_alt=_pick(meta.get("og:image:alt"), meta.get("twitter:image:alt"), caption),
        caption=caption,
        credit=_pick(
            _text(img.get("creditText")),
            _name(img.get("copyrightHolder")),
            _name(img.get("author")),
        ),
        published=_pick(
            _text(ld.get("datePublished")),
            *(meta.get(k) for k in DATE_KEYS),
            _text(parsely.get("pub_date")),
            _itemprop_date(doc),
            _time(doc),
            _text(ld.get("dateCreated")),
            _text(ld.get("dateModified")),
        ),
        site_name=site_names[0] if site_names else "",
        section=_pick(
            _text(_first(ld.get("articleSection"))),
            meta.get("article:section"),
            meta.get("parsely-section"),
            _text(parsely.get("section")),
        ),
        h1=_h1(doc),
        html_title=title_el.text_content() if title_el is not None else "",
        site_names=site_names,
        authors=_authors(ld.get("author") or ld.get("creator")),
        meta_authors=tuple(
            v
            for v in (
                meta.get("author"),
                meta.get("article:author"),
                meta.get("parsely-author"),
                meta.get("sailthru.author"),
                meta.get("dc.creator"),
                meta.get("byl"),
            )
            if v and v.strip()
        ),
        word_count=_int(ld.get("wordCount")),
    )


def _authors(value: Any) -> tuple[str, ...]:
    """Names of a JSON-LD ``author``: a Person or Organization, a list of them, or a string."""
    values = value if isinstance(value, list) else [value]
    return tuple(n for v in values if (n := _name(v) if isinstance(v, dict) else _text(v)))


def _int(value: Any) -> int:
    """A JSON-LD number that may be written as a string ("1234"); 0 otherwise."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return max(int(value), 0)
    text = _text(value).replace(",", "")
    return int(text) if text.isdigit() else 0


def _article_signals(meta: dict[str, str]) -> bool:
    """OpenGraph or parsely calling the page an article, or article:* properties on it."""
    kind = meta.get("og:type", "").lower().removeprefix("og:")
    if kind in ("article", "blog", "post", "news", "newsarticle"):
        return True
    if meta.get("parsely-type", "").lower() in ("post", "article"):
        return True
    return any(k.startswith("article:") for k in meta)


def _h1(doc: Any) -> str:
    """The article's headline element: an h1 inside article/main first, else the first h1."""
    for path in ("//article//h1", "//main//h1", "//*[@itemprop='headline']", "//h1"):
        for el in doc.xpath(path):
            text = " ".join(el.text_content().split())
            if text:
                return text
    return ""


def _itemprop_date(doc: Any) -> str:
    for el in doc.xpath("//*[@itemprop='datePublished']"):
        value = el.get("datetime") or el.get("content") or el.text_content()
        if value and value.strip():
            return str(value).strip()
    return ""


def _time(doc: Any) -> str:
    marked = doc.xpath("//time[@pubdate][@datetime]/@datetime")
    inside = doc.xpath("//article//time[@datetime]/@datetime | //header//time[@datetime]/@datetime")
    times = doc.xpath("//time[@datetime]/@datetime")
    return next((str(t).strip() for t in (*marked, *inside, *times) if str(t).strip()), "")


def _parsely_page(value: str) -> dict[str, Any]:
    """The JSON of a ``parsely-page`` meta tag (title, link, pub_date, section...)."""
    if not value:
        return {}
    try:
        data = json.loads(value, strict=False)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _meta(doc: Any) -> dict[str, str]:
    """<meta property|name=... content=...>, first value per lower-cased key."""
    out: dict[str, str] = {}
    for el in doc.iter("meta"):
        key = (el.get("property") or el.get("name") or el.get("itemprop") or "").strip().lower()
        value = (el.get("content") or "").strip()
        if key and value and key not in out:
            out[key] = value
    return out


def _flatten(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    elif isinstance(data, dict):
        yield data
        if "@graph" in data:
            yield from _flatten(data["@graph"])


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.rsplit("/", 1)[-1] for k in kinds if isinstance(k, str)}


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _url_of(value: Any) -> str:
    value = _first(value)
    if isinstance(value, dict):
        return _text(value.get("url")) or _text(value.get("contentUrl")) or _text(value.get("@id"))
    return _text(value)


def _name(value: Any) -> str:
    value = _first(value)
    return _text(value.get("name")) if isinstance(value, dict) else _text(value)


def _pick(*values: str | None) -> str:
    return next((v.strip() for v in values if v and v.strip()), "")
