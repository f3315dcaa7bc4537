"""Pure normalisers: canonical URLs, text cleaning, teaser cutting, dates, safe URLs."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import nh3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.normalize import (
    TRACKING_PARAMS,
    canonical_url,
    clean_text,
    cut_teaser,
    parse_date,
    safe_http_url,
)
from digest.sources.base import Fetched, load_source

FALLBACK = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTP://News.Example.COM/World", None, "http://news.example.com/World"),
        ("https://example.com:443/a", None, "https://example.com/a"),
        ("http://example.com:80/a", None, "http://example.com/a"),
        ("https://example.com:8443/a", None, "https://example.com:8443/a"),
        ("https://example.com", None, "https://example.com/"),
        ("https://example.com/a#comments", None, "https://example.com/a"),
        (
            "https://example.com/a?utm_source=rss&id=3&UTM_Medium=x&fbclid=1&b=2&gclid=9",
            None,
            "https://example.com/a?id=3&b=2",
        ),
        ("https://example.com/a?mc_cid=1&mc_eid=2&ref=home&cmpid=x", None, "https://example.com/a"),
        (
            "https://example.com/a?q=a+b&empty=&x=%20",
            None,
            "https://example.com/a?q=a+b&empty=&x=%20",
        ),
        ("https://example.com/a?reference=keep", None, "https://example.com/a?reference=keep"),
        (
            "/world/story",
            "https://news.example.com/feeds/world.rss",
            "https://news.example.com/world/story",
        ),
        ("../b?utm_campaign=x", "https://Example.com/a/feed/", "https://example.com/a/b"),
        ("//cdn.example.com/x", "https://example.com/", "https://cdn.example.com/x"),
        ("https://[2001:DB8::1]:443/a", None, "https://[2001:db8::1]/a"),
        ("  https://example.com/a  ", None, "https://example.com/a"),
        ("http://[::1", None, "http://[::1"),  # unparseable: returned as is
    ],
)
def test_canonical_url(url: str, base: str | None, expected: str) -> None:
    assert canonical_url(url, base) == expected


def test_canonical_url_is_idempotent_and_tracking_tuple_documented() -> None:
    url = "https://example.com/a?b=1&utm_term=x"
    assert canonical_url(canonical_url(url)) == canonical_url(url) == "https://example.com/a?b=1"
    assert {"fbclid", "gclid", "mc_cid", "mc_eid", "ref", "cmpid"} <= set(TRACKING_PARAMS)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a", "https://example.com/a"),
        (" http://example.com/ ", "http://example.com/"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("file:///etc/passwd", None),
        ("ftp://example.com/x", None),
        ("//example.com/x", None),
        ("/relative", None),
        ("https://", None),
        ("http://[::1", None),
        ("https://example.com:99999999/", None),
    ],
)
def test_safe_http_url(url: str, expected: str | None) -> None:
    assert safe_http_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<p>One</p><p>Two</p>", "One Two"),
        ("Line<br>break", "Line break"),
        ("Fish &amp; chips &lt;3 &#8212; &eacute;", "Fish & chips <3 — é"),
        ("<script>alert(1)</script>Safe", "Safe"),
        ("<style>p{color:red}</style>Text", "Text"),
        ('<a href="javascript:alert(1)" onclick="x()">Link</a>', "Link"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Escaped once", "Escaped once"),
        ("&amp;lt;b&amp;gt;Escaped twice&amp;lt;/b&amp;gt;", "Escaped twice"),
        ("The Kremlinâ€™s war â€” cafÃ©", "The Kremlin’s war — café"),
        ("Broken \ufffd char", "Broken \ufffd char"),  # kept: never drop characters silently
        ("  lots \n\t of   space\u00a0here ", "lots of space here"),
        ("Ctrl\x00\x08chars\x1f", "Ctrlchars"),
        ("“Curly” quotes stay", "“Curly” quotes stay"),
        # Plain ASCII skips ftfy; what it would have done there still happens.
        ("a \x1b[31mred\x1b[0m b", "a red b"),
        ("one\r\ntwo\rthree", "one two three"),
        ("Caf&#195;&#169; from entities", "Café from entities"),
        ("", ""),
    ],
)
def test_clean_text(value: str, expected: str) -> None:
    assert clean_text(value) == expected


@given(st.text())
def test_clean_text_never_leaves_a_tag(value: str) -> None:
    cleaned = clean_text(value)
    assert "<script" not in cleaned.lower()
    assert not re.search(r"<[a-zA-Z/!?]", cleaned)
    assert cleaned == cleaned.strip()
    assert "\ufffd" in value or "\ufffd" not in cleaned  # only ever kept, never made up


SENTENCES = (
    "The council met on Tuesday. It agreed to hold elections in August, missing the deadline."
)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short text.", 50, "Short text."),
        (SENTENCES, len(SENTENCES), SENTENCES),
        (SENTENCES, 40, "The council met on Tuesday. …"),
        (SENTENCES, 60, "The council met on Tuesday. It agreed to hold elections in…"),
        (SENTENCES, 12, "The council…"),
        ("Supercalifragilistic", 10, "Supercali…"),
        ("Words, with commas, here", 13, "Words, with…"),
        ("Words, with commas, here", 12, "Words, with…"),
        ("Words, with commas, here", 11, "Words…"),
        ("everyone scrambles to shape the [...]", 100, "everyone scrambles to shape the…"),
        ("everyone scrambles to shape the […]", 100, "everyone scrambles to shape the…"),
        ("everyone scrambles to shape the [...]", 20, "everyone scrambles…"),
        ("abc", 1, "…"),
        ("abc", 0, ""),
    ],
)
def test_cut_teaser(text: str, limit: int, expected: str) -> None:
    assert cut_teaser(text, limit) == expected


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400), st.integers(1, 300))
def test_cut_teaser_respects_the_limit(text: str, limit: int) -> None:
    cut = cut_teaser(text, limit)
    assert len(cut) <= limit
    if len(text.strip()) > limit:
        assert cut.endswith("…")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 24 Nov 2026 05:10:00 -0500", datetime(2026, 11, 24, 10, 10, tzinfo=UTC)),
        ("Tue, 24 Nov 2026 05:10:00 GMT", datetime(2026, 11, 24, 5, 10, tzinfo=UTC)),
        ("2026-11-23T21:15:00+01:00", datetime(2026, 11, 23, 20, 15, tzinfo=UTC)),
        ("2026-11-23T18:00:00Z", datetime(2026, 11, 23, 18, 0, tzinfo=UTC)),
        ("2026-11-23 18:00", datetime(2026, 11, 23, 18, 0, tzinfo=UTC)),
        ("24 Nov 2026", datetime(2026, 11, 24, 0, 0, tzinfo=UTC)),
        ("Tue, 24 Nov 2026 05:10:00 EST", datetime(2026, 11, 24, 10, 10, tzinfo=UTC)),
        ("November 24th, 2026 6:30 pm", datetime(2026, 11, 24, 18, 30, tzinfo=UTC)),
        ("2026-11-24T06:30:00.000-05:00", datetime(2026, 11, 24, 11, 30, tzinfo=UTC)),
        (
            time.struct_time((2026, 11, 24, 6, 30, 0, 1, 328, 0)),
            datetime(2026, 11, 24, 6, 30, tzinfo=UTC),
        ),
    ],
)
def test_parse_date(value: str | time.struct_time, expected: datetime) -> None:
    parsed, undated = parse_date(value, fallback=FALLBACK)
    assert (parsed, undated) == (expected, False)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value", [None, "", "   ", "not a date", "yesterday-ish", "10:30", "Monday"]
)
def test_parse_date_falls_back(value: str | None) -> None:
    assert parse_date(value, fallback=FALLBACK) == (FALLBACK, True)


def test_parse_date_fallback_converted_to_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    parsed, undated = parse_date(None, fallback=datetime(2026, 11, 24, 8, 0, tzinfo=berlin))
    assert (parsed, undated) == (FALLBACK, True)
    assert parsed.tzinfo is UTC


def _sanitise_until_stable(text: str) -> str:
    """What the sanitiser alone does however often it runs: nh3, then entity decoding."""
    while True:
        out = html.unescape(nh3.clean(text, tags=set()))
        if out == text:
            return out
        text = out


@pytest.mark.parametrize("ignorable", ["feff", "200b", "202e"])
def test_one_sanitising_pass_is_not_enough_the_repeat_makes_it_safe(ignorable: str) -> None:
    # Entities twice encoded: the first decoding shows only text, sanitising decodes the
    # rest into "<\ufeffimg ...>", which no HTML parser takes for a tag (so nh3 keeps it)
    # but which is markup once the invisible character is dropped.
    payload = f"Hi &amp;lt;&amp;#x{ignorable};img src=x onerror=alert(1)&amp;gt; there"
    first = html.unescape(payload)
    assert chr(int(ignorable, 16)) not in first  # nothing to drop before sanitising
    one_pass = _sanitise_until_stable(first)
    assert one_pass == f"Hi <{chr(int(ignorable, 16))}img src=x onerror=alert(1)> there"
    cleaned = clean_text(payload)  # drops the character, then sanitises again
    assert cleaned == "Hi there"


def test_a_feed_cannot_smuggle_markup_through_the_sanitiser() -> None:
    rss = (
        '<rss version="2.0"><channel><title>t</title><item><title>A&amp;amp;lt;&amp;amp;#xfeff;'
        "img src=x onerror=alert(1)&amp;amp;gt;B</title><link>https://x.example/a</link>"
        "<description>&amp;amp;lt;&amp;amp;#xfeff;script&amp;amp;gt;alert(2)"
        "&amp;amp;lt;/script&amp;amp;gt;</description></item></channel></rss>"
    )
    fetched = Fetched(url="https://x.example/f", body=rss.encode(), headers={}, fetched_at=FALLBACK)
    (story,) = load_source("feed", name="x", url=fetched.url).parse(fetched)
    for value in (story.title, story.teaser):
        assert "<" not in value
        assert "onerror" not in value
        assert "script" not in value
