"""An article page's headline, teaser and date, where its own metadata falls short.

Titles: the metadata title (JSON-LD, OpenGraph, parsely...) or else the page's ``<h1>`` or
``<title>``, without the site's name before or after a separator ("New Zealand -
Wikipedia", "Brexit deal | Politics | The Guardian"). A part is the site's name when it
matches a name the page gives itself or its host name; when nothing says so, a part equal
to the page's ``<h1>`` is the headline. When the ``<title>`` has the ``<h1>``'s words with
other quotes or dashes, its plain wording is kept; a bare ``<title>`` (no metadata, no
known site name) loses a short last part ("Headline | Jane Roe").

Teasers and dates the page does not declare come from trafilatura, which finds an
article's main text (skipping navigation, comments and boilerplate) and its date; from
that text the first real paragraphs are taken, skipping bylines, captions, cookie and
newsletter notices (a short paragraph counts when it is a whole sentence).
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.exceptions import SourceError
from digest.isolate import Isolated
from digest.sources.htmlmeta import ArticleMeta

# A title part between these separators may be the site's name.
_SEPARATOR = re.compile(r"(\s+[\-–—·•:»/~]\s+|\s+::\s+|\s*[|｜]\s*)")
_HOST_NOISE = ("www", "m", "en", "amp", "mobile", "news", "blog", "blogs")
_BYLINE = re.compile(
    r"^(by|von|par|por|door|di|av|af)\s+\S|^(published|updated|posted|last updated|"
    r"modified|written by|reporting by|photo|image|video|source|credit|advertisement|"
    r"sponsored|share|related|read more|see also|listen|watch)\b",
    re.IGNORECASE,
)
_NOTICE = re.compile(
    r"\b(cookies?|consent|subscribe|subscription|newsletter|sign up|sign in|log in|"
    r"javascript|ad ?blocker|privacy policy|terms of (use|service)|all rights reserved|"
    r"copyright|©)\b",
    re.IGNORECASE,
)
_DATEISH = re.compile(r"^[\d\s:/.,\-–+apmAPMUTCGMT]*$|^\w+ \d{1,2},? \d{4}")
MIN_PARAGRAPH = 60  # in "width" (CJK characters count twice): shorter is chrome, not prose
TEASER_ROOM = 600  # enough paragraph text to cut a teaser from
SHORT_SENTENCE = 40  # the least width of a whole sentence that counts as a paragraph
SHORT_SHARE = 0.75  # a short headline is at most this share of the headline's length
LABEL_WORDS = 4  # a <title>'s last part this short may be a name rather than headline

# Tests only: a page containing this text makes the extracting worker abort, as a native
# crash would (read in the collecting process, passed to the worker with each page).
CRASH_HOOK = "DIGEST_TEST_ABORT_ON"
# trafilatura and lxml are not safe across threads: extraction runs in worker processes.
EXTRACTORS = Isolated(preload=("trafilatura",))

_log = logging.getLogger(__name__)
# trafilatura logs every page it finds little text on; that is our caller's business.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
logging.getLogger("htmldate").setLevel(logging.CRITICAL)


@dataclass(frozen=True, slots=True)
class Extracted:
    """What trafilatura found: title, ISO date (or ""), and the main text's paragraphs."""

    title: str
    date: str
    paragraphs: tuple[str, ...]


def extract(html_text: str, url: str) -> Extracted:
    """The main text and metadata of ``html_text`` according to trafilatura, worked out in
    one of EXTRACTORS' processes; SourceError naming ``url`` when the page crashes it."""
    try:
        return EXTRACTORS.run(extract_here, html_text, url, os.environ.get(CRASH_HOOK, ""))
    except BrokenProcessPool:
        raise SourceError(
            f"{url}: the article extractor crashed on this page (the rest of the collection"
            " goes on); if it happens every time, give the source an item selector or"
            " report the page"
        ) from None


def extract_here(html_text: str, url: str, crash_on: str = "") -> Extracted:
    """``extract`` in this process: precision first (less chrome); a page it finds nothing
    in (old table layouts) gets a second, recall-minded pass."""
    if crash_on and crash_on in html_text:
        os.abort()
    import trafilatura  # on first use: ~28 MB that a sending process never needs

    found = Extracted("", "", ())
    for precise in (True, False):
        try:
            doc = trafilatura.bare_extraction(
                html_text,
                url=url,
                with_metadata=True,
                include_comments=False,
                include_tables=False,
                include_images=False,
                favor_precision=precise,
                favor_recall=not precise,
                date_extraction_params={"original_date": True, "extensive_search": False},
            )
        except Exception:  # an extractor bug on odd markup must not cost the story
            _log.debug("trafilatura failed on %s", url, exc_info=True)
            continue
        if doc is None:
            continue
        text = str(getattr(doc, "text", "") or "")
        found = Extracted(
            found.title or str(getattr(doc, "title", "") or ""),
            found.date or str(getattr(doc, "date", "") or ""),
            tuple(p.strip() for p in text.splitlines() if p.strip()),
        )
        if any(_is_prose(" ".join(p.split())) for p in found.paragraphs):
            break
    return found


def title_of(meta: ArticleMeta, url: str, extracted: str = "") -> str:
    """The headline: what the metadata and ``<title>`` agree with the page's ``<h1>`` on,
    else the first metadata title, else ``<title>``, each without the site's name."""
    host = urlsplit(url).hostname or ""
    names = [*meta.site_names, meta.section]
    h1 = " ".join(meta.h1.split())
    h1_key = _key(h1)
    keys = [_key(n) for n in names if _key(n)]
    hosts = [label for label in host.lower().split(".") if label not in _HOST_NOISE]
    headline_h1 = bool(h1_key) and not _is_site(h1, keys, hosts)
    stripped = []
    for candidate in (*meta.titles, meta.html_title, extracted):
        title = " ".join(candidate.split())
        if title:
            stripped.append(strip_site_name(title, names, host, h1))
    if headline_h1:
        tab = strip_site_name(" ".join(meta.html_title.split()), names, host)
        if tab != h1 and _letters(tab) == _letters(h1):
            # The same words, quoted or dashed otherwise: the <title>'s plain wording (what
            # tabs, bookmarks and other tools show) rather than the <h1>'s typography.
            return tab
        for title in stripped:
            key = _key(title)
            # The same words, or the <h1> inside a title that adds a label or the site's name.
            if key == h1_key or (h1_key in key and len(h1_key) >= max(12, len(key) // 2)):
                return h1
    if not meta.titles and meta.html_title.strip():
        tab = " ".join(meta.html_title.split())
        if stripped and stripped[0] == tab:  # nothing in it was recognised as the site's
            return _drop_last_label(tab)
    return next((t for t in stripped if t), h1)


def short_title_of(meta: ArticleMeta, url: str, title: str) -> str:
    """A shorter headline the page itself gives, or "": the shortest of its metadata titles
    (JSON-LD ``alternativeHeadline`` too), without the site's name, that has three words or
    more, is at most SHORT_SHARE of ``title``'s length and is not cut short ("...")."""
    host = urlsplit(url).hostname or ""
    names = [*meta.site_names, meta.section]
    best = ""
    for given in (meta.alternative, *meta.titles):
        short = " ".join(strip_site_name(" ".join(given.split()), names, host).split())
        if len(short.split()) < 3 or short.endswith(("…", "...")):
            continue
        if len(short) <= SHORT_SHARE * len(title) and (not best or len(short) < len(best)):
            best = short
    return best


def _drop_last_label(title: str) -> str:
    """A bare ``<title>`` (no metadata, no known site name) without its short last part:
    "Headline | Author or Site" is by far the usual shape, so a last part of a few words
    after a separator is the site's or author's name more often than the headline's."""
    parts = _SEPARATOR.split(title)
    if len(parts) < 3:
        return title
    last, rest = parts[-1].strip(), "".join(parts[:-2]).strip()
    if len(last.split()) <= LABEL_WORDS and len(rest.split()) >= 3:
        return rest
    return title


def strip_site_name(title: str, names: Sequence[str], host: str, h1: str = "") -> str:
    """``title`` without leading or trailing parts that name the site (or its section)."""
    parts = _SEPARATOR.split(title)
    words = [p for i, p in enumerate(parts) if i % 2 == 0]  # parts, separators removed
    if len(words) < 2:
        return title
    if h1 and _key(h1) in {_key(w) for w in words} and _key(h1) != _key(title):
        return h1  # the page's own headline is one of the parts
    keys = [_key(n) for n in names if _key(n)]
    hosts = [label for label in host.lower().split(".") if label not in _HOST_NOISE]
    start, end = 0, len(words)
    while end - start > 1 and _is_site(words[end - 1], keys, hosts):
        end -= 1
    while end - start > 1 and _is_site(words[start], keys, hosts):
        start += 1
    if (start, end) == (0, len(words)):
        return title
    # Rejoin the headline's own parts with the separators that were between them.
    return "".join(parts[2 * start : 2 * end - 1]).strip()


def _is_site(part: str, keys: list[str], hosts: list[str]) -> bool:
    key = _key(part)
    if not key or len(part.split()) > 6:
        return False
    if key in keys:
        return True
    if any(
        k and (key.startswith(k) or k.startswith(key)) and abs(len(k) - len(key)) <= 4 for k in keys
    ):
        return True
    # "The Guardian" for theguardian.com, "Le Monde.fr" for lemonde.fr, "BBC News" for bbc.
    label = [h for h in hosts[:-1] if len(h) >= 3] if len(hosts) > 1 else hosts
    return any(
        key == h
        or (key.startswith(h) and len(key) - len(h) <= 4)
        or (h.startswith(key) and len(key) >= 4)
        or (len(h) >= 5 and h in key)
        for h in (x.replace("-", "") for x in label)
    )


def _letters(text: str) -> str:
    """Letters and digits only, case kept: tells "Rates Rise" from "RATES RISE"."""
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isalnum())


def _key(text: str) -> str:
    """Letters and digits only, case and accents folded: "Le Monde.fr" -> "lemondefr"."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in folded if c.isalnum())


def body_teaser(paragraphs: Sequence[str], title: str) -> str:
    """The first real paragraphs of the article text, enough to cut a teaser from."""
    chosen: list[str] = []
    size = 0
    seen_title = _key(title)
    for paragraph in paragraphs:
        text = " ".join(paragraph.split())
        if not _is_prose(text) or _key(text) == seen_title:
            continue
        chosen.append(text)
        size += len(text)
        if size >= TEASER_ROOM:
            break
    return " ".join(chosen)


def _sentence(text: str, width: int) -> bool:
    """A short paragraph that is still a whole sentence (a capital, seven words or more, a
    full stop): an article may open with one ("X is written and produced by Y.")."""
    return (
        width >= SHORT_SENTENCE
        and text[0].isupper()
        and text[-1] in ".!?"
        and len(text.split()) >= 7
    )


def _is_prose(text: str) -> bool:
    """A paragraph of the article, not a byline, caption, date, notice or button."""
    width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    if (width < MIN_PARAGRAPH and not _sentence(text, width)) or _DATEISH.match(text):
        return False
    if _BYLINE.match(text) and width < 200:
        return False
    return not (_NOTICE.search(text) and width < 300)
