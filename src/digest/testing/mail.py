"""Assertions every message built in the tests must pass: it parses back with no defects."""

from __future__ import annotations

import email.parser
import email.policy
import functools
from email.message import EmailMessage


def parse_clean(data: bytes) -> EmailMessage:
    """Parse ``data`` with the default policy; assert CRLF only, short lines, no defects."""
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF in the message"
    assert b"\r" not in data.replace(b"\r\n", b""), "bare CR in the message"
    assert max(len(line) for line in data.split(b"\r\n")) <= 998, "a line over 998 octets"
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert part.defects == [], (part.get_content_type(), part.defects)
        for name, value in part.raw_items():
            defects = _header_defects(name, value)
            assert defects == (), (name, value, defects)
    return msg


@functools.lru_cache(maxsize=65536)
def _header_defects(name: str, value: str) -> tuple[object, ...]:
    """The defects of one header as the default policy reads it. Cached: the messages of
    a send share most of their headers, and reading a header costs more than parsing."""
    return tuple(getattr(email.policy.default.header_fetch_parse(name, value), "defects", ()))
