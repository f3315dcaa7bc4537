"""The check every delivered message goes through (tests/conftest.py): it must catch what it
claims to, on the first message and on every later one that repeats a header."""

from __future__ import annotations

import pytest

from digest.testing.mail import parse_clean

GOOD = (
    b"From: Brief <news@example.org>\r\nTo: Anna <anna@example.org>\r\n"
    b"Subject: Hello\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"\r\nHello, Anna!\r\n"
)


def test_a_clean_message_passes_again_and_again() -> None:
    for _ in range(3):
        assert str(parse_clean(GOOD)["To"]) == "Anna <anna@example.org>"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (GOOD.replace(b"To: Anna <anna@example.org>", b"To: Anna <anna@@example.org"), "To"),
        (GOOD.replace(b"Hello, Anna!\r\n", b"Hello,\nAnna!\r\n"), "bare LF"),
        (GOOD.replace(b"Hello, Anna!", b"x" * 1000), "998"),
        (
            GOOD.replace(
                b"Content-Type: text/plain; charset=utf-8",
                b'Content-Type: multipart/alternative; boundary="b"',
            ),
            "multipart",
        ),
    ],
)
def test_each_fault_is_caught_every_time(bad: bytes, why: str) -> None:
    for _ in range(2):  # the second time its headers are known already
        with pytest.raises(AssertionError, match=why):
            parse_clean(bad)
