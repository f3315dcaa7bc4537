"""Bylines, word counts and images from every place feeds and pages state them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from digest.models import Story
from digest.sources.base import Fetched
from digest.sources.detect import AutoSource

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
NS = (
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:media="http://search.yahoo.com/mrss/"'
    ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
)
TEXT = " ".join(["The council voted to keep the ferry running through the winter."] * 20)


def parse(body: str, url: str = "https://news.example/feed") -> list[Story]:
    got = Fetched(url=url, body=body.encode(), headers={}, fetched_at=NOW)
    return AutoSource(name="src", url=url).parse(got)


def rss(*items: str) -> str:
    return f'<rss version="2.0" {NS}><channel><title>T</title>{"".join(items)}</channel></rss>'


def item(n: int, extra: str) -> str:
    return f"<item><title>Story {n}</title><link>https://news.example/{n}</link>{extra}</item>"


def test_rss_bylines_from_dc_creator_and_author_never_an_address() -> None:
    stories = parse(
        rss(
            item(1, "<dc:creator>Ana Ruiz</dc:creator>"),
            item(2, "<author>tom.li@news.example (Tom Li)</author>"),
            item(3, "<author>desk@news.example</author>"),
            item(4, "<dc:creator>https://news.example/staff/ana</dc:creator>"),
            item(5, "<dc:creator>By Mia Park</dc:creator><dc:creator>Raj Rao</dc:creator>"),
            item(6, ""),
        )
    )
    assert [s.author for s in stories] == ["Ana Ruiz", "Tom Li", "", "", "Mia Park, Raj Rao", ""]


def test_a_label_written_into_the_name_is_not_part_of_the_byline() -> None:
    # lukedorny.com's JSON Feed names its author "Author: Luke, most likely."
    stories = parse(
        rss(
            item(1, "<dc:creator>Author: Luke Dorny</dc:creator>"),
            item(2, "<dc:creator>Autorin: Jana Novak</dc:creator>"),
            item(3, "<dc:creator>Posted by Sam Lee</dc:creator>"),
            item(4, "<dc:creator>Authority Desk</dc:creator>"),
        )
    )
    assert [s.author for s in stories] == ["Luke Dorny", "Jana Novak", "Sam Lee", "Authority Desk"]


def test_atom_author_names() -> None:
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        '<entry><title>One</title><link href="https://news.example/1"/>'
        "<author><name>Lena Vogel</name><email>lena@news.example</email></author>"
        "<author><name>Jon Berg</name></author></entry>"
        '<entry><title>Two</title><link href="https://news.example/2"/>'
        "<author><email>x@news.example</email></author></entry></feed>"
    )
    assert [s.author for s in parse(body)] == ["Lena Vogel, Jon Berg", ""]


def test_json_feed_authors_of_1_1_and_author_of_1_0() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "T",
        "authors": [{"name": "Feed Desk"}],
        "items": [
            {"id": "1", "url": "https://n.example/1", "title": "A", "authors": [{"name": "Ana"}]},
            {"id": "2", "url": "https://n.example/2", "title": "B", "author": {"name": "Old Al"}},
            {"id": "3", "url": "https://n.example/3", "title": "C"},
            {"id": "4", "url": "https://n.example/4", "title": "D", "authors": [{"url": "x"}]},
        ],
    }
    stories = parse(json.dumps(doc))
    assert [s.author for s in stories] == ["Ana", "Old Al", "Feed Desk", "Feed Desk"]


@pytest.mark.parametrize(
    ("author", "expected"),
    [
        ({"@type": "Person", "name": "Ana Ruiz"}, "Ana Ruiz"),
        ([{"@type": "Person", "name": "Ana Ruiz"}, {"name": "Tom Li"}], "Ana Ruiz, Tom Li"),
        ("Ana Ruiz", "Ana Ruiz"),
        ({"@type": "Organization", "name": "Reuters"}, "Reuters"),
    ],
    ids=["object", "list", "string", "organization"],
)
def test_json_ld_author_in_every_shape(author: object, expected: str) -> None:
    ld = {"@type": "NewsArticle", "headline": "Ferry kept", "author": author, "wordCount": 512}
    body = (
        f'<html><head><script type="application/ld+json">{json.dumps(ld)}</script>'
        '<meta name="author" content="Someone Else"></head><body><h1>Ferry kept</h1></body></html>'
    )
    (story,) = parse(body, "https://news.example/2026/12/ferry-kept")
    assert story.author == expected
    assert story.word_count == 512


def test_meta_author_when_json_ld_has_none_skipping_a_profile_url() -> None:
    body = (
        '<html><head><meta property="og:type" content="article">'
        '<meta property="article:author" content="https://facebook.com/ana">'
        '<meta name="parsely-author" content="Ana Ruiz"><title>Ferry kept</title></head>'
        "<body><h1>Ferry kept</h1></body></html>"
    )
    (story,) = parse(body, "https://news.example/2026/12/ferry-kept")
    assert story.author == "Ana Ruiz"


def test_word_count_from_full_text_not_from_an_excerpt() -> None:
    stories = parse(
        rss(
            item(
                1,
                f"<description>Short.</description><content:encoded><![CDATA[<p>{TEXT}</p>]]>"
                "</content:encoded>",
            ),
            item(2, "<content:encoded>Only an excerpt of the story.</content:encoded>"),
            item(3, f"<description>{TEXT}</description>"),
        )
    )
    assert [s.word_count for s in stories] == [len(TEXT.split()), 0, 0]


def test_feed_images_from_every_kind_of_media_element() -> None:
    stories = parse(
        rss(
            item(1, '<itunes:image href="https://cdn.example/ep1.jpg"/>'),
            item(2, '<media:thumbnail url="https://cdn.example/t2.jpg" width="150"/>'),
            item(3, '<media:content url="https://cdn.example/c3" medium="image"/>'),
            item(4, '<enclosure url="https://cdn.example/e4.png" type="image/png" length="1"/>'),
            item(5, '<enclosure url="https://cdn.example/e5.mp3" type="audio/mpeg" length="1"/>'),
        )
    )
    images = [s.image.url if s.image else None for s in stories]
    assert images == [
        "https://cdn.example/ep1.jpg",
        "https://cdn.example/t2.jpg",
        "https://cdn.example/c3",
        "https://cdn.example/e4.png",
        None,
    ]


def test_rss_1_0_enclosure_module_images() -> None:
    # Craigslist's RSS 1.0 feeds carry their photo as <enc:enclosure>.
    body = (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:enc="http://purl.oclc.org/net/rss_2.0/enc#">'
        '<channel rdf:about="https://ads.example/"><title>Ads</title></channel>'
        '<item rdf:about="https://ads.example/1"><title>Bike</title>'
        "<link>https://ads.example/1</link>"
        '<enc:enclosure rdf:resource="https://img.example/1.jpg" enc:type="image/jpeg"/></item>'
        '<item rdf:about="https://ads.example/2"><title>Talk</title>'
        "<link>https://ads.example/2</link>"
        '<enc:enclosure rdf:resource="https://img.example/2.mp3" enc:type="audio/mpeg"/></item>'
        "</rdf:RDF>"
    )
    images = [s.image.url if s.image else None for s in parse(body)]
    assert images == ["https://img.example/1.jpg", None]


def test_relative_inline_images_of_a_link_blog_resolve_against_the_feeds_site() -> None:
    # coding.monkeydom.de's items link to GitHub, their images are on the blog.
    body = (
        '<rss version="2.0"><channel><title>T</title><link>https://blog.example</link>'
        "<item><title>Port mapper</title><link>https://github.com/someone/portmapper</link>"
        '<description>&lt;img src="/assets/posts/screenshot.png" width="600"&gt;</description>'
        "</item><item><title>Own post</title><link>https://blog.example/posts/2</link>"
        '<description>&lt;img src="pics/two.png" width="600"&gt;</description></item>'
        "</channel></rss>"
    )
    stories = parse(body, url="https://blog.example/posts.rss")
    assert [s.image.url if s.image else None for s in stories] == [
        "https://blog.example/assets/posts/screenshot.png",
        "https://blog.example/posts/pics/two.png",
    ]


def test_relative_inline_images_follow_the_xml_base_of_the_content() -> None:
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        '<entry><title>Linked</title><link href="https://elsewhere.example/story"/>'
        '<content type="html" xml:base="https://blog.example/linked/2016/">'
        '&lt;img src="chart.png" width="600"&gt;</content></entry></feed>'
    )
    (story,) = parse(body, url="https://blog.example/feeds/main")
    assert story.image is not None
    assert story.image.url == "https://blog.example/linked/2016/chart.png"


PIXELS = (
    '<img src="https://feeds.feedburner.com/~r/news/~4/abc" height="1" width="1">'
    '<img src="https://feeds.feedblitz.com/~/i/123/0/news">'
    '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
    '<img src="/img/spacer.gif">'
    '<img class="wp-smiley emoji" src="https://s.w.org/images/core/emoji/14/72x72/1f600.png">'
    '<img src="https://cdn.example/icons/share.png" width="16" height="16">'
    '<img src="https://stats.wordpress.com/b.gif?host=x" alt="">'
    '<a class="slashpop"><img src="https://a.fsdn.com/sd/twitter_icon_large.png"></a>'
)


def test_the_first_real_inline_image_skipping_pixels_spacers_and_emoji() -> None:
    content = f'{PIXELS}<p>Text</p><img src="photos/ferry.jpg" alt="The ferry" width="800">'
    stories = parse(
        rss(
            item(1, f"<content:encoded><![CDATA[{content}]]></content:encoded>"),
            item(2, f"<description><![CDATA[{PIXELS}<p>No photo here.</p>]]></description>"),
        ),
        "https://news.example/feeds/all.xml",
    )
    first, second = stories
    assert first.image is not None
    # Resolved against the item's link (https://news.example/1), not the feed's URL.
    assert first.image.url == "https://news.example/photos/ferry.jpg"
    assert first.image.alt == "The ferry"
    assert second.image is None


def test_json_feed_inline_image_when_no_image_field() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {
                "id": "1",
                "url": "https://n.example/posts/1",
                "title": "A",
                "content_html": f'{PIXELS}<img src="/media/a.webp" alt="A">',
            },
            {"id": "2", "url": "https://n.example/2", "title": "B", "image": "/m/b.jpg"},
        ],
    }
    stories = parse(json.dumps(doc), "https://n.example/feed.json")
    assert [s.image.url if s.image else None for s in stories] == [
        "https://n.example/media/a.webp",
        "https://n.example/m/b.jpg",
    ]
