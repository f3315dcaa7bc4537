"""collect(): many sources at once over a real local server; failures become warnings."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.collect import collect, dedupe
from digest.http import Fetcher, FetchSettings
from digest.models import Story
from digest.sources.base import Fetched, Source
from digest.sources.feed import FeedSource
from digest.testing.http import FixtureServer

from conftest import ROOT

EXAMPLES = ROOT / "examples" / "sources"
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer(EXAMPLES) as srv:
        yield srv


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(settings=FetchSettings(timeout=2.0, retries=0)) as f:
        yield f


def feed(name: str, url: str, **kwargs: Any) -> FeedSource:
    return FeedSource(name=name, url=url, allow_private=True, **kwargs)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_source_warns_and_the_others_still_arrive(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    down = f"http://127.0.0.1:{closed_port()}/feed.rss"
    sources = [
        feed("World Desk", server.url("/world.rss")),
        feed("Down Desk", down),
        feed("Tech Wire", server.url("/tech.atom")),
    ]
    result = collect(sources, fetcher, now=NOW)
    assert result.failed == ["Down Desk"]
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(f"source Down Desk: {down}: connection failed")
    assert "\n" not in result.warnings[0]
    names = [s.source for s in result.stories]
    # Source order, then item order, whatever order the threads finished in.
    assert names == ["World Desk"] * 7 + ["Tech Wire"] * 7
    assert result.stories[0].title == "Putin poaches the neighbors for his Ukraine invasion"
    assert all(s.published.tzinfo is UTC for s in result.stories)


def test_broken_sources_each_get_one_warning(server: FixtureServer, fetcher: Fetcher) -> None:
    server.route("/page.rss", b"<!DOCTYPE html><html><body><p>Moved</p></body></html>",
                 headers={"Content-Type": "text/html"})  # fmt: skip
    server.route("/gone.rss", b"gone", status=410)
    sources = [
        feed("Page", server.url("/page.rss")),
        feed("Gone", server.url("/gone.rss")),
        FeedSource(name="Private", url=server.url("/world.rss")),  # allow_private left off
        feed("World", server.url("/world.rss")),
    ]
    result = collect(sources, fetcher, now=NOW, max_workers=2)
    assert result.failed == ["Page", "Gone", "Private"]
    page, gone, private = result.warnings
    assert page.startswith(f"source Page: {server.url('/page.rss')} is not an RSS or Atom feed")
    assert gone == f"source Gone: {server.url('/gone.rss')}: HTTP 410 Gone"
    assert private.startswith("source Private: ")
    assert "allow_private" in private
    assert {s.source for s in result.stories} == {"World"}


class Exploding(Source):
    kind = "exploding"

    def parse(self, fetched: Fetched) -> list[Story]:
        raise RuntimeError("plugin bug\nwith two lines")


def test_a_buggy_source_kind_does_not_stop_the_edition(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    sources = [
        Exploding(name="Buggy", url=server.url("/world.rss"), allow_private=True),
        feed("Tech", server.url("/tech.atom")),
    ]
    result = collect(sources, fetcher, now=NOW)
    assert result.failed == ["Buggy"]
    assert result.warnings == ["source Buggy: unexpected RuntimeError: plugin bug with two lines"]
    assert len(result.stories) == 7


def test_same_story_from_two_sources_is_kept_once(server: FixtureServer, fetcher: Fetcher) -> None:
    # The same feed under a tracking-param URL variant still yields the same canonical URLs.
    sources = [
        feed("Light", server.url("/world.rss"), weight=1.0),
        feed("Heavy", server.url("/world.rss?utm_source=x"), weight=2.0),
        feed("Third", server.url("/world.rss"), weight=2.0),
    ]
    result = collect(sources, fetcher, now=NOW)
    assert result.warnings == []
    assert len(result.stories) == 7
    first = result.stories[0]
    assert (first.source, first.weight, first.also_in) == ("Heavy", 2.0, ("Light", "Third"))


def test_no_sources_is_an_empty_result(fetcher: Fetcher) -> None:
    result = collect([], fetcher, now=NOW)
    assert (result.stories, result.warnings, result.failed) == ([], [], [])


def story(url: str, source: str, weight: float = 1.0) -> Story:
    return Story(url=url, title=url, teaser="", source=source, published=NOW, weight=weight)


def test_dedupe_keeps_first_position_and_highest_weight() -> None:
    batches = [
        [story("https://a", "one"), story("https://b", "one")],
        [story("https://b", "two", weight=3.0), story("https://c", "two")],
        [story("https://a", "three", weight=0.5)],
    ]
    result = dedupe(batches)
    assert [(s.url, s.source, s.also_in) for s in result] == [
        ("https://a", "one", ("three",)),
        ("https://b", "two", ("one",)),
        ("https://c", "two", ()),
    ]
