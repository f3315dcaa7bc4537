"""Per-recipient placeholder tokens rendered once per edition and filled in at send time.

Each rendering gets a random ``marker`` (stored with it) and its tokens are spelled with it:
``__DIGEST_3f9c..._EMAIL__``. Only that spelling is filled in, so a feed that puts
``__DIGEST_EMAIL__`` into a link cannot collect readers' addresses: it cannot know the marker
of an edition rendered after it was collected. The constants below are the canonical
(marker-less) spellings, which are also what editions rendered before markers existed hold;
values are always keyed by them.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from digest.exceptions import RenderError

# Tokens use only ASCII letters and underscores: Jinja autoescape, MJML, lxml (premailer),
# URL attribute escaping and quoted-printable all leave such a word untouched.
PREFIX = "__DIGEST_"
SUFFIX = "__"

GREETING_NAME = f"{PREFIX}GREETING_NAME{SUFFIX}"
"""Expands to ", Anna" or "" so "Hello{{ recipient.greeting_name }}!" reads well either way."""
NAME = f"{PREFIX}NAME{SUFFIX}"
"""The recipient's display name, possibly empty."""
EMAIL = f"{PREFIX}EMAIL{SUFFIX}"
"""The recipient's address."""
UNSUBSCRIBE_URL = f"{PREFIX}UNSUBSCRIBE_URL{SUFFIX}"
"""The recipient's signed one-click unsubscribe URL."""
PREFERENCES_URL = f"{PREFIX}PREFERENCES_URL{SUFFIX}"
"""The recipient's own signed preference page (else email.preferences_url)."""
VIEW_URL = f"{PREFIX}VIEW_URL{SUFFIX}"
"""The edition's page in the web archive ("View in browser"); the same for every reader of
an edition, but known only once it is stored, so it is filled in at send time."""
REASON = f"{PREFIX}REASON{SUFFIX}"
"""Why they get this, one sentence: "You signed up on 3 March 2026." (may be empty)."""
SIGNED_UP = f"{PREFIX}SIGNED_UP{SUFFIX}"
"""The day they joined, e.g. "3 March 2026" (empty if unknown)."""
DATE_LINE = f"{PREFIX}DATE_LINE{SUFFIX}"
"""The day the reader gets the edition, in their own zone: "Tuesday, 24 November 2026"
(a reader far west of a single-zone send gets it the evening before)."""

TOKENS: tuple[str, ...] = (
    GREETING_NAME,
    NAME,
    EMAIL,
    UNSUBSCRIBE_URL,
    PREFERENCES_URL,
    VIEW_URL,
    REASON,
    SIGNED_UP,
    DATE_LINE,
)

_NAMES = "|".join(t[len(PREFIX) : -len(SUFFIX)] for t in TOKENS)
MARKER = re.compile(r"[0-9a-f]{16}")
"""A marker: 64 random bits in lower-case hex (letters and digits survive every encoder)."""


def new_marker() -> str:
    """A fresh random marker for one rendering."""
    return secrets.token_hex(8)


def token(canonical: str, marker: str) -> str:
    """The spelling of ``canonical`` (e.g. EMAIL) in a rendering made with ``marker``."""
    return f"{PREFIX}{marker}_{canonical[len(PREFIX) :]}" if marker else canonical


@functools.lru_cache(maxsize=256)
def pattern(marker: str) -> re.Pattern[str]:
    """Capturing pattern of the tokens spelled with ``marker`` ("" : the canonical ones).

    A marked pattern never matches a canonical token nor one with another marker.
    """
    if marker and not MARKER.fullmatch(marker):
        raise RenderError(f"placeholder marker {marker!r} is not 16 hex digits")
    middle = f"{marker}_" if marker else ""
    return re.compile(f"{PREFIX}{middle}({_NAMES}){SUFFIX}")


TOKEN_RE = pattern("")
"""The canonical tokens (editions rendered before markers existed)."""
ANY_TOKEN = f"{PREFIX}(?:[0-9a-f]{{16}}_)?(?:{_NAMES}){SUFFIX}"
"""Any token, spelled with any marker or none (a pattern: normalize compiles it too)."""
_ANY = re.compile(ANY_TOKEN)


def is_token(value: str) -> bool:
    """Whether ``value`` is one token, spelled with any marker or none (templates' links)."""
    return _ANY.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class RecipientTokens:
    """What templates see as ``recipient``: every attribute renders as its token."""

    greeting_name: str = GREETING_NAME
    name: str = NAME
    email: str = EMAIL
    unsubscribe_url: str = UNSUBSCRIBE_URL
    preferences_url: str = PREFERENCES_URL
    view_url: str = VIEW_URL
    reason: str = REASON
    signed_up: str = SIGNED_UP
    date_line: str = DATE_LINE


def recipient_tokens(marker: str = "") -> RecipientTokens:
    """The ``recipient`` object to put in a template context, tokens spelled with ``marker``."""
    pattern(marker)  # refuses a malformed marker
    return RecipientTokens(*(token(t, marker) for t in TOKENS))


def canonical(value: str, marker: str) -> str | None:
    """The canonical token ``value`` spells with ``marker``, else None."""
    found = pattern(marker).fullmatch(value)
    return f"{PREFIX}{found.group(1)}{SUFFIX}" if found else None


def values_for(
    *,
    name: str,
    email: str,
    unsubscribe_url: str,
    preferences_url: str = "",
    view_url: str = "",
    reason: str = "",
    signed_up: str = "",
    date_line: str = "",
) -> dict[str, str]:
    """Map each token to its value for one recipient (``name`` already sanitised)."""
    return {
        GREETING_NAME: f", {name}" if name else "",
        NAME: name,
        EMAIL: email,
        UNSUBSCRIBE_URL: unsubscribe_url,
        PREFERENCES_URL: preferences_url,
        VIEW_URL: view_url,
        REASON: reason,
        SIGNED_UP: signed_up,
        DATE_LINE: date_line,
    }


def split(text: str, marker: str = "") -> list[str]:
    """Split text into static pieces (even indexes) and the canonical tokens (odd indexes)
    of the tokens spelled with ``marker``; other spellings stay static text."""
    pieces = pattern(marker).split(text)
    pieces[1::2] = [f"{PREFIX}{name}{SUFFIX}" for name in pieces[1::2]]
    return pieces


def substitute(text: str, values: Mapping[str, str], marker: str = "") -> str:
    """Replace every token spelled with ``marker`` by its value, ``values`` keyed by the
    canonical tokens (previews and proofs; the send path uses message.py).

    The values must already be escaped for the target (HTML-escape them for an HTML body).
    """
    return pattern(marker).sub(lambda m: values[f"{PREFIX}{m.group(1)}{SUFFIX}"], text)
