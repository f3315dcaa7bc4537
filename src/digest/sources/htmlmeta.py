"""HTML helpers for page sources: safe parsing, and an article's metadata from its markup.

Order of preference for each field of an article page (first non-empty wins):

- title: JSON-LD ``headline`` / ``name`` > ``og:title`` > ``twitter:title`` > ``<title>``
- teaser: JSON-LD ``description`` > ``og:description`` > ``twitter:description`` >
  ``<meta name="description">``
- image: JSON-LD ``image`` > ``og:image`` (``og:image:secure_url``) > ``twitter:image`` >
  ``<link rel="image_src">``; caption from the JSON-LD ImageObject ``caption``, alt from
  ``og:image:alt`` / ``twitter:image:alt`` (else the caption), credit from the ImageObject's
  ``creditText`` / ``copyrightHolder`` / ``author``
- published: JSON-LD ``datePublished`` > ``article:published_time`` > ``<meta name="date">``
  (also ``pubdate``, ``parsely-pub-date``, ``dc.date``) > the first ``<time datetime>``
- site name: JSON-LD ``publisher.name`` > ``og:site_name`` > ``application-name``
- section: JSON-LD ``articleSection`` > ``article:section``
- URL: ``<link rel="canonical">`` > ``og:url`` > JSON-LD ``url`` > the fetched URL
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import lxml.etree
import lxml.html

from digest.exceptions import SourceError

ARTICLE_TYPES = frozenset(
    {"Article", "NewsArticle", "ReportageNewsArticle", "AnalysisNewsArticle",
     "OpinionNewsArticle", "BackgroundNewsArticle", "ReviewNewsArticle", "BlogPosting",
     "LiveBlogPosting", "Report", "TechArticle"}
)  # fmt: skip
# Never text: dropped before any text is read, so their content cannot leak into a story.
UNSAFE_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w-]+)""", re.IGNORECASE)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


@dataclass(frozen=True, slots=True)
class ArticleMeta:
    """Raw (unsanitised) article fields; the page source cleans and resolves them."""

    is_article: bool  # JSON-LD article type or og:type article
    title: str = ""
    teaser: str = ""
    url: str = ""
    image: str = ""
    image_alt: str = ""
    caption: str = ""
    credit: str = ""
    published: str = ""
    site_name: str = ""
    section: str = ""


def parse_html(body: bytes, headers: Mapping[str, str], what: str) -> Any:
    """The lxml document of ``body``, decoded by its declared charset (UTF-8 otherwise)."""
    text = _decode(body, headers)
    try:
        doc = lxml.html.document_fromstring(_XML_DECL.sub("", text))
    except (lxml.etree.LxmlError, ValueError) as exc:
        raise SourceError(f"{what} is not readable HTML ({exc})") from exc
    return doc


def json_ld(doc: Any) -> list[dict[str, Any]]:
    """Every JSON-LD node of the page (``@graph`` and lists flattened); bad blocks skipped."""
    nodes: list[dict[str, Any]] = []
    for script in doc.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "", strict=False)
        except ValueError:
            continue
        nodes.extend(_flatten(data))
    return nodes


def drop_unsafe(doc: Any) -> None:
    """Remove elements whose content is never readable text (scripts, styles, frames...)."""
    for el in doc.iter(*UNSAFE_TAGS):
        if el.getparent() is not None:
            el.drop_tree()


def article_meta(doc: Any, nodes: list[dict[str, Any]]) -> ArticleMeta:
    """The article fields of the page, in the order of preference of the module docstring."""
    ld = next((n for n in nodes if ARTICLE_TYPES & _types(n)), {})
    meta = _meta(doc)
    image_node = _first(ld.get("image"))
    image = _url_of(image_node)
    img = image_node if isinstance(image_node, dict) else {}
    publisher = _first(ld.get("publisher"))
    times = doc.xpath("//time[@datetime]/@datetime")
    canonical = doc.xpath('//link[@rel="canonical"]/@href')
    image_src = doc.xpath('//link[@rel="image_src"]/@href')
    title_el = doc.find(".//title")
    caption = _text(img.get("caption")) or _text(img.get("description"))
    return ArticleMeta(
        is_article=bool(ld) or meta.get("og:type", "").lower() == "article",
        title=_pick(_text(ld.get("headline")), _text(ld.get("name")), meta.get("og:title"),
                    meta.get("twitter:title"),
                    title_el.text_content() if title_el is not None else ""),
        teaser=_pick(_text(ld.get("description")), meta.get("og:description"),
                     meta.get("twitter:description"), meta.get("description")),
        url=_pick(canonical[0] if canonical else "", meta.get("og:url"), _url_of(ld.get("url"))),
        image=_pick(image, meta.get("og:image:secure_url"), meta.get("og:image"),
                    meta.get("og:image:url"), meta.get("twitter:image"),
                    meta.get("twitter:image:src"), image_src[0] if image_src else ""),
        image_alt=_pick(meta.get("og:image:alt"), meta.get("twitter:image:alt"), caption),
        caption=caption,
        credit=_pick(_text(img.get("creditText")), _name(img.get("copyrightHolder")),
                     _name(img.get("author"))),
        published=_pick(_text(ld.get("datePublished")), meta.get("article:published_time"),
                        meta.get("date"), meta.get("pubdate"), meta.get("parsely-pub-date"),
                        meta.get("dc.date"), times[0] if times else ""),
        site_name=_pick(_name(publisher), meta.get("og:site_name"),
                        meta.get("application-name")),
        section=_pick(_text(_first(ld.get("articleSection"))), meta.get("article:section")),
    )  # fmt: skip


def _decode(body: bytes, headers: Mapping[str, str]) -> str:
    if body.startswith(b"\xef\xbb\xbf"):
        return body[3:].decode("utf-8", "replace")
    declared = re.search(r"charset=([\w-]+)", headers.get("content-type", ""), re.IGNORECASE)
    sniffed = _CHARSET.search(body[:4096])
    for charset in (declared.group(1) if declared else "", sniffed.group(1).decode() if sniffed
                    else "", "utf-8"):  # fmt: skip
        if charset:
            try:
                return body.decode(charset, "replace")
            except LookupError:
                continue
    return body.decode("utf-8", "replace")  # pragma: no cover - utf-8 always exists


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
