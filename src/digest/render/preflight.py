"""Preflight: what inbox providers and readers would object to in a rendered edition (pure)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import urlsplit

from digest.models import RenderedEdition, Story, Variant
from digest.render import placeholders
from digest.render.links import strip_utm

GMAIL_CLIP_BYTES = 102_000
"""Gmail shows "[Message clipped]" above about this many bytes of HTML."""
SUBJECT_CHARS = 60
"""Subjects longer than this are cut by most clients, often mid-word."""


def clipped(rendered: RenderedEdition, variants: Iterable[Variant] = ()) -> list[str]:
    """What Gmail would clip (hiding the footer and its unsubscribe link): "the whole
    edition" and/or the keys of the topic variants whose HTML is over GMAIL_CLIP_BYTES."""
    out = [v.key for v in variants if len(v.rendered.html.encode()) > GMAIL_CLIP_BYTES]
    if len(rendered.html.encode()) > GMAIL_CLIP_BYTES:
        out.insert(0, "the whole edition")
    return out


Level = Literal["error", "warning"]
_WEB = frozenset({"http", "https"})
_TEXT_URL = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem; ``error`` means the edition should not go out as it is."""

    level: Level
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


@dataclass(slots=True)
class _Element:
    tag: str
    attrs: dict[str, str | None]
    line: int


class _Collector(HTMLParser):
    """Collects the ``<a>`` and ``<img>`` elements of the HTML part, with their lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[_Element] = []
        self.images: list[_Element] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, dict(attrs), self.getpos()[0])
        if element.attrs.get("id"):
            self.ids.add(str(element.attrs["id"]))
        # An <a> without href is an anchor, not a link.
        if tag == "a" and element.attrs.get("href") is not None:
            self.links.append(element)
        elif tag == "img":
            self.images.append(element)


def preflight(
    rendered: RenderedEdition,
    *,
    stories: Sequence[Story],
    postal_address: str,
    html_budget: int = GMAIL_CLIP_BYTES,
) -> list[Finding]:
    """Check one rendered variant; errors first, then warnings, each in document order."""
    collector = _Collector()
    collector.feed(rendered.html)
    collector.close()
    findings = [
        *_size(rendered.html, html_budget),
        *_subject(rendered.subject),
        *_images(collector.images),
        *_links(collector.links, stories, collector.ids, rendered.marker),
        *_same_stories(collector.links, rendered.text, stories),
        *_unsubscribe(collector.links, rendered.text, rendered.marker),
        *_postal(rendered, postal_address),
    ]
    return sorted(findings, key=lambda f: f.level != "error")


def has_errors(findings: Sequence[Finding]) -> bool:
    """True when any finding is at error level (``digest check EDITION`` then exits 1)."""
    return any(f.level == "error" for f in findings)


def _size(page: str, budget: int) -> list[Finding]:
    size = len(page.encode("utf-8"))
    if size <= budget and size <= GMAIL_CLIP_BYTES:
        return []
    # Above Gmail's clip the footer and its unsubscribe link disappear: never send that.
    level: Level = "error" if size > GMAIL_CLIP_BYTES else "warning"
    return [
        Finding(
            level,
            "html-size",
            f"the HTML part is {size:,} bytes, over the budget of {budget:,} "
            "(Gmail clips messages above about 102 KB); use fewer stories or shorter teasers",
        )
    ]


def _subject(subject: str) -> list[Finding]:
    if len(subject) <= SUBJECT_CHARS:
        return []
    return [
        Finding(
            "warning",
            "subject-length",
            f"the subject is {len(subject)} characters; clients cut it at about "
            f"{SUBJECT_CHARS} (use the fit filter in email.subject: {{{{ ... | fit }}}})",
        )
    ]


def _images(images: Sequence[_Element]) -> list[Finding]:
    out = []
    unsized = 0
    for img in images:
        src = img.attrs.get("src") or ""
        # alt="" is a decision (a decorative thumbnail beside its headline); no alt is not.
        if img.attrs.get("alt") is None:
            out.append(
                Finding(
                    "warning",
                    "image-alt",
                    f"HTML line {img.line}: image {src!r} has no alt attribute; screen readers "
                    'read its URL (give it alt text, or alt="" if it is decorative)',
                )
            )
        if (
            not (img.attrs.get("width") or "").isdigit()
            or not (img.attrs.get("height") or "").isdigit()
        ):
            unsized += 1
        if urlsplit(src).scheme.lower() not in _WEB:
            out.append(
                Finding(
                    "warning",
                    "image-scheme",
                    f"HTML line {img.line}: image {src!r} is not an http(s) URL; most mail "
                    "clients will not load it (fix the story's image or the template)",
                )
            )
    if unsized:
        out.append(
            Finding(
                "warning",
                "image-size",
                f"{unsized} images have no pixel width and height; the layout jumps while "
                "they load (hotlinked images: use images.mode: own)",
            )
        )
    return out


def _links(
    links: Sequence[_Element], stories: Sequence[Story], ids: set[str], marker: str
) -> list[Finding]:
    out = []
    for story in stories:
        if urlsplit(story.url).scheme.lower() not in _WEB:
            out.append(
                Finding(
                    "error",
                    "link-scheme",
                    f"story {story.title!r} links to {story.url!r}, which is not an http(s) URL; "
                    "remove the story or fix its source",
                )
            )
    for a in links:
        href = (a.attrs.get("href") or "").strip()
        if placeholders.canonical(href, marker) or href.startswith("mailto:"):
            continue
        if href.startswith("#") and len(href) > 1:
            if href[1:] not in ids:
                out.append(
                    Finding(
                        "error",
                        "anchor",
                        f"HTML line {a.line}: link {href!r} points at no element of the email; "
                        "fix the template",
                    )
                )
            continue
        if urlsplit(href).scheme.lower() not in _WEB:
            # The templates' safe_url filter turns a refused link into "#": report it too.
            out.append(
                Finding(
                    "error",
                    "link-scheme",
                    f"HTML line {a.line}: link {href!r} is not an http(s) URL; "
                    "fix the story or the template",
                )
            )
    return out


def _order(urls: Sequence[str], wanted: set[str]) -> list[str]:
    seen: list[str] = []
    for url in urls:
        key = strip_utm(url)
        if key in wanted and key not in seen:
            seen.append(key)
    return seen


def _same_stories(links: Sequence[_Element], text: str, stories: Sequence[Story]) -> list[Finding]:
    titles = {strip_utm(s.url): s.title for s in stories if urlsplit(s.url).scheme.lower() in _WEB}
    wanted = set(titles)
    in_html = _order([a.attrs.get("href") or "" for a in links], wanted)
    in_text = _order(_TEXT_URL.findall(text), wanted)
    out = []
    for url, title in titles.items():
        where = [name for name, got in (("HTML", in_html), ("text", in_text)) if url not in got]
        if len(where) == 1:
            other = "text" if where[0] == "HTML" else "HTML"
            out.append(
                Finding(
                    "error",
                    "parts-differ",
                    f"story {title!r} is in the {other} part but not in the {where[0]} part; "
                    "the two templates must list the same stories",
                )
            )
        elif where:
            out.append(
                Finding(
                    "error",
                    "story-missing",
                    f"story {title!r} is in neither the HTML nor the text part; check the "
                    "templates",
                )
            )
    common = set(in_html) & set(in_text)
    if [u for u in in_html if u in common] != [u for u in in_text if u in common]:
        out.append(
            Finding(
                "error",
                "parts-differ",
                "the HTML and text parts list the stories in different orders; the two "
                "templates must keep the same order",
            )
        )
    return out


def _unsubscribe(links: Sequence[_Element], text: str, marker: str) -> list[Finding]:
    out = []
    wanted = placeholders.token(placeholders.UNSUBSCRIBE_URL, marker)
    if not any((a.attrs.get("href") or "").strip() == wanted for a in links):
        out.append(
            Finding(
                "error",
                "unsubscribe",
                "the HTML part has no unsubscribe link; add "
                '<a href="{{ recipient.unsubscribe_url }}"> to the template',
            )
        )
    if wanted not in text:
        out.append(
            Finding(
                "error",
                "unsubscribe",
                "the text part has no unsubscribe link; add {{ recipient.unsubscribe_url }} "
                "to the text template",
            )
        )
    return out


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _postal(rendered: RenderedEdition, postal_address: str) -> list[Finding]:
    address = _collapse(postal_address)
    if not address:
        return [
            Finding(
                "warning",
                "postal-address",
                "publication.postal_address is empty; bulk-sender rules (CAN-SPAM) want a "
                "postal address in every message",
            )
        ]
    out = []
    visible = _collapse(html.unescape(re.sub(r"<[^>]*>", " ", rendered.html)))
    for part, body in (("HTML", visible), ("text", _collapse(rendered.text))):
        if address not in body:
            out.append(
                Finding(
                    "warning",
                    "postal-address",
                    f"the {part} part does not show publication.postal_address; add "
                    "{{ publication.postal_address }} to its template",
                )
            )
    return out
