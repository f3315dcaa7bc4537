"""Decoding fetched bytes as browsers do, and saying when the charset had to be guessed.

HTML: byte order mark, then the HTTP charset, then the ``<meta>`` prescan, then UTF-8.
XML (feeds): byte order mark, then the HTTP charset, then the XML declaration, then UTF-8.
A declared codec is used only when it decodes the bytes cleanly; otherwise a text that is
UTF-8 with stray Windows-1252 bytes (a common mix in feeds) keeps both, and anything else
goes to charset-normalizer. Nothing is dropped: bytes no codec explains stay as U+FFFD,
and ``Decoded.lost`` counts them so the caller can warn.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass

from charset_normalizer import from_bytes

BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# WHATWG Encoding Standard labels that Python spells or scopes differently.
ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "windows-1252": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
}
PRESCAN = 4096  # bytes searched for <meta charset> or the XML declaration
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_META = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE | re.DOTALL)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)["']""")
_CP1252_HOLES = frozenset(b"\x81\x8d\x8f\x90\x9d")  # undefined in Windows-1252


@dataclass(frozen=True, slots=True)
class Decoded:
    """The text and how it was found: ``how`` is bom, http, meta, xml, default or guessed."""

    text: str
    encoding: str
    how: str
    declared: str = ""  # the charset the response or document named, if any
    lost: int = 0  # bytes no codec could explain, kept as U+FFFD

    @property
    def guessed(self) -> bool:
        return self.how in ("guessed", "mixed")

    def note(self) -> str:
        """One line for the source's health when the charset was not simply as declared."""
        said = f"declared {self.declared}" if self.declared else "none declared, UTF-8"
        if self.how == "mixed":
            return f"encoding guessed: UTF-8 mixed with Windows-1252 ({said} does not decode)"
        if self.how == "guessed":
            return f"encoding guessed: {self.encoding} ({said} does not decode)"
        return ""


def decode_html(body: bytes, headers: Mapping[str, str]) -> Decoded:
    """``body`` of an HTML page decoded as a browser would."""
    head = body[:PRESCAN]
    meta = _META.search(head)
    declared = meta.group(1).decode("ascii", "replace") if meta else ""
    # A page cannot be UTF-16 and still be read by an ASCII prescan (WHATWG says UTF-8).
    if declared.lower().startswith("utf-16"):
        declared = "utf-8"
    return _decode(body, headers, declared, "meta")


def decode_xml(body: bytes, headers: Mapping[str, str]) -> Decoded:
    """``body`` of an XML document (a feed) decoded by its BOM, HTTP charset or declaration."""
    decl = _XML_DECL.search(body[:PRESCAN])
    declared = decl.group(1).decode("ascii", "replace") if decl else ""
    if declared.lower().startswith("utf-16"):
        declared = ""  # a declaration readable as ASCII is not in UTF-16 (it would have a BOM)
    return _decode(body, headers, declared, "xml")


def decode_json(body: bytes, headers: Mapping[str, str]) -> Decoded:
    """``body`` of a JSON document: UTF-8 by RFC 8259, but the same fallbacks apply."""
    return _decode(body, headers, "", "")


def codec(label: str) -> str | None:
    """The Python codec for a charset label, or None when Python has no such codec."""
    name = label.strip().lower()
    name = ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decode(body: bytes, headers: Mapping[str, str], inner: str, where: str) -> Decoded:
    for bom, name in BOMS:
        if body.startswith(bom):
            text = body[len(bom) :].decode(name, "replace")
            return Decoded(text, name, "bom", lost=text.count("\ufffd"))
    found = _HTTP_CHARSET.search(_header(headers, "content-type"))
    declared = [(found.group(1), "http")] if found else []
    if inner:
        declared.append((inner, where))
    named = declared[0][0] if declared else ""
    for label, how in declared:
        known = codec(label)
        if known is None:
            continue  # an unknown label: try the next declaration, as browsers do
        try:
            return Decoded(body.decode(known), known, how, named)
        except UnicodeDecodeError:
            return _fallback(body, named)
    try:
        return Decoded(body.decode("utf-8"), "utf-8", "default", named)
    except UnicodeDecodeError:
        return _fallback(body, named)


def _fallback(body: bytes, declared: str) -> Decoded:
    """The declared codec (or the UTF-8 default) does not decode ``body``: recover
    without losing characters."""
    mixed = _mixed_utf8(body)
    if mixed is not None:
        return Decoded(mixed[0], "utf-8", "mixed", declared, mixed[1])
    best = from_bytes(body).best()
    if best is not None:
        # Detectors hesitate between single-byte codecs on short texts; when Windows-1252
        # reads the bytes as cleanly as the detector's pick, take it, as browsers would.
        western = from_bytes(body, cp_isolation=["cp1252"]).best()
        if western is not None and western.percent_chaos <= best.percent_chaos + 0.5:
            best = western
        name = codec(best.encoding) or best.encoding
        try:
            return Decoded(body.decode(name), name, "guessed", declared)
        except (UnicodeDecodeError, LookupError):
            pass
    text, lost = _utf8_with_cp1252(body)
    return Decoded(text, "utf-8", "mixed", declared, lost + text.count("\ufffd"))


_UTF8_MULTI = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")


def _mixed_utf8(body: bytes) -> tuple[str, int] | None:
    """UTF-8 text with stray Windows-1252 bytes (a curly quote pasted from a word
    processor), decoded as both; None when ``body`` does not look like that."""
    valid = len(_UTF8_MULTI.findall(body))
    if not valid:
        return None
    stray = _UTF8_MULTI.sub(b"", body)
    high = sum(b >= 0x80 for b in stray)
    clustered = sum(len(m) for m in _HIGH_RUN.findall(stray))
    if clustered * 4 > high:
        return None  # runs of high bytes: a legacy multi-byte codec (EUC, GBK...)
    return _utf8_with_cp1252(body)


def _utf8_with_cp1252(body: bytes) -> tuple[str, int]:
    """UTF-8, each byte that is not part of valid UTF-8 read as Windows-1252 instead."""
    parts: list[str] = []
    lost = 0
    pos = 0
    while pos < len(body):
        try:
            parts.append(body[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            parts.append(body[pos : pos + exc.start].decode("utf-8"))
            for byte in body[pos + exc.start : pos + exc.end]:
                if byte in _CP1252_HOLES:
                    parts.append("\ufffd")
                    lost += 1
                else:
                    parts.append(bytes([byte]).decode("cp1252"))
            pos += exc.end
    return "".join(parts), lost


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value
