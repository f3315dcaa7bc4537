"""Assemble MIME bytes: built once per rendered variant, personalised per recipient cheaply."""

from __future__ import annotations

import binascii
import functools
import html
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, parseaddr

from digest.exceptions import ConfigError
from digest.models import Publication, RenderedEdition
from digest.render import placeholders
from digest.render.dates import date_label
from digest.render.dkim import DkimSigner

CRLF = b"\r\n"
MAX_LINE = 78
NAME_MAX = 100
# Headers this module owns; extra_headers may not replace them.
_OWN = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Content-Language",
        "Feedback-ID",
        "DKIM-Signature",
    )
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ":"
_ADDR = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_MSGID = re.compile(r"<[!-;=?-~]+@[A-Za-z0-9.-]+>")
_URL = re.compile(r"[!-;=?-~]+")  # printable ASCII without spaces, "<" or ">"
# A display name Address() leaves unquoted (no RFC 5322 specials): the usual case.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
# Values shared by many readers (the edition's archive link, "You signed up on ..."): their
# encodings are kept, up to this many, instead of being made again for every message.
_SHARED = frozenset(
    (placeholders.VIEW_URL, placeholders.REASON, placeholders.SIGNED_UP, placeholders.DATE_LINE)
)
_SHARED_MAX = 4096


@dataclass(frozen=True, slots=True)
class Recipient:
    """One addressee; ``unsubscribe_url`` is the per-subscriber signed https URL.

    ``preferences_url`` is their own preference page; empty: the message's default one.
    ``view_url`` is the edition's archive page, ``reason`` why they get this ("You signed
    up on 3 March 2026.") and ``signed_up`` the day they joined; ``date_line`` the day they
    get it, in their zone ("Tuesday, 24 November 2026"; empty: the day of the Date header).
    """

    email: str
    name: str
    unsubscribe_url: str
    preferences_url: str = ""
    view_url: str = ""
    reason: str = ""
    signed_up: str = ""
    date_line: str = ""


def clean_name(name: str) -> str:
    """Display name safe for a header and a greeting: no control or separator characters."""
    if name.isascii() and name.isprintable():  # the common case, without a look per character
        return " ".join(name.split())[:NAME_MAX].strip()
    kept = "".join(
        " " if unicodedata.category(ch)[0] in "CZ" else ch for ch in name
    )  # CR, LF, NUL, bidi overrides, U+2028 ... all become spaces, then collapse.
    return " ".join(kept.split())[:NAME_MAX].strip()


def _check_addr(addr: str, what: str) -> str:
    if not _ADDR.fullmatch(addr):
        raise ConfigError(f"{what} {addr!r} is not a plain ASCII e-mail address; correct it")
    return addr


def mailbox(display: str, addr: str) -> Address:
    """``display <addr>`` for an address header, quoted and encoded by the email package
    (a comma or a quote in a name never becomes a second address); ``display`` already
    passed through clean_name(). Split here rather than parsed: an address our checks let
    through (a..b@example.org) must not stop a message."""
    local, _, domain = addr.rpartition("@")
    return Address(display_name=display, username=local, domain=domain)


def sender_address(publication: Publication) -> str:
    """The bare addr-spec of the publication's sender, for the SMTP envelope."""
    return _check_addr(parseaddr(publication.sender)[1], "sender address")


def make_message_id(domain: str, *, unique: str | None = None) -> str:
    """A Message-ID "<unique@domain>"; ``unique`` defaults to 128 random bits."""
    left = unique if unique is not None else secrets.token_hex(16)
    value = f"<{left}@{domain}>"
    if not _MSGID.fullmatch(value):
        raise ConfigError(f"cannot build a Message-ID from {left!r} and domain {domain!r}")
    return value


def _fold_words(name: str, words: list[str]) -> bytes:
    """Join words with single spaces, folding before a word that would pass 78 columns."""
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) > MAX_LINE and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _phrase_words(text: str, name: str) -> list[str]:
    """Words of an unstructured value; RFC 2047 encoded words when it is not ASCII."""
    if text.isascii():
        return text.split()
    return Header(text, "utf-8", header_name=name).encode(linesep="\n", maxlinelen=76).split()


def _address_header(name: str, display: str, addr: str) -> bytes:
    """``name: display <addr>``; ``display`` already passed through clean_name()."""
    if not display:
        return f"{name}: {addr}\r\n".encode("ascii")
    if display.isascii():
        if len(name) + len(display) + len(addr) + 5 <= MAX_LINE and _PLAIN_NAME.fullmatch(display):
            return f"{name}: {display} <{addr}>\r\n".encode("ascii")  # what folding would give
        words = str(mailbox(display, addr)).split(" ")
    else:
        words = [*_phrase_words(display, name), f"<{addr}>"]
    return _fold_words(name, words)


def _plain_header(name: str, value: str) -> bytes:
    if not _HEADER_NAME.fullmatch(name):
        raise ConfigError(f"header name {name!r} is not valid; use printable ASCII without ':'")
    if "\r" in value or "\n" in value:
        raise ConfigError(f"header {name} contains a line break; remove it")
    return _fold_words(name, _phrase_words(" ".join(value.split()), name))


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF, ending on a line break so chunks concatenate exactly.

    A line that would start with "." has it encoded as "=2E": then no line needs SMTP
    dot-stuffing, and the SMTP backend can skip copying the whole message to add the dots.
    """
    if not text:
        return b""
    if len(text) <= 75 and _QP_SAFE.fullmatch(text):
        return text.encode("ascii") + b"=" + CRLF  # what b2a_qp gives, without the work
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", CRLF)
    encoded = encoded if encoded.endswith(CRLF) else encoded + b"=" + CRLF
    if encoded.startswith(b".") or b"\n." in encoded:
        encoded = CRLF.join(_no_leading_dot(line) for line in encoded.split(CRLF))
    return encoded


# Printable ASCII without "=", not starting with "." nor ending in a space: QP leaves it as is.
_QP_SAFE = re.compile(
    r"[\x21-\x2d\x2f-\x3c\x3e-\x7e](?:[\x20-\x3c\x3e-\x7e]*[\x21-\x3c\x3e-\x7e])?"
)


def _no_leading_dot(line: bytes) -> bytes:
    """``line`` with a leading "." as "=2E", re-wrapped with soft breaks to <= 76 octets."""
    if not line.startswith(b"."):
        return line
    soft = line.endswith(b"=") and not _QP_ESCAPE_END.search(line)
    body = b"=2E" + (line[1:-1] if soft else line[1:])
    units = _QP_UNITS.findall(body)  # "=XX" escapes stay whole
    lines, current = [], b""
    for unit in units:
        if len(current) + len(unit) > 75:
            lines.append(current + b"=")
            current = b""
        current += b"=2E" if not current and unit == b"." else unit
    lines.append(current + (b"=" if soft else b""))
    return CRLF.join(lines)


_QP_UNITS = re.compile(rb"=[0-9A-F]{2}|.", re.DOTALL)
_QP_ESCAPE_END = re.compile(rb"=[0-9A-F]{2}$")


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


class PreparedMessage:
    """The constant bytes of one variant's message, with slots for per-recipient values."""

    __slots__ = (
        "_dkim",
        "_head",
        "_html",
        "_html_tokens",
        "_links",
        "_mailto",
        "_part_html",
        "_part_text",
        "_preferences",
        "_shared",
        "_tail",
        "_text",
        "_text_tokens",
        "_tokens",
    )

    def __init__(
        self,
        *,
        head: bytes,
        text: str,
        html_body: str,
        boundary: str,
        mailto: str,
        dkim: DkimSigner | None = None,
        preferences_url: str = "",
        marker: str = "",
    ) -> None:
        b = boundary.encode("ascii")
        self._head = head
        self._preferences = preferences_url
        self._mailto = mailto
        self._dkim = dkim
        self._part_text = (
            CRLF
            + b"--"
            + b
            + CRLF
            + b'Content-Type: text/plain; charset="utf-8"'
            + CRLF
            + b"Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        )
        self._part_html = (
            CRLF
            + b"--"
            + b
            + CRLF
            + b'Content-Type: text/html; charset="utf-8"'
            + CRLF
            + b"Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        )
        self._tail = CRLF + b"--" + b + b"--" + CRLF
        # Only the tokens spelled with the rendering's marker are slots: any other spelling
        # (a feed's "__DIGEST_EMAIL__" in a link) is static text like the rest.
        self._text = self._chunks(text, marker)
        self._html = self._chunks(html_body, marker)
        # Only the tokens a part holds are encoded for each recipient.
        self._text_tokens = frozenset(c for c in self._text if isinstance(c, str))
        self._html_tokens = frozenset(c for c in self._html if isinstance(c, str))
        self._tokens = tuple(sorted(self._text_tokens | self._html_tokens))
        self._shared: dict[str, tuple[bytes, bytes]] = {}
        self._links: set[str] = set()  # view and preference links already checked

    @staticmethod
    def _chunks(body: str, marker: str) -> tuple[bytes | str, ...]:
        # Static pieces are encoded now; tokens stay as str slots for personalise().
        pieces = placeholders.split(_normalise(body), marker)
        return tuple(_qp(p) if i % 2 == 0 else p for i, p in enumerate(pieces))

    def personalise(self, recipient: Recipient, *, date: datetime, message_id: str) -> bytes:
        """The complete message for one recipient, CRLF line endings, ready for SMTP.

        With a DKIM signer, the message is signed here: the one per-message crypto cost.
        """
        addr = _check_addr(recipient.email, "recipient address")
        url = recipient.unsubscribe_url
        if not url.startswith("https://") or not _URL.fullmatch(url):
            raise ConfigError(f"unsubscribe URL for {addr} must be one https URL without spaces")
        for link in (recipient.view_url, recipient.preferences_url):
            if link and link not in self._links:
                if not _URL.fullmatch(link):
                    raise ConfigError(f"link {link!r} for {addr} must be one URL without spaces")
                if link == recipient.view_url and len(self._links) < _SHARED_MAX:
                    self._links.add(link)  # the edition's one archive link: checked once
        if not _MSGID.fullmatch(message_id):
            raise ConfigError(f"Message-ID {message_id!r} is not '<unique@domain>'")
        name = clean_name(recipient.name)
        values = placeholders.values_for(
            name=name,
            email=addr,
            unsubscribe_url=url,
            preferences_url=recipient.preferences_url or self._preferences,
            view_url=recipient.view_url,
            reason=recipient.reason,
            signed_up=recipient.signed_up,
            date_line=recipient.date_line or _day_of(date),
        )
        text_values: dict[str, bytes] = {}
        html_values: dict[str, bytes] = {}
        for key in self._tokens:
            text_values[key], html_values[key] = self._encode(key, values[key])
        unsubscribe = [f"<{url}>" + ("," if self._mailto else "")]
        if self._mailto:
            unsubscribe.append(f"<{self._mailto}>")
        out = [
            _address_header("To", name, addr),
            _date_header(date),
            b"Message-ID: " + message_id.encode("ascii") + CRLF,
            _fold_words("List-Unsubscribe", unsubscribe),
            self._head,
            self._part_text,
        ]
        out += [c if isinstance(c, bytes) else text_values[c] for c in self._text]
        out.append(self._part_html)
        out += [c if isinstance(c, bytes) else html_values[c] for c in self._html]
        out.append(self._tail)
        data = b"".join(out)
        return self._dkim.sign(data) if self._dkim is not None else data

    def _encode(self, key: str, value: str) -> tuple[bytes, bytes]:
        """A value as it goes into the text part and into the HTML part (escaped), QP."""
        shared = key in _SHARED
        if shared and (found := self._shared.get(value)) is not None:
            return found
        text = _qp(value)
        escaped = html.escape(value, quote=True)
        both = (text, text if escaped == value else _qp(escaped))  # most values need no escape
        if shared:
            if len(self._shared) >= _SHARED_MAX:
                self._shared.clear()
            self._shared[value] = both
        return both


@functools.lru_cache(maxsize=4)
def _day_of(date: datetime) -> str:
    # Without a reader's own date line: the day of the message's Date, in its zone.
    return date_label(date.date())


def _date_header(date: datetime) -> bytes:
    """The Date header; a send stamps thousands of messages with the same second."""
    return _date_line(date, date.utcoffset())


@functools.lru_cache(maxsize=4)
def _date_line(date: datetime, _offset: object) -> bytes:
    # Keyed by the offset too: equal instants in two zones are equal datetimes.
    return b"Date: " + format_datetime(date).encode("ascii") + CRLF


def prepare_message(
    rendered: RenderedEdition,
    publication: Publication,
    *,
    unsubscribe_mailto: str = "",
    extra_headers: Mapping[str, str] | None = None,
    feedback_id: str = "",
    dkim: DkimSigner | None = None,
    preferences_url: str = "",
) -> PreparedMessage:
    """Build the shared part of every recipient's message for one rendered variant.

    ``feedback_id`` becomes a Feedback-ID header (Gmail's feedback loop, e.g.
    "daily:brief:digest"); ``dkim`` signs each personalised message; ``preferences_url``
    fills the preferences link of recipients without their own.
    """
    display, addr = parseaddr(publication.sender)
    _check_addr(addr, "sender address")
    if unsubscribe_mailto and not (
        unsubscribe_mailto.startswith("mailto:") and _URL.fullmatch(unsubscribe_mailto)
    ):
        raise ConfigError(f"unsubscribe mailto {unsubscribe_mailto!r} must be 'mailto:addr'")
    # QP output never contains "=_" ("=" is always followed by hex or CRLF), so this
    # boundary cannot occur inside either part.
    boundary = f"=_digest_{rendered.content_hash[:32]}"
    head = [_address_header("From", clean_name(display), addr)]
    if publication.reply_to:
        r_display, r_addr = parseaddr(publication.reply_to)
        head.append(
            _address_header("Reply-To", clean_name(r_display), _check_addr(r_addr, "reply-to"))
        )
    head += [
        _plain_header("Subject", rendered.subject),
        b"MIME-Version: 1.0" + CRLF,
        _fold_words("Content-Type", ["multipart/alternative;", f'boundary="{boundary}"']),
        _plain_header("Content-Language", publication.language),
        _fold_words(
            "List-Id",
            [
                *_phrase_words(clean_name(publication.name), "List-Id"),
                f"<{publication.effective_list_id}>",
            ],
        ),
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF,
    ]
    if feedback_id:
        head.append(_plain_header("Feedback-ID", feedback_id))
    for name, value in (extra_headers or {}).items():
        if name.lower() in _OWN:
            raise ConfigError(f"extra header {name} would replace digest's own; remove it")
        head.append(_plain_header(name, value))
    return PreparedMessage(
        head=b"".join(head),
        text=rendered.text,
        html_body=rendered.html,
        boundary=boundary,
        mailto=unsubscribe_mailto,
        dkim=dkim,
        preferences_url=preferences_url,
        marker=rendered.marker,
    )
