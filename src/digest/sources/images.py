"""Which image of a feed item or card is the story's photo, and which are not.

A feed item's HTML often opens with things that are images only to a browser: tracking
pixels (1x1, feedburner's and feedblitz's counters, stats beacons), spacer gifs, data:
URIs, emoji and icons (small by their size attributes or class), avatars. The first
``<img>`` that is none of those is the story's image.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urljoin

from digest.normalize import clean_text, safe_http_url

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
# An image this small on either side is a pixel, an icon or an emoji, not a photo.
MIN_SIDE = 50
_IMG = re.compile(r"<img\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""")
_NUMBER = re.compile(r"^\s*(\d+)(?:\.\d+)?\s*(?:px)?\s*$")
_STYLE_SIDE = re.compile(r"(?:^|;)\s*(?:max-)?(?:width|height)\s*:\s*(\d+)px", re.IGNORECASE)
# Where counters, pixels and decorations are served from, or what they are called.
_NOT_A_PHOTO = re.compile(
    r"feeds\.feedburner\.com|feedproxy\.google\.com|/~r/|/~ff/|feedblitz\.com|feedsportal"
    r"|pixel|tracking|tracker|beacon|spacer|blank\.gif|clear\.gif|transparent\.(?:gif|png)"
    r"|1x1|stats\.wordpress\.com|pixel\.wp\.com|/b\.gif|s\.w\.org/images/core/emoji"
    r"|/emoji/|gravatar\.com/avatar|/avatars?/|doubleclick\.net|/ads?/|analytics"
    r"|counter\.|/count\.gif|/icons?/|[_-]icons?[_.-]|favicon|badge",
    re.IGNORECASE,
)
_NOT_A_PHOTO_CLASS = re.compile(r"emoji|smiley|icon|avatar|pixel|tracker|badge", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class InlineImage:
    """The first real image of an HTML fragment: absolute http(s) URL and alt text."""

    url: str
    alt: str


def is_image(kind: str, url: str) -> bool:
    """Whether a media type (or, without one, the URL's suffix) says "image"."""
    if kind:
        return kind.lower().startswith("image/")
    return url.lower().split("?", 1)[0].endswith(IMAGE_SUFFIXES)


def first_inline_image(fragment: str, base: str) -> InlineImage | None:
    """The first ``<img>`` of ``fragment`` that is a photo (see the module docstring),
    its URL resolved against ``base`` (the item's link, itself resolved against the feed)."""
    if "<img" not in fragment and "<IMG" not in fragment:
        return None
    for found in _IMG.finditer(fragment):
        attrs = {k.lower(): html.unescape(v.strip("\"'")) for k, v in _ATTR.findall(found.group(1))}
        if _decoration(attrs):
            continue
        for src in _sources(attrs):
            absolute = safe_http_url(urljoin(base, src))
            if absolute is not None and not _NOT_A_PHOTO.search(absolute):
                return InlineImage(absolute, clean_text(attrs.get("alt", "")))
    return None


def _sources(attrs: dict[str, str]) -> list[str]:
    """Candidate URLs, lazy-loading attributes first (src is then often a placeholder)."""
    out = [
        attrs[k].strip()
        for k in ("data-src", "data-lazy-src", "data-original", "src")
        if attrs.get(k, "").strip() and not attrs[k].strip().lower().startswith("data:")
    ]
    srcset = attrs.get("srcset", "").strip()
    if srcset and not srcset.lower().startswith("data:"):
        out.append(srcset.split(",")[0].strip().split(" ")[0])
    return out


def _decoration(attrs: dict[str, str]) -> bool:
    """A pixel, icon or emoji by its size attributes, inline style or class."""
    for key in ("width", "height"):
        size = _NUMBER.match(attrs.get(key, ""))
        if size is not None and int(size.group(1)) < MIN_SIDE:
            return True
    if any(int(s) < MIN_SIDE for s in _STYLE_SIDE.findall(attrs.get("style", ""))):
        return True
    if "display:none" in attrs.get("style", "").replace(" ", "").lower():
        return True
    return bool(_NOT_A_PHOTO_CLASS.search(attrs.get("class", "")))
