"""Deduplication, done once in ranking: by URL, then near-identical headlines, via an index."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from digest.models import Story
from digest.rank.dedupe import dedupe

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def story(title: str, source: str, url: str, weight: float = 1.0, hours: float = 0) -> Story:
    return Story(
        url=url,
        title=title,
        teaser="",
        source=source,
        published=NOW - timedelta(hours=hours),
        weight=weight,
    )


def test_one_story_per_url_highest_weight_wins_with_every_source_in_also_in() -> None:
    stories = [
        story("A", "one", "https://a"),
        story("B", "one", "https://b"),
        story("B", "two", "https://b", weight=3.0),
        story("C", "two", "https://c"),
        story("A", "three", "https://a", weight=0.5),
    ]
    result = dedupe(stories, threshold=0)
    kept = {s.url: (s.source, s.also_in) for s in result.stories}
    assert kept == {
        "https://a": ("one", ("three",)),
        "https://b": ("two", ("one",)),
        "https://c": ("two", ()),
    }
    assert sorted((s.source, why) for s, why in result.dropped) == [
        ("one", "duplicate URL"),
        ("three", "duplicate URL"),
    ]


def test_near_identical_headlines_collapse_keeping_every_source() -> None:
    stories = [
        story("Haiti sets August date for long-delayed elections", "Dispatch", "https://a/1"),
        story("Knesset takes up conscription bill", "Dispatch", "https://a/2"),
        story(
            "Haiti sets an August date for its long-delayed elections",
            "Signal",
            "https://b/1",
            weight=2.0,
        ),
        story("HAITI SETS AUGUST DATE FOR LONG-DELAYED ELECTIONS!", "Wire", "https://c/1"),
        story("Knesset takes up a different bill", "Signal", "https://b/2"),
    ]
    result = dedupe(stories, threshold=0.7)
    kept = {s.url: s.also_in for s in result.stories}
    assert kept == {
        "https://b/1": ("Dispatch", "Wire"),  # the heaviest source's story stands for all
        "https://a/2": (),
        "https://b/2": (),
    }
    reasons = {s.url: why for s, why in result.dropped}
    assert reasons == {
        "https://a/1": "near-identical headline to https://b/1 (ranking.diversity)",
        "https://c/1": "near-identical headline to https://b/1 (ranking.diversity)",
    }
    assert len(dedupe(stories, threshold=0).stories) == 5  # diversity 0: no headline merge


def test_the_result_does_not_depend_on_the_input_order() -> None:
    stories = [
        story(f"Leaders agree on climate fund {i % 3}", f"s{i % 4}", f"https://x/{i}", hours=i % 5)
        for i in range(30)
    ]
    first = dedupe(stories, threshold=0.7)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = stories[:]
        rng.shuffle(shuffled)
        again = dedupe(shuffled, threshold=0.7)
        assert again.stories == first.stories
        assert sorted((s.url, w) for s, w in again.dropped) == sorted(
            (s.url, w) for s, w in first.dropped
        )


def test_pinned_stories_are_never_merged_away_or_together() -> None:
    stories = [
        story("Leaders agree on climate fund at the summit", "A", "https://a", weight=3.0),
        story("Leaders agree on climate fund at summit", "B", "https://b"),
        story("Leaders agree on a climate fund at summit", "C", "https://c"),
    ]
    result = dedupe(stories, threshold=0.7, keep={"https://b", "https://c"})
    assert sorted(s.url for s in result.stories) == ["https://b", "https://c"]
    assert [(s.url, why.split(" (")[0]) for s, why in result.dropped] == [
        ("https://a", "near-identical headline to https://b")
    ]


def test_matches_the_plain_pairwise_rule_on_random_headlines() -> None:
    # The index is exact: the same groups as comparing every story with every founder.
    rng = random.Random(3)
    words = [f"w{i}" for i in range(40)]
    stories = [
        story(" ".join(rng.sample(words, rng.randint(1, 9))), f"s{i % 7}", f"https://r/{i}")
        for i in range(400)
    ]
    for threshold in (0.3, 0.5, 0.7, 1.0):
        got = {s.url for s in dedupe(stories, threshold=threshold).stories}
        assert got == _pairwise(stories, threshold)


def _pairwise(stories: list[Story], threshold: float) -> set[str]:
    from digest.normalize import headline_words

    ordered = sorted(stories, key=lambda s: (-s.weight, -s.published.timestamp(), s.url))
    founders: list[tuple[frozenset[str], str]] = []
    for s in ordered:
        mine = headline_words(s.title)
        if not any(mine and len(mine & f) >= threshold * len(mine | f) for f, _ in founders):
            founders.append((mine, s.url))
    return {url for _, url in founders}
