"""Article extraction runs in worker processes: never two extractions in one process at
once (trafilatura over lxml is not safe across threads), and a native crash costs one page,
which fails with a warning naming its source, while the collection goes on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from digest.collect import collect
from digest.http import Fetcher
from digest.sources.article import CRASH_HOOK, EXTRACTORS
from digest.sources.page import PageSource
from digest.testing.http import FixtureServer

from conftest import FIXTURES

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
# Descriptions removed, so every teaser has to come from the extractor.
DESCRIPTION = re.compile(rb"<meta[^>]+(?:name|property)=\"(?:og:|twitter:)?description\"[^>]*>")


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


def article(title: str, text: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title} - Lake Post</title>"
        "</head><body><nav><a href='/'>Home</a></nav><article><h1>"
        f"{title}</h1><p>{text} The council met on Monday and voted for the plan after a"
        " long debate about the terraces on the lake front.</p></article></body></html>"
    ).encode()


def test_a_page_that_crashes_the_extractor_fails_alone_with_a_warning(
    server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CRASH_HOOK, "KILL-THE-WORKER")
    sources = []
    for k in range(6):
        text = "KILL-THE-WORKER" if k == 3 else f"Budget number {k} passes."
        server.route(f"/a{k}", article(f"Lake budget {k} passes", text))
        sources.append(PageSource(name=f"Lake {k}", url=server.url(f"/a{k}"), allow_private=True))
    before = EXTRACTORS.restarts
    with Fetcher() as f:
        result = collect(sources, f, now=NOW, max_workers=6)
    assert sorted(s.title for s in result.stories) == [
        f"Lake budget {k} passes" for k in (0, 1, 2, 4, 5)
    ]
    (warning,) = result.warnings
    assert warning.startswith(f"source Lake 3: {server.url('/a3')}: the article extractor crashed")
    assert result.failed == ["Lake 3"]
    assert EXTRACTORS.restarts > before  # the broken pool was replaced ...
    with Fetcher() as f:  # ... and the next collection extracts as before
        again = collect(sources[:3], f, now=NOW)
    assert again.warnings == []
    assert len(again.stories) == 3


def test_many_real_pages_extracted_concurrently_many_times_and_no_process_dies(
    server: FixtureServer,
) -> None:
    pages = sorted((FIXTURES / "articles").glob("*.html"))[:40]
    sources = []
    for k, path in enumerate(pages):
        server.route(
            f"/p{k}",
            DESCRIPTION.sub(b"", path.read_bytes()),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )
        sources.append(PageSource(name=path.stem, url=server.url(f"/p{k}"), allow_private=True))
    before = EXTRACTORS.restarts
    for _ in range(5):
        with Fetcher() as f:
            result = collect(sources, f, now=NOW, max_workers=16)
        assert [w for w in result.warnings if "crashed" in w] == []
        assert len(result.stories) >= 38  # the same pages as in the single-threaded test
    assert EXTRACTORS.restarts == before
