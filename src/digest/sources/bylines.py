"""Who wrote a story and how long it is: bylines cleaned of addresses, words counted."""

from __future__ import annotations

import re

from digest.normalize import clean_text, cut_teaser

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


# A byline is a person or a desk, never a way to reach one.
_CONTACT = re.compile(r"(?:https?://|www\.|mailto:)\S*|\S+@\S+\.\w+", re.IGNORECASE)
# "By Jo Lee", or a label ("Author: Jo Lee", "Autor: ...") some feeds put in the name itself.
_BY = re.compile(
    r"^(?:(?:by|written by|posted by|von|par|por|door|di|av|af)\s+"
    r"|(?:authors?|by|written by|posted by|autor(?:in)?|auteur|autore)\s*:\s*)(?=\S)",
    re.IGNORECASE,
)
_EMPTY_BYLINE = re.compile(r"^[\s(),;:|/&·•\-–—]*$")
BYLINE_LENGTH = 120


def byline(*names: str) -> str:
    """The author names of a story as one line ("Ana Ruiz, Tom Li"): each cleaned to plain
    text, without a leading "By", URLs and email addresses ("jo@x.org (Jo Lee)" -> "Jo Lee");
    a name that is nothing but such an address is dropped. "" when none is left."""
    kept: list[str] = []
    for name in names:
        text = _trim(_BY.sub("", _trim(_CONTACT.sub(" ", clean_text(name)))))
        if _EMPTY_BYLINE.match(text) or text.casefold() in {k.casefold() for k in kept}:
            continue
        kept.append(text)
    return cut_teaser(", ".join(kept), BYLINE_LENGTH)


def _trim(text: str) -> str:
    """``text`` without separators at its ends, nor parentheses left unbalanced or wrapping
    it whole ("(Jo Lee)", "Jo Lee )" once an address is gone)."""
    while True:
        before = text
        text = _SPACE.sub(" ", text).strip(" ,;:|/-–—")
        if text.endswith(")") and text.count(")") > text.count("("):
            text = text[:-1]
        elif text.startswith("(") and text.count("(") > text.count(")"):
            text = text[1:]
        elif text.startswith("(") and text.endswith(")") and text.count("(") == 1:
            text = text[1:-1]
        if text == before:
            return text


# A text this short is an excerpt, not the article: no reading time is taken from it.
FULL_TEXT_WORDS = 80
# Unspaced scripts (CJK, Thai) have no words to count; about two characters make one.
_UNSPACED_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f]")


def word_count(text: str) -> int:
    """Words in a plain (or HTML) text, for the reading time; characters of unspaced
    scripts count two to a word."""
    plain = clean_text(text) if "<" in text or "&" in text else text
    unspaced = len(_UNSPACED_CHAR.findall(plain))
    spaced = len(_WORD.findall(_UNSPACED_CHAR.sub(" ", plain)))
    return spaced + (unspaced + 1) // 2
