"""Collection against what the real web serves, on a real local server: wrong or missing
charsets, fullwidth markup, CJK punctuation, feeds that look like pages, metadata
addresses, per-source fallbacks in `digest sources`, progress on a terminal."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.collect import collect
from digest.http import Fetcher, FetchSettings
from digest.sources.base import Source
from digest.sources.feed import FeedSource
from digest.sources.page import PageSource
from digest.testing.http import FixtureServer

from conftest import NOW as NOW_ISO
from conftest import Project, on_a_terminal

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


def rss(title: str, *, decl: str = "utf-8", description: str = "Quiet day.") -> str:
    return (
        f'<?xml version="1.0" encoding="{decl}"?>\n<rss version="2.0"><channel><title>Desk'
        "</title><link>https://desk.example/</link><item><title>"
        f"{title}</title><link>https://desk.example/a</link><description>{description}"
        "</description><pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate></item></channel></rss>"
    )


def page(title: str, charset: str | None) -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    return (
        f"<!DOCTYPE html><html><head>{meta}<title>{title} - Lake Post</title>"
        '<meta property="og:site_name" content="Lake Post"></head><body><header><nav><a'
        ' href="/">Home</a></nav></header><article><h1>' + title + "</h1><p>The council"
        " of Zürich met on Monday and voted for the plan after a long debate about the café"
        " terraces on the lake front.</p></article></body></html>"
    )


CAFE = "Café budget passes in Zürich"
ENCODINGS = [
    # (kind, body, content-type)
    ("page", page(CAFE, None).encode("cp1252"), "text/html"),
    ("page", page(CAFE, "utf-8").encode("cp1252"), "text/html; charset=utf-8"),
    ("page", page(CAFE, "iso-8859-1").encode("latin-1"), "text/html"),
    ("feed", rss(CAFE).encode("cp1252"), "application/rss+xml"),  # declares UTF-8
    ("feed", rss(CAFE, decl="windows-1252").encode("cp1252"), "text/xml"),
    ("feed", rss(CAFE, decl="iso-8859-1").encode("utf-8"), "application/rss+xml"),  # lies
    # Mixed: UTF-8 with one Windows-1252 apostrophe pasted in.
    (
        "feed",
        rss(CAFE + " after grants’ review").encode().replace("’".encode(), b"\x92"),
        "application/rss+xml",
    ),
]


@pytest.mark.parametrize(("kind", "body", "ctype"), ENCODINGS)
def test_every_encoding_case_keeps_cafe_and_zurich(
    server: FixtureServer, kind: str, body: bytes, ctype: str
) -> None:
    server.route("/x", body, headers={"Content-Type": ctype})
    cls: type[Source] = PageSource if kind == "page" else FeedSource
    source = cls(name="Lake", url=server.url("/x"), allow_private=True)
    with Fetcher() as f:
        result = collect([source], f, now=NOW)
    assert result.warnings == []
    (story,) = result.stories
    assert story.title.startswith(CAFE), story.title
    if "grants" in story.title:
        assert story.title.endswith("grants’ review")
    if kind == "page":
        assert "Zürich" in story.teaser


def test_bytes_no_encoding_explains_stay_visible_and_warn(server: FixtureServer) -> None:
    body = rss("Caf\xe9 Z\xfcrich").encode("utf-8").replace(b"Z\xc3\xbcrich", b"Z\xc3\xbcrich \x81")
    server.route("/odd.rss", body, headers={"Content-Type": "application/rss+xml"})
    with Fetcher() as f:
        result = collect(
            [FeedSource(name="Odd", url=server.url("/odd.rss"), allow_private=True)], f, now=NOW
        )
    (story,) = result.stories
    assert story.title == "Café Zürich \ufffd"
    assert result.warnings == [
        f"source Odd: 1 byte(s) of {server.url('/odd.rss')} fit no character encoding and"
        " show as \ufffd; ask the publisher to serve UTF-8"
    ]


FULLWIDTH = "＜script＞alert(1)＜／script＞"
CJK = "東京で大雨？：交通機関（ＪＲ）に乱れ"


def test_fullwidth_markup_stays_text_and_cjk_punctuation_is_kept(
    server: FixtureServer, tmp_path: Path
) -> None:
    body = rss(f"{FULLWIDTH} {CJK}", description="&lt;b&gt;bold&lt;/b&gt; ＜b＞ｆｕｌｌ＜／b＞")
    server.route("/cjk.rss", body.encode(), headers={"Content-Type": "application/rss+xml"})
    outputs = {}
    for flag in ("--json", "--allow-private"):
        args = ["--config", str(tmp_path / "none.yaml"), "collect", "--allow-private", flag]
        result = CliRunner().invoke(
            cli,
            [*args, server.url("/cjk.rss")],
            env={"DIGEST_NOW": NOW_ISO},
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert "<script" not in result.stdout.lower()
        assert "<b" not in result.stdout
        outputs[flag] = result.stdout
    (story,) = json.loads(outputs["--json"])
    assert story["title"] == f"{FULLWIDTH} {CJK}"
    assert story["teaser"] == "bold ＜b＞ｆｕｌｌ＜／b＞"
    assert f"{FULLWIDTH} {CJK}" in outputs["--allow-private"]  # the plain listing


DOCTYPE_FEED = (
    '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications'
    '//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss'
    ' version="0.91"><channel><title>Old Desk</title><link>https://old.example/</link>'
    "<description><![CDATA[<html><body><p>Our news</p></body></html>]]></description>"
    "<item><title>Harbour reopens</title><link>https://old.example/harbour</link></item>"
    "<item><title>Bridge closes</title><link>https://old.example/bridge</link></item>"
    "</channel></rss>"
)


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "text/xml", ""])
def test_feed_with_doctype_and_body_early_is_a_feed(
    server: FixtureServer, tmp_path: Path, ctype: str
) -> None:
    assert "<body" in DOCTYPE_FEED[:512]
    server.route("/old.rss", DOCTYPE_FEED.encode(), headers={"Content-Type": ctype})
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(tmp_path / "none.yaml"),
            "collect",
            "--allow-private",
            "--json",
            server.url("/old.rss"),
        ],
        env={"DIGEST_NOW": NOW_ISO},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    stories = json.loads(result.stdout)
    assert [s["url"] for s in stories] == [
        "https://old.example/harbour",
        "https://old.example/bridge",
    ]


def test_redirect_to_metadata_is_refused_for_an_allow_private_source(
    server: FixtureServer,
) -> None:
    server.redirect("/feed.rss", "http://169.254.169.254/latest/meta-data/iam/")
    with Fetcher(settings=FetchSettings(retries=0)) as f:
        result = collect(
            [FeedSource(name="Hop", url=server.url("/feed.rss"), allow_private=True)], f, now=NOW
        )
    (warning,) = result.warnings
    assert warning.startswith(f"source Hop: {server.url('/feed.rss')}: redirect to http://169")
    assert "never fetched, allow_private or not" in warning


def test_fallbacks_are_in_the_source_health(project: Project) -> None:
    project.feeds.route(
        "/lake.html", page(CAFE, None).encode("cp1252"), headers={"Content-Type": "text/html"}
    )
    project.write_config(
        sources=textwrap.dedent(f"""\
        sources:
          - name: Lake Post
            url: {project.feeds.url("/lake.html")}
            kind: page
            allow_private: true
        """)
    )
    assert project.cli("collect").exit_code == 0
    (row,) = json.loads(project.cli("sources", "--json").stdout)
    assert row["fallbacks"] == [
        "encoding guessed: cp1252 (none declared, UTF-8 does not decode)",
        "teaser from the article's text (no description)",
        "date missing on 1 of 1 stories",
    ]
    text = project.cli("sources").stdout
    assert "fallbacks: encoding guessed: cp1252" in text


def test_a_terminal_shows_pending_sources_and_the_deadline_names_them(
    project: Project,
) -> None:

    project.feeds.route("/slow.rss", b"<rss/>", trickle=0.05)
    project.write_config(
        sources=textwrap.dedent(f"""\
            sources:
              - name: Slow Desk
                url: {project.feeds.url("/slow.rss")}
                allow_private: true
              - name: World Desk
                url: {project.feeds.url("/world.rss")}
                allow_private: true
            """),
        extra="fetch:\n  deadline: 3\n",  # time for the good source on a busy machine
    )
    text = on_a_terminal(project, "collect", now=NOW_ISO, columns=120)
    assert "collecting" in text
    assert "waiting for Slow Desk" in text
    assert "deadline: 1 source(s) still pending, left out: Slow Desk" in text
    assert "warning: source Slow Desk: no answer within 3 s" in text
    assert "World Desk" in text  # the stories table
