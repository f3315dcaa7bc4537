"""Bylines and images on real feeds from other projects' test data (see data/feeds_real)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from digest.models import Story
from digest.sources.base import Fetched
from digest.sources.detect import AutoSource

DATA = Path(__file__).parent / "data" / "feeds_real"
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
MIN_FEEDS = 100


def manifest() -> list[dict[str, Any]]:
    feeds: list[dict[str, Any]] = yaml.safe_load((DATA / "feeds.yaml").read_text("utf-8"))
    return feeds


def stories_of(feed: dict[str, Any]) -> list[Story]:
    fetched = Fetched(
        url=feed["url"], body=(DATA / feed["file"]).read_bytes(), headers={}, fetched_at=NOW
    )
    return AutoSource(name=feed["file"], url=feed["url"], max_items=100).parse(fetched)


def test_every_file_is_listed_with_its_origin_and_licence() -> None:
    feeds = manifest()
    files = {p.name for p in DATA.iterdir() if p.name not in ("feeds.yaml", "README.md")}
    assert files == {f["file"] for f in feeds}
    assert len(feeds) >= MIN_FEEDS
    for feed in feeds:
        assert feed["from"], feed["file"]
        assert feed["licence"], feed["file"]
        assert feed["items"], feed["file"]


def test_images_and_bylines_where_the_items_have_them() -> None:
    with_image = with_author = image_hits = author_hits = stray_authors = stray_images = items = 0
    misses: list[str] = []
    for feed in manifest():
        stories = stories_of(feed)
        assert len(stories) == len(feed["items"]), feed["file"]
        for story, expected in zip(stories, feed["items"], strict=True):
            items += 1
            if "i" in expected:
                with_image += 1
                image_hits += story.image is not None
                if story.image is None:
                    misses.append(f"{feed['file']}: no image for {story.title[:40]!r}")
            elif story.image is not None:
                stray_images += 1
                misses.append(f"{feed['file']}: image {story.image.url} the item does not have")
            if "a" in expected:
                with_author += 1
                author_hits += bool(story.author)
                if not story.author:
                    misses.append(f"{feed['file']}: no byline for {story.title[:40]!r}")
            elif story.author:
                stray_authors += 1
                misses.append(f"{feed['file']}: byline {story.author!r} the item does not state")
            assert "@" not in story.author, feed["file"]
            assert "://" not in story.author, feed["file"]
    image_rate = image_hits / with_image
    author_rate = author_hits / with_author
    print(
        f"{len(manifest())} feeds, {items} items; image {image_hits}/{with_image}"
        f" = {image_rate:.3f}; byline {author_hits}/{with_author} = {author_rate:.3f};"
        f" bylines not in the item: {stray_authors}; images not in the item: {stray_images}"
    )
    print("\n".join(misses))
    assert image_rate >= 0.90, misses
    assert author_rate >= 0.95, misses
