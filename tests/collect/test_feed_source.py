"""FeedSource against self-describing fixture feeds (each with a sidecar .expected.yaml)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import yaml

from digest.exceptions import ConfigError, SourceError
from digest.http import Fetcher
from digest.normalize import canonical_url, safe_http_url
from digest.sources.base import Fetched, load_source
from digest.sources.feed import FeedSource
from digest.testing.http import FixtureServer

from conftest import FIXTURES, ROOT

FEEDS = FIXTURES / "feeds"
EXAMPLES = ROOT / "examples" / "sources"
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def sidecars() -> list[Path]:
    return sorted(FEEDS.glob("*.expected.yaml"))


def feed_for(sidecar: Path) -> Path:
    stem = sidecar.name.removesuffix(".expected.yaml")
    (feed,) = [p for p in FEEDS.iterdir() if p.stem == stem and not p.name.endswith(".yaml")]
    return feed


def run_fixture(sidecar: Path) -> tuple[dict[str, Any], FeedSource, Fetched]:
    spec = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
    fetched = Fetched(
        url=spec["fetched"]["url"],
        body=feed_for(sidecar).read_bytes(),
        headers={"content-type": spec["fetched"]["content_type"]},
        fetched_at=spec["fetched"]["fetched_at"],
    )
    return spec, FeedSource(url=fetched.url, **spec["source"]), fetched


def test_every_fixture_has_a_sidecar_and_feed() -> None:
    feeds = {p.name for p in FEEDS.iterdir() if not p.name.endswith(".expected.yaml")}
    assert feeds == {feed_for(s).name for s in sidecars()}
    assert len(feeds) >= 8


@pytest.mark.parametrize("sidecar", sidecars(), ids=lambda p: p.name.split(".")[0])
def test_fixture_matches_sidecar(sidecar: Path) -> None:
    spec, source, fetched = run_fixture(sidecar)
    if "error" in spec:
        with pytest.raises(SourceError) as info:
            source.parse(fetched)
        assert str(info.value).startswith(spec["error"])
        assert "\n" not in str(info.value)
        return
    stories = source.parse(fetched)
    assert len(stories) == spec.get("count", len(spec["stories"]))
    for story, expected in zip(stories, spec["stories"], strict=False):
        actual = story.to_dict()
        for key, value in expected.items():
            assert actual[key] == value, f"{sidecar.name}: {key}"
    for story in stories:
        assert story.url.startswith(("http://", "https://"))
        assert len(story.teaser) <= source.teaser_length
        assert story.published.tzinfo is UTC
        assert story.source == source.name
    dumped = json.dumps([s.to_dict() for s in stories], ensure_ascii=False).lower()
    for needle in spec.get("forbidden", []):
        assert needle.lower() not in dumped, f"{sidecar.name}: {needle!r} reached a story"


def test_max_items_limits_the_stories() -> None:
    _, _, fetched = run_fixture(FEEDS / "rss20_media.expected.yaml")
    stories = FeedSource(name="d", url=fetched.url, max_items=2).parse(fetched)
    assert [s.title for s in stories] == [
        "Haiti sets August date for long-delayed elections",
        "Knesset takes up conscription bill once more",
    ]


def test_configured_section_overrides_categories() -> None:
    _, _, fetched = run_fixture(FEEDS / "rss20_media.expected.yaml")
    stories = FeedSource(name="d", url=fetched.url, section="World").parse(fetched)
    assert {s.section for s in stories} == {"World"}


def test_a_path_in_the_body_is_not_opened_as_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "feed.xml"
    secret.write_bytes((FEEDS / "rss20_media.xml").read_bytes())
    fetched = Fetched(
        url="https://x.example/rss", body=str(secret).encode(), headers={}, fetched_at=NOW
    )
    with pytest.raises(SourceError, match=r"^x: https://x\.example/rss is not an RSS or Atom"):
        FeedSource(name="x", url=fetched.url).parse(fetched)


def test_load_source_builds_a_feed_and_rejects_unknown_options() -> None:
    source = load_source("feed", name="w", url="https://world.example.org/rss")
    assert isinstance(source, FeedSource)
    with pytest.raises(ConfigError, match=r"source 'w' \(feed\): unknown option\(s\) colour"):
        load_source("feed", name="w", url="https://world.example.org/rss", colour="red")


@pytest.fixture
def served() -> Iterator[FixtureServer]:
    with FixtureServer(FEEDS) as server:
        body = (FEEDS / "rss20_media.xml").read_bytes()
        body = body.replace(b"https://dispatch.example.com", b"")
        server.route("/moved.rss", body, headers={"Content-Type": "application/rss+xml"})
        yield server


def test_fetched_through_the_real_client(served: FixtureServer) -> None:
    with Fetcher() as fetcher:
        resp = fetcher.fetch(served.url("/moved.rss"), allow_private=True)
    fetched = Fetched(url=resp.url, body=resp.body, headers=resp.headers, fetched_at=NOW)
    stories = FeedSource(name="d", url=resp.url).parse(fetched)
    # Links made relative resolve against the URL the feed was fetched from.
    assert stories[0].url == served.url("/world/haiti-elections?id=77")
    assert stories[1].url == served.url("/world/knesset-conscription")


def test_html_served_as_a_feed_is_a_source_error(served: FixtureServer) -> None:
    with Fetcher() as fetcher:
        resp = fetcher.fetch(served.url("/not_a_feed.html"), allow_private=True)
    fetched = Fetched(url=resp.url, body=resp.body, headers=resp.headers, fetched_at=NOW)
    with pytest.raises(SourceError, match=r"^d: .* is not an RSS or Atom feed .*text/html"):
        FeedSource(name="d", url=resp.url).parse(fetched)


@pytest.mark.parametrize(
    ("name", "sections"),
    [
        ("world.rss", {"World", "Middle East", "Americas"}),
        ("tech.atom", {"Technology", "Software", "Science"}),
    ],
)
def test_bundled_examples_are_realistic(name: str, sections: set[str]) -> None:
    url = f"https://examples.invalid/{name}"
    fetched = Fetched(url=url, body=(EXAMPLES / name).read_bytes(), headers={}, fetched_at=NOW)
    stories = FeedSource(name=name, url=url).parse(fetched)
    assert 6 <= len(stories) <= 8
    assert {s.section for s in stories} == sections
    assert all(s.image is not None and s.image.url.startswith("https://") for s in stories)
    assert all(datetime(2026, 11, 23, tzinfo=UTC) <= s.published < NOW for s in stories)
    assert all(s.title and s.teaser and not s.undated for s in stories)
    assert len({s.url for s in stories}) == len(stories)


CORPORA = [FEEDS, EXAMPLES, FEEDS.parent / "e2e", FEEDS.parent / "ranking"]
MARKUP = re.compile(r"<[a-zA-Z/!?]|&lt;[a-zA-Z/]|javascript:|on\w+=", re.IGNORECASE)


def corpus() -> list[Path]:
    return sorted(p for d in CORPORA for p in d.iterdir() if not p.name.endswith(".yaml"))


@pytest.mark.parametrize("path", corpus(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_no_crash_no_markup_every_linked_item_a_story(path: Path) -> None:
    url = f"https://corpus.example/{path.name}"
    fetched = Fetched(url=url, body=path.read_bytes(), headers={}, fetched_at=NOW)
    try:
        stories = FeedSource(name="c", url=url, max_items=10_000).parse(fetched)
    except SourceError as exc:  # a clear refusal (not a feed, broken XML) is no crash
        refusal = str(exc)
        stories = []
    else:
        refusal = ""
    assert "\n" not in refusal
    for story in stories:
        data = story.to_dict()
        image = data.pop("image") or {}
        for value in (*data.values(), *image.values()):
            assert not MARKUP.search(str(value)), (path.name, value)
    # Every item with a title and an http(s) link, as feedparser itself sees them.
    raw = feedparser.parse(
        io.BytesIO(path.read_bytes()), response_headers={"content-location": url}
    )
    urls = {s.url for s in stories}
    for entry in raw.entries:
        link = safe_http_url(canonical_url(entry.get("link", ""), base=url))
        if entry.get("title", "").strip() and link:
            assert link in urls, (path.name, link)


def test_plug_ins_are_looked_up_once_not_once_per_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.sources import base

    calls: list[str] = []
    real = base.entry_points

    def counting(**kwargs: str) -> object:
        calls.append(kwargs["group"])
        return real(**kwargs)

    monkeypatch.setattr(base, "entry_points", counting)
    monkeypatch.setattr(base, "_registry", {})
    monkeypatch.setattr(base, "_classes", {})
    sources = [load_source("feed", name=f"s{i}", url=f"https://x.example/{i}") for i in range(500)]
    assert len({type(s) for s in sources}) == 1
    assert calls == ["digest.sources"]
