"""Plain-text wrapping by display width: CJK counts double, Latin words are never broken."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

# Only ASCII whitespace separates words: an ideographic space (U+3000) or a no-break space
# is part of the text, kept as it is.
_SPACE = re.compile(r"[ \t\n\r\f\v]+")

# Kinsoku (simplified): these never start a line, so they stay with what comes before...
_NO_START = frozenset(
    "、。，．,.!?！？:;：；)]}）」』】〉》〕〗〙〛’”ー々ゝゞァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎ"
)
# ... and these never end one, so they stay with what follows.
_NO_END = frozenset("([{（「『【〈《〔〖〘〚‘“")


def char_width(ch: str) -> int:
    """Columns ``ch`` takes in a fixed-width font: 0 for combining marks, 2 for wide CJK."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes (see char_width)."""
    return sum(char_width(ch) for ch in text)


def _breaks_anywhere(ch: str) -> bool:
    # Scripts written without spaces between words may break between any two characters.
    return unicodedata.east_asian_width(ch) in ("W", "F") and not ch.isspace()


def _can_break(before: str, ch: str) -> bool:
    """May a line break fall between ``before`` and ``ch`` inside one space-less word?"""
    if ch in _NO_START or before in _NO_END:
        return False
    # Between CJK characters, and where CJK meets Latin (e.g. "東京2026年"); never inside
    # a run of Latin letters.
    return _breaks_anywhere(ch) or _breaks_anywhere(before)


def _units(paragraph: str) -> Iterator[tuple[str, bool]]:
    """Unbreakable pieces of a paragraph, each with "a space came before it"."""
    space = False
    for word in _SPACE.split(paragraph.strip(" \t\n\r\f\v")):
        if not word:
            continue
        current = ""
        for ch in word:
            if current and _can_break(current[-1], ch):
                yield current, space
                space, current = False, ""
            current += ch
        if current:
            yield current, space
        space = True


def wrap_paragraph(paragraph: str, width: int = 72, indent: str = "") -> list[str]:
    """Greedy fill by display width; a unit wider than the line (a URL) stands alone."""
    lines: list[str] = []
    line, used = indent, display_width(indent)
    empty = True
    for unit, spaced in _units(paragraph):
        gap = " " if spaced and not empty else ""
        size = display_width(unit)
        if not empty and used + len(gap) + size > width:
            lines.append(line)
            line, used, gap = indent, display_width(indent), ""
        line += gap + unit
        used += len(gap) + size
        empty = False
    if not empty:
        lines.append(line)
    return lines


def wrap_text(text: str, width: int = 72, indent: str = "") -> str:
    """Wrap each paragraph (separated by a blank line) of ``text`` at ``width`` columns.

    Whitespace inside a paragraph collapses; characters are never normalised or dropped.
    """
    paragraphs = str(text).split("\n\n")
    return "\n\n".join("\n".join(wrap_paragraph(p, width, indent)) for p in paragraphs if p.split())
