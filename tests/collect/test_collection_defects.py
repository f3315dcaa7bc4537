"""Collection defects of issue 30, each on the shape a real page, feed or server had."""

from __future__ import annotations

import json
import warnings
import zlib
from datetime import UTC, datetime

import pytest

from digest.exceptions import SourceError
from digest.http import Fetcher
from digest.models import Story
from digest.sources.base import Fetched, load_source
from digest.sources.detect import AutoSource, detect_kind
from digest.testing.http import FixtureServer

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
HTML = {"content-type": "text/html; charset=utf-8"}
RSS = {"content-type": "application/rss+xml; charset=utf-8"}
LOREM = (
    "Leaders gathered on Monday for a summit that was meant to settle the trade dispute, but"
    " the talks stalled within hours as delegations argued over tariffs, quotas and the"
    " timetable for lifting sanctions imposed last spring. "
)


def fetched(url: str, body: str, headers: dict[str, str] | None = None) -> Fetched:
    return Fetched(url=url, body=body.encode(), headers=headers or HTML, fetched_at=NOW)


def auto(url: str, body: str, headers: dict[str, str] | None = None) -> tuple[list[Story], Fetched]:
    got = fetched(url, body, headers)
    return AutoSource(name="src", url=url).parse(got), got


def card(n: int, *, heading: bool = True) -> str:
    link = f'<a href="/story/{n}">Card story number {n} about the summit</a>'
    head = f"<h3>{link}</h3>" if heading else link
    return f'<article class="card">{head}<p>Short teaser {n}.</p></article>'


# GZERO's front page: the site's name as <h1>, the lead story shown in full (headline
# linked to its own page, several paragraphs) above a grid of teaser cards.
FRONT_WITH_LEAD = f"""<!doctype html><html><head><title>GZERO Media</title>
<meta property="og:type" content="website"><meta property="og:site_name" content="GZERO Media">
</head><body><header><h1 class="logo"><a href="/">GZERO Media</a></h1></header>
<main><div class="lead"><h2><a href="/news/summit-stalls-over-tariffs">Summit stalls over
tariffs</a></h2><p>{LOREM}</p><p>{LOREM}</p><p>{LOREM}</p></div>
<section class="grid">{"".join(card(n) for n in range(1, 7))}</section></main></body></html>"""


def test_front_page_with_its_lead_in_full_gives_the_teasers() -> None:
    stories, _ = auto("https://www.gzeromedia.com/", FRONT_WITH_LEAD)
    assert [s.title for s in stories] == [
        f"Card story number {n} about the summit" for n in range(1, 7)
    ]
    assert "GZERO Media" not in {s.title for s in stories}


def test_a_page_read_as_one_article_despite_its_cards_warns() -> None:
    body = FRONT_WITH_LEAD.replace("".join(card(n) for n in range(3, 7)), "")
    stories, got = auto("https://www.gzeromedia.com/", body)
    assert len(stories) == 1
    (warning,) = got.warnings
    assert warning.startswith("src: https://www.gzeromedia.com/ was read as one article")
    assert "set mode: front" in warning


# BBC's section front: a path of words joined by underscores, and promo cards.
SECTION_FRONT = f"""<html><head><title>US &amp; Canada - BBC News</title></head><body>
<h1>US &amp; Canada</h1>{"".join(card(n) for n in range(1, 4))}</body></html>"""


def test_a_section_front_url_is_not_read_as_an_article() -> None:
    stories, _ = auto("https://www.bbc.com/news/world/us_and_canada", SECTION_FRONT)
    assert len(stories) == 3
    assert stories[0].url == "https://www.bbc.com/story/1"


def test_a_slug_of_hyphenated_words_is_still_an_article() -> None:
    stories, _ = auto("https://www.bbc.com/news/world/us-and-canada-talks", SECTION_FRONT)
    assert len(stories) == 1


def test_teaser_cards_without_a_heading_use_the_link_text_or_warn() -> None:
    cards = (
        card(1, heading=False)
        + '<article><a href="/story/2"><img src="/p/2.jpg" alt="Flooded streets in Valencia">'
        "</a><p>Rain again.</p></article>"
        + '<article><a href="/story/3"><img src="/p/3.jpg"></a></article>'
    )
    body = f"<html><head><title>Front</title></head><body>{cards}</body></html>"
    stories, got = auto("https://news.example/", body)
    assert [s.title for s in stories] == [
        "Card story number 1 about the summit",
        "Flooded streets in Valencia",
    ]
    assert got.warnings == [
        "src: 1 teaser card(s) at https://news.example/ have no headline or link text and"
        " were skipped; set the page source's title selector"
    ]


# MarketWatch's answer for a moved feed, kept by rss-parser as test/input/unrecognized.rss.
IIS_MOVED = """<head><title>Document Moved</title></head>
<body><h1>Object Moved</h1>This document may be found \
<a HREF="http://fishhawk2.marketwatch.com/rss/pf/">here</a></body>"""
META_REFRESH = """<html><head><title>Redirecting…</title>
<meta http-equiv="refresh" content="0; url='https://news.example/today/'"></head>
<body><p>You are being redirected.</p></body></html>"""


@pytest.mark.parametrize(
    ("body", "target"),
    [
        (IIS_MOVED, "http://fishhawk2.marketwatch.com/rss/pf/"),
        (META_REFRESH, "https://news.example/today/"),
    ],
    ids=["marketwatch-document-moved", "meta-refresh"],
)
def test_a_redirect_stub_page_is_not_a_story(body: str, target: str) -> None:
    with pytest.raises(SourceError) as info:
        auto("https://news.example/world", body)
    assert str(info.value) == (
        f"src: https://news.example/world is a redirect page to {target}, not an article;"
        " set the source's url to where it points"
    )


@pytest.mark.parametrize("placeholder", ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"])
def test_placeholder_dates_on_pages_are_no_date(placeholder: str) -> None:
    ld = {"@type": "NewsArticle", "headline": "Bridge reopens", "datePublished": placeholder}
    body = (
        f'<html><head><script type="application/ld+json">{json.dumps(ld)}</script>'
        f'<meta property="article:published_time" content="{placeholder}">'
        "</head><body><h1>Bridge reopens</h1></body></html>"
    )
    (story,), _ = auto("https://city.example/bridge-reopens-after-repairs", body)
    assert story.undated
    assert story.published == NOW  # the fetch time: the story is not "too old"


@pytest.mark.parametrize(
    "placeholder", ["Mon, 01 Jan 0001 00:00:00 +0000", "Thu, 01 Jan 1970 00:00:00 GMT"]
)
def test_placeholder_dates_in_feeds_are_no_date(placeholder: str) -> None:
    body = (
        '<rss version="2.0"><channel><title>T</title><item><title>Bridge reopens</title>'
        f"<link>https://city.example/bridge</link><pubDate>{placeholder}</pubDate>"
        "</item></channel></rss>"
    )
    (story,), _ = auto("https://city.example/rss", body, RSS)
    assert story.undated
    assert story.published == NOW


@pytest.mark.parametrize(
    "version",
    [
        "http://jsonfeed.org/version/1",
        "https://jsonfeed.org/version/1",
        "https://jsonfeed.org/version/1/",
        "http://jsonfeed.org/version/1.1",
        "https://jsonfeed.org/version/1.1",
    ],
)
def test_every_real_json_feed_version_spelling_is_accepted(version: str) -> None:
    doc = {
        "version": version,
        "title": "Notes",
        "items": [{"id": "1", "url": "https://notes.example/1", "title": "First note"}],
    }
    got = fetched("https://notes.example/feed.json", json.dumps(doc), {})
    assert detect_kind(got) == "jsonfeed"
    stories = load_source("jsonfeed", name="n", url=got.url).parse(got)
    assert [s.title for s in stories] == ["First note"]


def test_a_json_feed_of_another_version_names_what_it_declares() -> None:
    doc = {"version": "https://jsonfeed.org/version/2", "items": []}
    got = fetched("https://notes.example/feed.json", json.dumps(doc), {})
    with pytest.raises(SourceError) as info:
        load_source("jsonfeed", name="n", url=got.url).parse(got)
    assert str(info.value) == (
        "n: https://notes.example/feed.json is not a JSON Feed (version"
        " 'https://jsonfeed.org/version/2'; a JSON Feed declares"
        " https://jsonfeed.org/version/1.1)"
    )


def test_literal_text_in_angle_brackets_is_kept() -> None:
    body = (
        '<rss version="2.0"><channel><title>Kultur</title><item>'
        "<title>Die Rückkehr von &lt;i&gt; und &lt;b&gt;</title>"
        "<link>https://kultur.example/html-tags</link>"
        "<description>Warum &lt;i&gt; und &lt;b&gt; wieder da sind.</description>"
        "</item><item><title>&lt;script&gt;alert(1)&lt;/script&gt;Budget"
        " &lt;b onclick=&quot;x()&quot;&gt;passes&lt;/b&gt;</title>"
        "<link>https://kultur.example/budget</link></item></channel></rss>"
    )
    first, second = auto("https://kultur.example/rss", body, RSS)[0]
    assert first.title == "Die Rückkehr von <i> und <b>"
    assert first.teaser == "Warum <i> und <b> wieder da sind."
    assert second.title == "Budget passes"  # markup that closes what it opens is markup


def chunked(data: bytes) -> bytes:
    """``data`` as HTTP chunks, the first one a single byte (one network read each)."""
    parts = [data[:1], data[1:]]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_whose_first_chunk_is_one_byte_is_decoded(wbits: int) -> None:
    text = b"<rss>" + b"news " * 200 + b"</rss>"
    packer = zlib.compressobj(wbits=wbits)
    body = packer.compress(text) + packer.flush()
    headers = {"Content-Encoding": "deflate", "Transfer-Encoding": "chunked", "Content-Length": ""}
    with FixtureServer() as server, Fetcher() as fetcher:
        server.route("/feed", chunked(body), headers=headers)
        assert fetcher.fetch(server.url("/feed"), allow_private=True).body == text


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("Mon, 07 Dec 2026 10:00:00 IST", "2026-12-07T04:30:00+00:00"),
        ("Mon, 07 Dec 2026 10:00:00 CET", "2026-12-07T09:00:00+00:00"),
        ("Mon, 07 Dec 2026 10:00:00 AEDT", "2026-12-06T23:00:00+00:00"),
        ("Mon, 07 Dec 2026 10:00:00 JST", "2026-12-07T01:00:00+00:00"),
        ("2026-12-07 10:00 IST", "2026-12-07T04:30:00+00:00"),
        ("December 7, 2026 10:00 BST", "2026-12-07T09:00:00+00:00"),
    ],
)
def test_zone_abbreviations_parse_without_a_warning(stamp: str, utc: str) -> None:
    body = (
        '<rss version="2.0"><channel><title>T</title><item><title>Monsoon session ends</title>'
        f"<link>https://in.example/monsoon</link><pubDate>{stamp}</pubDate></item></channel></rss>"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dateutil's UnknownTimezoneWarning would raise here
        (story,), _ = auto("https://in.example/rss", body, RSS)
    assert story.published.isoformat() == utc
    assert not story.undated


def test_a_json_feed_that_leaves_out_its_version_is_read() -> None:
    # The shape of leancrew.com's feed kept in NetNewsWire's tests: no "version" at all.
    doc = {
        "title": "And now it's all this",
        "feed_url": "http://leancrew.com/all-this/feed.json",
        "items": [
            {
                "id": "1",
                "url": "http://leancrew.com/all-this/2017/11/my-next-mac/",
                "title": "My next Mac",
                "author": {"name": "Dr. Drang"},
            }
        ],
    }
    got = fetched("http://leancrew.com/all-this/feed.json", json.dumps(doc), {})
    assert detect_kind(got) == "jsonfeed"
    (story,) = AutoSource(name="n", url=got.url).parse(got)
    assert (story.title, story.author) == ("My next Mac", "Dr. Drang")


def test_json_with_items_but_no_feed_address_or_version_is_not_a_feed() -> None:
    doc = {"items": [{"id": "1", "url": "https://api.example/1", "title": "Row"}]}
    got = fetched("https://api.example/rows.json", json.dumps(doc), {})
    assert detect_kind(got) != "jsonfeed"
    with pytest.raises(SourceError) as info:
        load_source("jsonfeed", name="n", url=got.url).parse(got)
    assert str(info.value) == (
        "n: https://api.example/rows.json is not a JSON Feed (no version; a JSON Feed"
        " declares https://jsonfeed.org/version/1.1)"
    )
