"""Pure normalisers: canonical URLs, text repair and sanitising, teaser cutting, dates."""

from __future__ import annotations

import email.utils
import html
import re
import time
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import unquote, unquote_plus, urljoin, urlsplit, urlunsplit

import ftfy
import nh3
from dateutil import parser as dateparser

from digest.models import Story
from digest.render import placeholders

# Query parameters that only identify a campaign or a click, never the content.
TRACKING_PARAMS: tuple[str, ...] = (
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "ref",
    "ref_src",
    "cmpid",
    "ocid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "wt.mc_id",
    "cid_source",
)
TRACKING_PREFIXES: tuple[str, ...] = ("utm_",)
DEFAULT_PORTS = {"http": 80, "https": 443}
ELLIPSIS = "…"

_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:br|p|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|section|article|hr|figure"
    r"|figcaption)\b[^>]*>",
    re.IGNORECASE,
)
# U+FFFD is kept on purpose: it marks characters that could not be decoded (never drop
# characters silently).
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff\u202a-\u202e\u2066-\u2069]"
)
# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder whole runs:
# "gnp\u202e.exe" ... shows as "exe.png". Dropped from all third-party text. The marks
# U+200E/U+200F (LRM/RLM) are kept: they are how Arabic and Hebrew text places neutrals
# (digits, punctuation) correctly, and cannot reverse a run of letters.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Any spelling of a placeholder token, whatever its marker or case (strip_tokens), and the
# token prefix itself (defuse): "__DIGEST_" in third-party text keeps one underscore.
_ANY_TOKEN = re.compile(placeholders.ANY_TOKEN, re.IGNORECASE)
_PREFIX = re.compile(r"_{2,}(?=digest_)", re.IGNORECASE)
# What untrusted_text / untrusted_url can change at all: without an underscore or a bidi
# control (and, in a URL, without an escape that could spell one) a field is left as it is,
# so the common story skips both (collect runs this over every story, cached ones too).
_TEXT_SUSPECT = re.compile(r"[_\u202a-\u202e\u2066-\u2069]")
_URL_SUSPECT = re.compile(r"[_%&\u202a-\u202e\u2066-\u2069]")
# ftfy repairs mojibake only: no width folding (it would turn "＜" into "<" and rewrite
# CJK punctuation), quotes and HTML left to us.
_FTFY = ftfy.TextFixerConfig(fix_character_width=False, uncurl_quotes=False, unescape_html=False)
_SPACE = re.compile(r"\s+")
_CUT_MARKER = re.compile(r"\s*\[(?:\.\.\.|…)\]\s*$")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?(?=\s)")
_TRAILING_JUNK = " ,;:-–—([{\"'“‘"


def canonical_url(url: str, base: str | None = None) -> str:
    """``url`` resolved against ``base``, with case, default port, fragment and tracking cleaned.

    Unparseable input is returned stripped, unchanged; safe_http_url rejects it later.
    """
    url = url.strip()
    if base:
        try:
            url = urljoin(base.strip(), url)
        except ValueError:
            return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.hostname is not None:
        host = parts.hostname.lower()
        if ":" in host:
            host = f"[{host}]"
        userinfo = netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{host}" if userinfo else host
        if port is not None and port != DEFAULT_PORTS.get(scheme):
            netloc = f"{netloc}:{port}"
    path = parts.path or ("/" if netloc else "")
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    return urlunsplit((scheme, netloc, path, query, ""))


def _is_tracking(pair: str) -> bool:
    key = unquote_plus(pair.partition("=")[0]).lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def safe_http_url(url: str) -> str | None:
    """``url`` stripped if it is an absolute http(s) URL with a host, else None."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        return None
    return url


def clean_text(value: str) -> str:
    """Plain text from an HTML fragment: entities decoded, mojibake repaired, tags stripped.

    Sanitising comes last, after every repair and normalisation, and repeats until nothing
    changes: each earlier step (entity decoding, ftfy, removing control characters or
    placeholder tokens) could otherwise assemble markup from harmless-looking text.
    Fullwidth forms such as "＜" or CJK punctuation are kept as they are (no width folding).
    """
    # Entities first: "Caf&#195;&#169;" is mojibake only ftfy can see once decoded.
    text = html.unescape(value)
    # ASCII has no mojibake: ftfy would only remove terminal escapes (ESC, kept for it) and
    # turn CRs into LFs, which the whitespace folding below makes moot. Skipping it there
    # halves the cost of the common case.
    if not text.isascii() or "\x1b" in text:
        text = ftfy.fix_text(text, _FTFY)
    for _ in range(6):
        before = text
        text = _strip_markup(strip_tokens(_CONTROL.sub("", text)))
        if text == before:
            break
    else:
        text = text.replace("<", "").replace(">", "")  # still changing: keep no brackets
    return _SPACE.sub(" ", text).strip()


def _strip_markup(value: str) -> str:
    """``value`` without tags; entities decoded, repeated while decoding reveals more tags."""
    text = value
    for _ in range(4):
        stripped = html.unescape(nh3.clean(_BLOCK_TAG.sub(" ", text), tags=set()))
        if stripped == text:
            return text
        text = stripped
    return text.replace("<", "").replace(">", "")  # escaped too deep to be honest text


def strip_tokens(text: str) -> str:
    """``text`` without per-recipient placeholder tokens (any marker, any case), and with the
    token prefix "__DIGEST_" left as "_DIGEST_", so a feed cannot inject them.

    Removing one token can join the halves of another ("__DIGEST___DIGEST_EMAIL__EMAIL__"),
    so this repeats until nothing changes.
    """
    while True:
        stripped = _ANY_TOKEN.sub("", text)
        if stripped == text:
            return _PREFIX.sub("_", text)
        text = stripped


def untrusted_text(text: str) -> str:
    """Third-party text as it may reach a reader: no bidi controls, no placeholder syntax.

    The last guard for every field (clean_text did the same and more for most of them).
    """
    return strip_tokens(_BIDI.sub("", text))


def untrusted_url(url: str) -> str:
    """A third-party URL that spells the placeholder prefix in any way (plain, mixed case,
    percent- or entity-encoded) gets every "_" percent-encoded: the same URL for the server
    (RFC 3986 2.3), and no literal "__DIGEST_" that a placeholder could ever match."""
    decoded = url
    for _ in range(4):  # double encodings ("%255F") peel one layer a round
        before = decoded
        decoded = unquote(html.unescape(decoded))
        if decoded == before:
            break
    if "digest_" not in decoded.casefold() or not _PREFIX.search(_BIDI.sub("", decoded)):
        return url
    return url.replace("_", "%5F")


def untrusted_story(story: Story) -> Story:
    """``story`` with every field a source filled passed through untrusted_text/_url.

    Collect applies it to every story, whatever its source kind, so a new source cannot
    forget it.
    """
    image = story.image
    texts: tuple[str, ...] = (story.title, story.teaser, story.source, story.section, story.author)
    texts += story.also_in
    urls: tuple[str, ...] = (story.url,)
    if image is not None:
        texts += (image.alt, image.caption, image.credit)
        urls += (image.url,)
    if not any(map(_TEXT_SUSPECT.search, texts)) and not any(map(_URL_SUSPECT.search, urls)):
        return story
    if image is not None:
        image = replace(
            image,
            url=untrusted_url(image.url),
            alt=untrusted_text(image.alt),
            caption=untrusted_text(image.caption),
            credit=untrusted_text(image.credit),
        )
    return replace(
        story,
        url=untrusted_url(story.url),
        title=untrusted_text(story.title),
        teaser=untrusted_text(story.teaser),
        source=untrusted_text(story.source),
        section=untrusted_text(story.section),
        author=untrusted_text(story.author),
        also_in=tuple(untrusted_text(a) for a in story.also_in),
        image=image,
    )


def drop_leading(text: str, *prefixes: str) -> str:
    """``text`` without a leading repeat of any of ``prefixes`` (an image caption or alt text
    that a page or feed puts again as the first line of its teaser)."""
    for prefix in prefixes:
        prefix = prefix.strip()
        if len(prefix) >= 8 and text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix) :].lstrip(" .:-–—|")
    return text


_WORD = re.compile(r"\w+")


# Scripts written without spaces between words: a run of them is split into overlapping
# character pairs, so that two CJK headlines can share "words" as spaced ones do.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f]{2,}")


def headline_words(title: str) -> frozenset[str]:
    """The lower-cased words of a headline (accents folded), for near-duplicate detection.

    Only ever compared, never shown, so compatibility folding (NFKD) is fine here.
    """
    folded = title.casefold()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    words = _WORD.findall(folded.replace("'", "").replace("’", ""))
    if folded.isascii():
        return frozenset(words)
    out: list[str] = []
    for word in words:
        runs = _UNSPACED.findall(word)
        if not runs:
            out.append(word)
        for run in runs:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        rest = _UNSPACED.sub(" ", word).split()
        if runs:
            out.extend(rest)
    return frozenset(out)


def cut_teaser(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` chars at a sentence or word boundary.

    A cut text ends with "…"; a text that arrives already cut ("[...]" or "[…]") gets "…" too.
    """
    text = text.strip()
    marked = _CUT_MARKER.search(text)
    if marked:
        text = text[: marked.start()].rstrip(_TRAILING_JUNK)
        if len(text) + 1 <= limit:
            return text + ELLIPSIS
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    budget = limit - 1
    # Prefer ending on a whole sentence when that keeps most of the room.
    sentences = [m.end() for m in _SENTENCE_END.finditer(text[:budget])]
    if sentences and sentences[-1] >= budget * 0.6:
        return text[: sentences[-1]] + " " + ELLIPSIS
    if text[budget].isspace():
        head = text[:budget]
    else:
        space = max(text.rfind(" ", 0, budget), text.rfind("\n", 0, budget))
        head = text[:space] if space > 0 else text[:budget]
    return head.rstrip(_TRAILING_JUNK) + ELLIPSIS


def parse_date(
    value: str | time.struct_time | None, *, fallback: datetime
) -> tuple[datetime, bool]:
    """``value`` as aware UTC, and whether ``fallback`` was used because it was missing or bad.

    A struct_time is taken as UTC (feedparser's ``*_parsed`` fields are); a naive string is
    taken as UTC too.
    """
    parsed: datetime | None = None
    if isinstance(value, time.struct_time):
        parsed = _from_struct(value)
    elif isinstance(value, str) and value.strip():
        parsed = _from_string(value.strip())
    if parsed is None:
        return _as_utc(fallback), True
    return _as_utc(parsed), False


def _from_struct(value: time.struct_time) -> datetime | None:
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


_NO_DATE = datetime(1, 1, 1)


def _from_string(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    # The many other dialects feeds and pages use ("24th November 2026, 6:30 pm", ...).
    # A year-1 default shows a string that named no date; fields it lacks are not invented.
    try:
        parsed = dateparser.parse(value, default=_NO_DATE)
    except (ValueError, OverflowError, TypeError):
        return None
    return None if parsed.year == 1 else parsed


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
