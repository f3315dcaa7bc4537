"""collect(): many sources at once over a real local server; failures become warnings."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.collect import CollectProgress, collect
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
    server.route(
        "/page.rss",
        b"<!DOCTYPE html><html><body><p>Moved</p></body></html>",
        headers={"Content-Type": "text/html"},
    )
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


def test_collect_returns_every_source_s_stories_unmerged(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    # The same feed three times: deduplication is ranking's job (digest.dedupe), done once.
    sources = [
        feed("Light", server.url("/world.rss"), weight=1.0),
        feed("Heavy", server.url("/world.rss?utm_source=x"), weight=2.0),
        feed("Third", server.url("/world.rss"), weight=2.0),
    ]
    result = collect(sources, fetcher, now=NOW)
    assert result.warnings == []
    assert [s.source for s in result.stories] == ["Light"] * 7 + ["Heavy"] * 7 + ["Third"] * 7
    assert all(s.also_in == () for s in result.stories)


def test_headers_trickling_beside_a_good_source_meet_the_deadline(
    server: FixtureServer,
) -> None:
    # One byte of the head every 0.05 s: about 25 s in all, and no read ever times out.
    server.route("/slowloris.rss", b"<rss/>", trickle=0.05)
    sources = [feed("Slow", server.url("/slowloris.rss")), feed("World", server.url("/world.rss"))]
    events: list[CollectProgress] = []
    started = time.monotonic()
    # 3 s leave the good source time on a busy machine; the slow one needs 25 s.
    with Fetcher(settings=FetchSettings(timeout=5.0, deadline=3.0)) as f:
        result = collect(sources, f, now=NOW, progress=events.append)
    assert time.monotonic() - started < 12
    assert result.warnings == ["source Slow: no answer within 3 s"]
    assert (result.failed, result.late) == (["Slow"], ["Slow"])
    assert {s.source for s in result.stories} == {"World"}
    assert len(result.stories) == 7
    # Progress: everything pending at first, the good source done, the slow one late.
    assert events[0] == CollectProgress(2, 0, ("Slow", "World"))
    assert CollectProgress(2, 1, ("Slow",), "World") in [replace(e, outcome="") for e in events]
    assert events[-1].late == ("Slow",)


def test_sources_queued_past_the_deadline_are_late_too(server: FixtureServer) -> None:
    # One worker: the second source waits behind a trickling one and never gets its turn.
    server.route("/slowloris.rss", b"<rss/>", trickle=0.05)
    sources = [feed("Slow", server.url("/slowloris.rss")), feed("World", server.url("/world.rss"))]
    started = time.monotonic()
    with Fetcher(settings=FetchSettings(deadline=1.0)) as f:
        result = collect(sources, f, now=NOW, max_workers=1)
    assert time.monotonic() - started < 8
    assert result.warnings == [
        "source Slow: no answer within 1 s",
        "source World: no answer within 1 s",
    ]


def test_no_sources_is_an_empty_result(fetcher: Fetcher) -> None:
    result = collect([], fetcher, now=NOW)
    assert (result.stories, result.warnings, result.failed) == ([], [], [])


def test_sources_start_one_host_at_a_time_in_turn(fetcher: Fetcher) -> None:
    # One worker, so sources finish in the order they start: each site's first feed goes
    # before any site's second, so one site's queue (and its slow feeds) cannot hold up the
    # rest. The stories keep the source order.
    with FixtureServer(EXAMPLES) as a, FixtureServer(EXAMPLES, host="127.0.0.2") as b:
        sources = [feed(f"a{i}", a.url(f"/world.rss?{i}")) for i in range(3)]
        sources += [feed("b0", b.url("/world.rss?0")), feed("b1", b.url("/world.rss?1"))]
        events: list[CollectProgress] = []
        result = collect(sources, fetcher, now=NOW, max_workers=1, progress=events.append)
    assert [e.finished for e in events if e.finished] == ["a0", "b0", "a1", "b1", "a2"]
    assert [s.source for s in result.stories][::7] == ["a0", "a1", "a2", "b0", "b1"]
