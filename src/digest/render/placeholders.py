"""Per-recipient placeholder tokens rendered once per edition and filled in at send time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

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

TOKEN_RE = re.compile(
    r"(__DIGEST_(?:GREETING_NAME|NAME|EMAIL|UNSUBSCRIBE_URL|PREFERENCES_URL|VIEW_URL|REASON"
    r"|SIGNED_UP|DATE_LINE)__)"
)
"""Capturing pattern: ``TOKEN_RE.split(text)`` alternates static text and tokens."""


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


def recipient_tokens() -> RecipientTokens:
    """The ``recipient`` object to put in a template context."""
    return RecipientTokens()


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


def split(text: str) -> list[str]:
    """Split text into static pieces (even indexes) and tokens (odd indexes)."""
    return TOKEN_RE.split(text)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every token by its value (previews and proofs; the send path uses message.py).

    The values must already be escaped for the target (HTML-escape them for an HTML body).
    """
    return TOKEN_RE.sub(lambda m: values[m.group(1)], text)
