"""The editorial frame: layout options, pictures, bylines, direction, subjects that fit."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from digest.models import Story

LAYOUTS = ("cards", "briefing")
SUBJECT_FIT = 60
"""Subjects longer than this are cut by clients (and read worse): `fit` keeps to it."""
DEFAULT_SUBJECT = '{{ (publication.name ~ ": " ~ lead.title) | fit }}'
TOC_SIZE = 5  # "In today's edition" without sections: the first stories of the running order
GREETINGS = ("first_name", "none")
# Where a headline's first phrase ends: a comma, semicolon or spaced dash.
_FIRST_PHRASE = re.compile(r"(?<=\S)(?:[,;]| [-–—]) ")
WORDS_PER_MINUTE = 230
COVERAGE_SHOWN = 4  # other sources linked under a story; the rest are counted
# Languages written right to left (ISO 639 primary subtags).
RTL_LANGUAGES = frozenset(
    {
        "ar",
        "arc",
        "ckb",
        "dv",
        "fa",
        "ha-arab",
        "he",
        "iw",
        "ks",
        "ku-arab",
        "ps",
        "sd",
        "ug",
        "ur",
        "yi",
    }
)
_TRAILING = " ,;:–—-"
# Where a phrase ends: after a comma, semicolon or colon, or before a spaced dash.
_PHRASE_END = re.compile(r"[,;:](?=\s)|\s[–—-]\s")


@dataclass(frozen=True, slots=True)
class Picture:
    """An ``<img>`` to write: ``height`` 0 only for hotlinked images of unknown shape."""

    src: str
    width: int
    height: int
    alt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """What surrounds the stories; one per publication (from config) plus per-edition values.

    ``archive_url`` may contain ``{date}`` (the edition's ISO date). ``preferences`` shows
    the "Manage preferences" link, filled per recipient like the unsubscribe link.
    """

    layout: str = "cards"
    editor_note: str = ""
    hotlink: bool = False
    logo: Picture | None = None
    logo_dark: Picture | None = None
    archive_url: str = ""
    preferences: bool = False
    signup_url: str = ""
    html_budget: int = 0  # 0: no fitting
    greeting: str = "first_name"  # "Hello, Anna!" ("Hello!" without a name), or none

    def shows_thumbnails(self) -> bool:
        return self.layout == "cards"

    def role(self, index: int) -> str | None:
        """The image role of the story at ``index`` in the running order (None: no image)."""
        if index == 0:
            return "lead"
        return "thumb" if self.shows_thumbnails() else None

    def archive_link(self, day: date) -> str:
        return self.archive_url.replace("{date}", day.isoformat())


def short_headline(story: Story | str) -> str:
    """The short headline of ``story`` (a story or a headline), for a subject that asks for
    it (``{{ lead | short_headline }}``): the one its source gives (``short_title``), else
    the headline without a leading label ("Brexit: ", "Live: ") and cut after its first
    phrase when that phrase says enough on its own (four words or more): "Open-source
    browser engine passes 95% of web platform tests, beating rivals" gives its first
    clause, "Paris, Texas wins award" stays whole."""
    if isinstance(story, Story) and story.short_title.strip():
        return " ".join(story.short_title.split())
    title = " ".join((story.title if isinstance(story, Story) else str(story)).split())
    label, colon, rest = title.partition(": ")
    if colon and rest and len(label.split()) <= 3:
        title = rest
    first = _FIRST_PHRASE.split(title, maxsplit=1)[0]
    return first if first != title and len(first.split()) >= 4 else title


def fit(text: str, width: int = SUBJECT_FIT) -> str:
    """``text`` in at most ``width`` characters, never cut inside a phrase if it can help it.

    In order: the whole text; cut after its last phrase (at a comma, semicolon, colon or
    dash) if that keeps at least half the width; the text after a leading label ("The
    Harbour Herald: ...", the sender's name already says it) if that fits or can be cut at
    a phrase; only then, for one long phrase, at a word boundary with "…".
    """
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = _at_phrase(text, width)
    if cut:
        return cut
    label, colon, rest = text.partition(": ")
    if colon and rest and len(label) < width // 2:
        if len(rest) <= width:
            return rest
        cut = _at_phrase(rest, width)
        if cut:
            return cut
    cut = text[: width - 1]
    if text[width - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(_TRAILING) + "…"


def _at_phrase(text: str, width: int) -> str:
    """``text`` up to its last phrase boundary within ``width`` (with "…"), or ""."""
    ends = [m.start() for m in _PHRASE_END.finditer(text) if m.start() <= width - 1]
    if not ends or ends[-1] < width // 2:
        return ""
    return text[: ends[-1]].rstrip(_TRAILING) + "…"


def is_rtl(language: str) -> bool:
    tag = language.strip().lower().replace("_", "-")
    subtags = tag.split("-")
    # "ku-arab" is written right to left, "ku" and "ha-latn" are not.
    if tag in RTL_LANGUAGES:
        return True
    return subtags[0] in RTL_LANGUAGES and not {"latn", "cyrl"} & set(subtags[1:])


def direction(story: Story) -> str:
    """The ``dir`` of a story block: "rtl" for a known RTL language, else "auto"."""
    return "rtl" if story.language and is_rtl(story.language) else "auto"


def reading_minutes(story: Story) -> int:
    return math.ceil(story.word_count / WORDS_PER_MINUTE) if story.word_count > 0 else 0


def byline(story: Story) -> str:
    """ "By Jane Doe · 4 min read · Source · also in X, Y": what the source gave us."""
    parts = []
    if story.author:
        parts.append(f"By {story.author}")
    minutes = reading_minutes(story)
    if minutes:
        parts.append(f"{minutes} min read")
    parts.append(story.source)
    # A story leading an event lists its other sources on a line of their own, linked
    # (coverage_links); only a story without that line names them here.
    if story.also_in and not story.coverage:
        parts.append("also in " + ", ".join(story.also_in))
    return " · ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Covered:
    """One source under an event's lead: its story's URL, or "" (the same page as the
    lead's, carried by that source too)."""

    source: str
    url: str = ""
    title: str = ""


def coverage_links(story: Story, shown: int = COVERAGE_SHOWN) -> tuple[list[Covered], int]:
    """The other sources that told ``story``'s event, for "Also in: X, Y": one entry per
    source other than its own, those with a story of their own first (linked), at most
    ``shown``; and how many more there are. Empty for a story that leads no event."""
    if not story.coverage:
        return [], 0
    first: dict[str, Covered] = {}
    for c in story.coverage:
        if c.source != story.source:
            first.setdefault(c.source, Covered(c.source, c.url, c.title))
    for name in story.also_in:
        if name != story.source:
            first.setdefault(name, Covered(name))
    links = list(first.values())
    return links[:shown], max(0, len(links) - shown)


class Pictures:
    """Which ``<img>`` each story gets in this layout: our renditions, or the hotlinked URL."""

    def __init__(self, frame: Frame, stories: Sequence[Story]) -> None:
        self.frame = frame
        self._anchors = {s.url: f"s{i + 1}" for i, s in enumerate(stories)}

    def anchor(self, story: Story) -> str:
        return self._anchors.get(story.url, "")

    def __call__(self, story: Story, role: str) -> Picture | None:
        image = story.image
        if image is None:
            return None
        # The lead keeps its description (or caption) as alt; a thumbnail beside its own
        # headline is decorative: alt="" so screen readers do not hear the headline twice.
        alt = (image.alt or image.caption) if role == "lead" else ""
        own = image.rendition(role)
        if own is not None:
            return Picture(own.url, own.width, own.height, alt)
        if not self.frame.hotlink:
            return None
        return Picture(image.url, 592 if role == "lead" else 96, 0, alt)
