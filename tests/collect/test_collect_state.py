"""Conditional GET across runs, per-source health and alerts, near duplicates, filters."""

from __future__ import annotations

import gzip
import json
import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.collect import collect
from digest.http import Fetcher, FetchSettings
from digest.sources.base import load_source
from digest.sources.feed import FeedSource
from digest.store import Store
from digest.store.sources import SourceState
from digest.testing.http import FixtureServer

from conftest import FIXTURES, Project

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        for name in ("world.rss", "tech.atom"):
            body = (FIXTURES / "e2e" / name).read_bytes()
            srv.route(
                f"/{name}",
                body,
                headers={"ETag": f'"{name}-v1"', "Last-Modified": "Mon, 23 Nov 2026 20:00:00 GMT"},
            )
        yield srv


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(settings=FetchSettings(timeout=2.0, retries=0)) as f:
        yield f


class CountingFeed(FeedSource):
    """A real feed source that counts its parses, to prove a 304 parses nothing."""

    parses = 0

    def parse(self, fetched):  # type: ignore[no-untyped-def]
        CountingFeed.parses += 1
        return super().parse(fetched)


def test_second_run_is_conditional_and_parses_nothing(
    server: FixtureServer, fetcher: Fetcher, tmp_path: Path
) -> None:
    store = Store(tmp_path / "state.db")
    sources = [
        CountingFeed(name="World", url=server.url("/world.rss"), allow_private=True),
        CountingFeed(name="Tech", url=server.url("/tech.atom"), allow_private=True),
    ]
    for name in ("world.rss", "tech.atom"):
        server.route_sequence(
            f"/{name}",
            [
                (200, (FIXTURES / "e2e" / name).read_bytes(), {"ETag": f'"{name}-v1"'}),
                (304, b"", {"ETag": f'"{name}-v1"'}),
            ],
        )
    CountingFeed.parses = 0
    cold = collect(sources, fetcher, now=NOW, state=SourceState(store))
    assert CountingFeed.parses == 2
    assert cold.parsed == ["World", "Tech"]
    server.requests.clear()
    warm = collect(sources, fetcher, now=NOW + timedelta(hours=1), state=SourceState(store))
    assert CountingFeed.parses == 2  # nothing parsed
    assert (warm.parsed, warm.not_modified) == ([], ["World", "Tech"])
    assert all(h["if-none-match"].endswith('-v1"') for _, _, h in server.requests)
    assert len(server.requests) == 2
    assert [s.to_dict() for s in warm.stories] == [s.to_dict() for s in cold.stories]
    assert warm.health["World"].not_modified
    assert warm.health["World"].items_seen == 3
    store.close()


def test_changed_source_config_drops_its_cache(
    server: FixtureServer, fetcher: Fetcher, tmp_path: Path
) -> None:
    store = Store(tmp_path / "state.db")
    world = FeedSource(name="World", url=server.url("/world.rss"), allow_private=True)
    collect([world], fetcher, now=NOW, state=SourceState(store))
    server.requests.clear()
    heavier = FeedSource(name="World", url=server.url("/world.rss"), allow_private=True, weight=3)
    result = collect([heavier], fetcher, now=NOW, state=SourceState(store))
    assert "if-none-match" not in server.requests[0][2]
    assert result.parsed == ["World"]
    assert result.stories[0].weight == 3
    store.close()


def test_failures_counted_and_alerted_then_reset(
    server: FixtureServer, fetcher: Fetcher, tmp_path: Path
) -> None:
    store = Store(tmp_path / "state.db")
    state = SourceState(store)
    flaky = FeedSource(name="Flaky", url=server.url("/flaky.rss"), allow_private=True)
    server.route("/flaky.rss", b"oops", status=500)
    for run in range(1, 4):
        result = collect(
            [flaky], fetcher, now=NOW + timedelta(days=run), state=state, failure_alert=3
        )
        assert result.health["Flaky"].consecutive_failures == run
    assert result.alerts == [
        "source Flaky: ALERT: failed 3 runs in a row (last success: never); fix its URL or"
        " remove it"
    ]
    assert result.alerts[0] in result.warnings
    server.route("/flaky.rss", (FIXTURES / "e2e" / "world.rss").read_bytes())
    result = collect([flaky], fetcher, now=NOW + timedelta(days=5), state=state, failure_alert=3)
    health = state.health()["Flaky"]
    assert (result.alerts, health.consecutive_failures, health.items_seen) == ([], 0, 3)
    assert health.last_error.endswith("HTTP 500 Internal Server Error")
    assert health.last_success == NOW + timedelta(days=5)
    store.close()


def test_readonly_state_reads_the_cache_and_writes_nothing(
    server: FixtureServer, fetcher: Fetcher, tmp_path: Path
) -> None:
    path = tmp_path / "state.db"
    store = Store(path)
    world = FeedSource(name="World", url=server.url("/world.rss"), allow_private=True)
    collect([world], fetcher, now=NOW, state=SourceState(store))
    store.close()
    before = path.read_bytes()
    ro = Store.open_readonly(path)
    server.route("/world.rss", b"", status=304)
    result = collect([world], fetcher, now=NOW, state=SourceState(ro))
    ro.close()
    assert result.not_modified == ["World"]
    assert len(result.stories) == 3
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_include_and_exclude_patterns(server: FixtureServer, fetcher: Fetcher) -> None:
    url = server.url("/world.rss")
    only = load_source(
        "feed",
        name="W",
        url=url,
        allow_private=True,
        include=["ukraine", "haiti"],
        exclude=[r"\bputin\b"],
    )
    result = collect([only], fetcher, now=NOW)
    titles = [s.title for s in result.stories]
    assert titles
    assert all("putin" not in t.lower() for t in titles)
    assert all(
        any(k in f"{s.title} {s.teaser}".lower() for k in ("ukraine", "haiti"))
        for s in result.stories
    )


def test_placeholder_tokens_are_stripped_from_feed_text(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    rss = """<rss version="2.0"><channel><title>t</title><item>
      <title>Win __DIGEST___DIGEST_EMAIL__EMAIL__ prizes __DIGEST_UNSUBSCRIBE_URL__</title>
      <link>https://evil.example/a</link>
      <description>Dear __DIGEST_NAME__, click __DIGEST_GREETING_NAME__</description>
      </item></channel></rss>"""
    server.route("/evil.rss", rss.encode())
    source = FeedSource(name="Evil", url=server.url("/evil.rss"), allow_private=True)
    (item,) = collect([source], fetcher, now=NOW).stories
    assert "__DIGEST_" not in item.title + item.teaser
    assert item.title == "Win prizes"


def hostile_config(project: Project) -> None:
    srv = project.feeds
    srv.route("/malformed.xml", (FIXTURES / "feeds" / "malformed.xml").read_bytes())
    srv.route(
        "/html.rss",
        b"<!DOCTYPE html><html><body><p>Sign in</p></body></html>",
        headers={"Content-Type": "text/html"},
    )
    srv.route("/empty.rss", b"")
    bomb = gzip.compress(b"<rss>" + b" " * 30_000_000, compresslevel=9)
    srv.route("/bomb.rss", bomb, headers={"Content-Encoding": "gzip"})
    srv.route("/huge.rss", b"x" * 50_000_000)
    srv.route("/slow.rss", b"<rss/>", delay=1.5)
    srv.redirect("/loop-a.rss", "/loop-b.rss")
    srv.redirect("/loop-b.rss", "/loop-a.rss")
    srv.route("/hostile.rss", (FIXTURES / "feeds" / "hostile.xml").read_bytes())
    srv.route("/mojibake.rss", (FIXTURES / "feeds" / "mojibake.xml").read_bytes())
    names = [
        "malformed.xml",
        "html.rss",
        "empty.rss",
        "bomb.rss",
        "huge.rss",
        "slow.rss",
        "loop-a.rss",
        "hostile.rss",
        "mojibake.rss",
    ]
    lines = ["sources:"]
    for name in names:
        lines += [f"  - name: {name}", f"    url: {srv.url('/' + name)}", "    allow_private: true"]
    project.write_config(
        sources="\n".join(lines) + "\n",
        extra="fetch:\n  timeout: 0.5\n  retries: 0\n  max_bytes: 2000000\n",
    )


def test_hostile_and_broken_sources_through_the_cli(project: Project) -> None:
    hostile_config(project)
    result = project.cli("collect", "--json")
    assert result.exit_code == 0, result.output
    warnings = {
        line.split(":", 2)[1].strip().removeprefix("source "): line
        for line in result.stderr.splitlines()
    }
    reasons = {
        "malformed.xml": "malformed feed",
        "html.rss": "is not an RSS or Atom feed",
        "empty.rss": "empty response",
        "bomb.rss": "over the 2000000 byte limit (after decoding)",
        "huge.rss": "body of 50000000 bytes is over the 2000000 byte limit",
        "slow.rss": "timed out after 0.5s",
        "loop-a.rss": "redirect loop",
    }
    for name, reason in reasons.items():
        assert name in warnings, result.stderr
        assert reason in warnings[name], warnings[name]
    stories = json.loads(result.stdout)
    assert {s["source"] for s in stories} == {"hostile.rss", "mojibake.rss"}
    dumped = json.dumps(stories).lower()
    for needle in ("<script", "javascript:", "onerror", "alert(", "<img", "â€"):
        assert needle not in dumped
    assert any("Café" in s["title"] or "’" in s["title"] for s in stories)
    # `digest sources` shows the same failures from the store.
    health = json.loads(project.cli("sources", "--json").stdout)
    failing = {h["name"] for h in health if h["consecutive_failures"] == 1}
    assert failing == set(reasons)


def test_redirect_to_a_private_address_is_refused(server: FixtureServer) -> None:
    # 127.0.0.2 plays a public site (the address rule is injected); it redirects to 127.0.0.1.
    with FixtureServer(host="127.0.0.2") as public:
        public.redirect("/hop.rss", server.url("/world.rss"))
        first = public.url("/hop.rss")
        settings = FetchSettings(retries=0)
        with Fetcher(is_public=lambda a: a == "127.0.0.2", settings=settings) as f:
            result = collect([FeedSource(name="Hop", url=first)], f, now=NOW)
    assert result.warnings == [
        f"source Hop: {first}: redirect to {server.url('/world.rss')}: host '127.0.0.1'"
        " resolves to non-public address 127.0.0.1; set allow_private for this source if that"
        " is intended"
    ]
    assert server.requests == []


def test_sources_command_and_alert_in_the_edition(project: Project) -> None:
    project.write_config(
        sources=textwrap.dedent(f"""\
            sources:
              - name: World Desk
                url: {project.feeds.url("/world.rss")}
                allow_private: true
              - name: Dead Desk
                url: http://127.0.0.1:9/feed.rss
                allow_private: true
            """),
        extra="fetch:\n  retries: 0\n  failure_alert: 2\n",
    )
    empty = project.cli("sources")
    assert empty.exit_code == 0
    assert re.search(r"Dead Desk\s+feed\s+http://127.0.0.1:9/feed.rss\s+never\s+0", empty.output)
    assert not project.state.exists()  # reading health creates no state file
    first = project.cli("collect", "--json")
    assert "ALERT" not in first.stderr
    edition = json.loads(project.cli("build", "--json").stdout)
    assert any(w.startswith("source Dead Desk: ALERT: failed 2 runs") for w in edition["warnings"])
    text = project.cli("sources").output
    # A table with headers (issue 17): never, 2 failures in a row, flagged.
    assert re.search(
        r"Dead Desk\s+feed\s+http://127.0.0.1:9/feed.rss\s+never\s+2\s+0\s+FAILING", text
    )
    assert "failures in a row" in text.splitlines()[0]
    rows = {r["name"]: r for r in json.loads(project.cli("sources", "--json").stdout)}
    assert rows["World Desk"]["items_seen"] == 3
    assert rows["World Desk"]["last_success"]
    assert rows["Dead Desk"]["alert"]
    assert "connection failed" in rows["Dead Desk"]["last_error"]


def test_preview_without_edition_writes_nothing_even_with_source_state(project: Project) -> None:
    assert project.cli("collect").exit_code == 0
    before = project.state.read_bytes()
    result = project.cli("preview", "--out", str(project.root / "out"))
    assert result.exit_code == 0, result.output
    assert project.state.read_bytes() == before
    assert sorted(p.name for p in project.state.parent.iterdir()) == ["digest.db"]
