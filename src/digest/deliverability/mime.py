"""Reading a returned mail: its parts as text, the returned original, its addresses."""

from __future__ import annotations

import email
import email.message
import re
from email import errors
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

from digest.deliverability.model import Delivery

ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+"
)
VERP = re.compile(r"\b[\w.\-]*?bounces?\+([A-Za-z0-9_\-.=]+)@", re.IGNORECASE)
# Where a text bounce stops talking and starts quoting the original.
ORIGINAL_MARKERS = re.compile(
    r"^\s*(?:-+ ?)?(?:"
    r"(?:the )?original message (?:follows|headers? follows?|header)|"
    r"below (?:this line )?is a copy of the message|"
    r"this is a copy of the message|"
    r"a copy of the (?:original )?message (?:below|follows)|"
    r"message headers follow|"
    r"(?:unsent|returned|undelivered|original) message (?:follows|below|header)|"
    r"(?:the )?headers? of (?:the|your) (?:original )?message|"
    r"original message header|"
    r"the (?:original )?message (?:was|is) attached|"
    r"----- ?(?:original|forwarded|returned|unsent) message|"
    r"content-type: message/rfc822|"
    r"--- ?(?:below|original)"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_LINE = re.compile(r"^(Message-ID|To|From|Subject|X-Digest-[\w-]+):\s*(.*)$", re.I | re.M)


def load(data: bytes) -> Message:
    """Parse ``data`` leniently (compat32 keeps going over broken headers)."""
    return email.message_from_bytes(data)


def header(msg: Message, name: str) -> str:
    """A header decoded to text (RFC 2047), or ""; never raises on a bad encoding."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, TypeError, errors.MessageError):
        return str(value)


def part_text(part: Message) -> str:
    """The decoded text of one non-multipart part, whatever its declared charset."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    for name in (charset, "utf-8", "latin-1"):
        try:
            return payload.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def is_original(part: Message) -> bool:
    return part.get_content_type() in (
        "message/rfc822",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global",
        "message/global-headers",
        "message/partial",
    )


def report_texts(msg: Message) -> list[str]:
    """The human-readable texts of the report, without the returned original."""
    out: list[str] = []
    _walk(msg, out)
    return out


def _walk(part: Message, out: list[str]) -> None:
    if is_original(part):
        return
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    _walk(child, out)
        return
    ctype = part.get_content_type()
    readable = ("message/delivery-status", "application/octet-stream", "message/feedback-report")
    # A multipart whose boundary never appears comes as one string: read it as text.
    if ctype.startswith(("text/", "multipart/")) or ctype in readable:
        text = part_text(part)
        if ctype == "text/html":
            text = html_to_text(text)
        out.append(text)


def html_to_text(html: str) -> str:
    text = re.sub(r"(?is)<(script|style).*?</\1>", " ", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", text)
    text = re.sub(r"<[^>]+>", " ", text)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"), ("&nbsp;", " ")):
        text = text.replace(entity, char)
    return text


def split_original(text: str) -> tuple[str, str]:
    """A text bounce cut where it starts quoting the original: (report, original)."""
    found = ORIGINAL_MARKERS.search(text)
    if found is None:
        return text, ""
    return text[: found.start()], text[found.start() :]


def original_headers(msg: Message) -> dict[str, str]:
    """Headers of the returned original (attached, or quoted in the text), lower-cased names."""
    for part in msg.walk():
        if not is_original(part):
            continue
        payload = part.get_payload()
        inner: Message | None = None
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            inner = payload[0]
        elif isinstance(payload, str):
            inner = email.message_from_string(payload.lstrip())
        if inner is not None and len(inner):
            return {k.lower(): header(inner, k) for k in inner}
    quoted: dict[str, str] = {}
    for text in _all_texts(msg):
        _, tail = split_original(text)
        for name, value in _HEADER_LINE.findall(tail):
            quoted.setdefault(name.lower(), value.strip())
    return quoted


def _all_texts(msg: Message) -> list[str]:
    return [
        part_text(p)
        for p in msg.walk()
        if not p.is_multipart() and p.get_content_maintype() == "text"
    ]


def delivery(msg: Message, original: dict[str, str]) -> Delivery:
    """Message-ID and X-Digest-* headers of the original, and a VERP token from the bounce's
    envelope headers (where the returned mail was addressed)."""
    token = None
    for name in ("X-Original-To", "Delivered-To", "To", "Envelope-To"):
        found = VERP.search(header(msg, name))
        if found:
            token = found.group(1)
            break
    digest_headers = {k: v for k, v in original.items() if k.startswith("x-digest-")}
    message_id = original.get("message-id") or None
    return Delivery(message_id=message_id, headers=digest_headers, token=token)


def addresses(value: str) -> list[str]:
    """Addresses in a header or text value, in order, without duplicates."""
    seen: list[str] = []
    for _, addr in getaddresses([value]):
        if "@" in addr and addr not in seen:
            seen.append(addr)
    if not seen:
        for addr in ADDRESS.findall(value):
            if addr not in seen:
                seen.append(addr)
    return seen


def clean_address(value: str) -> str:
    """An address from a DSN field or a text line: no type prefix, brackets or quotes."""
    value = value.strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    found = ADDRESS.search(value)
    return found.group(0).strip(".").lower() if found else ""
