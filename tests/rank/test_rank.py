"""Scoring and selection with a fixed ``now``: each factor, each override, each limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from digest.config.yamlsrc import Located
from digest.exceptions import RankError
from digest.models import Story
from digest.rank import RankingSettings, choose, rank, score, selected
from digest.rank.settings import check_ranking

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def settings(**overrides: Any) -> RankingSettings:
    raw: dict[str, object] = {}
    raw.update(overrides)
    return check_ranking(raw, Located("t.yaml", {"ranking": raw}, {}).error)


def story(slug: str, hours: float = 1.0, **kw: Any) -> Story:
    defaults: dict[str, Any] = {
        "url": f"https://news.example.org/{slug}",
        "title": f"Story {slug}",
        "teaser": f"About {slug}.",
        "source": "Desk",
        "published": NOW - timedelta(hours=hours),
    }
    return Story(**(defaults | kw))


def urls(stories: list[Story]) -> list[str]:
    return [s.url.rsplit("/", 1)[1] for s in stories]


def test_recency_halves_every_half_life() -> None:
    s = settings(half_life_hours=6)
    assert score(story("a", 0), now=NOW, settings=s)[1]["recency"] == 1.0
    assert score(story("a", 6), now=NOW, settings=s)[1]["recency"] == pytest.approx(0.5)
    assert score(story("a", 12), now=NOW, settings=s)[1]["recency"] == pytest.approx(0.25)
    # A story dated in the future is not fresher than now.
    assert score(story("a", -5), now=NOW, settings=s)[1]["recency"] == 1.0


def test_score_is_the_product_of_every_factor() -> None:
    s = settings(
        half_life_hours=6,
        coverage_weight=0.5,
        section_weights={"World": 2},
        boost={"summit": 3},
        bury={"/\\brumou?r\\b/": 0.5},
    )
    item = story(
        "a", 6, title="Summit rumour", section="World", weight=1.5, also_in=("Wire", "Post")
    )
    value, factors = score(item, now=NOW, settings=s)
    assert factors == {
        "recency": pytest.approx(0.5),
        "source": 1.5,
        "coverage": 2.0,
        "section": 2.0,
        "keywords": 1.5,
    }
    assert value == pytest.approx(0.5 * 1.5 * 2.0 * 2.0 * 1.5)


def test_keywords_match_words_case_insensitively_not_inside_words() -> None:
    s = settings(boost={"AI": 2, "climate fund": 3})
    assert score(story("a", title="New ai rules"), now=NOW, settings=s)[1]["keywords"] == 2
    assert score(story("a", title="Said the chair"), now=NOW, settings=s)[1]["keywords"] == 1
    teaser = "A climate   fund is agreed"
    assert score(story("a", teaser=teaser), now=NOW, settings=s)[1]["keywords"] == 3


def test_higher_score_first_and_ties_break_on_recency_then_url() -> None:
    s = settings()
    got = selected(rank([story("b", 3), story("a", 3), story("c", 1)], now=NOW, settings=s))
    assert urls(got) == ["c", "a", "b"]


def test_freshness_cut_off_seen_and_duplicates_are_dropped_with_reasons() -> None:
    s = settings(max_age_hours=24)
    candidates = rank(
        [story("old", 30), story("seen"), story("dup"), story("dup", 2), story("ok")],
        now=NOW,
        settings=s,
        seen={"https://news.example.org/seen"},
    )
    reasons = {urls([c.story])[0]: c.reason for c in candidates if not c.kept}
    assert reasons["old"] == "older than 24 h (ranking.max_age_hours)"
    assert reasons["seen"] == "already mailed in an earlier edition"
    assert reasons["dup"] == "duplicate URL"
    assert urls(selected(candidates)) == ["dup", "ok"]


def test_blocks_by_url_source_and_pattern() -> None:
    s = settings(
        block_urls=["https://news.example.org/a?utm_source=x"],
        block_sources=["WIRE"],
        block_patterns=["/^sponsored:/"],
    )
    items = [story("a"), story("b", source="Wire"), story("c", title="Sponsored: buy"), story("d")]
    candidates = rank(items, now=NOW, settings=s)
    assert urls(selected(candidates)) == ["d"]
    reasons = sorted(c.reason for c in candidates if not c.kept)
    assert reasons == [
        "blocked: URL is in ranking.block_urls",
        "blocked: matches '/^sponsored:/' in ranking.block_patterns",
        "blocked: source 'Wire' is in ranking.block_sources",
    ]


def test_pin_is_in_at_its_position_whatever_its_score_age_or_source_block() -> None:
    s = settings(
        max_stories=3,
        max_age_hours=24,
        block_sources=["Archive"],
        pins=[{"url": "https://news.example.org/pinned", "position": 1}],
    )
    items = [story(x, 1) for x in "abcd"] + [story("pinned", 200, source="Archive")]
    candidates = rank(items, now=NOW, settings=s)
    assert urls(selected(candidates)) == ["pinned", "a", "b"]
    pinned = next(c for c in candidates if c.story.url.endswith("pinned"))
    assert pinned.reason.startswith("kept: pinned at position 1 in ranking.pins")
    assert "overrides source 'Archive' is in ranking.block_sources" in pinned.reason


def test_pin_without_position_goes_by_score_and_missing_pins_warn() -> None:
    s = settings(max_stories=2, pins=["https://news.example.org/z", "https://x.example/gone"])
    result = choose([story("a", 1), story("b", 2), story("z", 50)], now=NOW, settings=s)
    assert urls(result.stories) == ["a", "z"]
    assert result.warnings == [
        "ranking.pins: https://x.example/gone is not among today's stories, so it is not "
        "in the edition"
    ]


def test_manual_order_wins_over_score_and_pins() -> None:
    s = settings(max_stories=3, pins=[{"url": "https://news.example.org/p", "position": 1}])
    items = [story("a", 1), story("b", 2), story("c", 3), story("p", 4)]
    order = ["https://news.example.org/c", "https://news.example.org/b"]
    got = selected(rank(items, now=NOW, settings=s, order=order))
    assert urls(got) == ["c", "b", "p"]
    with pytest.raises(RankError, match="not among today's stories"):
        rank(items, now=NOW, settings=s, order=["https://news.example.org/nope"])
    with pytest.raises(RankError, match="max_stories is 3"):
        rank(items, now=NOW, settings=s, order=[f"https://news.example.org/{x}" for x in "abc"])


def test_story_limit_section_quota_and_max_per_source() -> None:
    s = settings(max_stories=4, section_quotas={"Sport": 1}, max_per_source=2)
    specs = [
        ("s1", "Sport", "A"),
        ("s2", "Sport", "B"),
        ("w1", "World", "A"),
        ("w2", "World", "A"),
        ("w3", "World", "C"),
        ("w4", "World", "C"),
        ("w5", "World", "D"),
    ]
    items = [
        story(slug, 1 + i / 10, section=sec, source=src) for i, (slug, sec, src) in enumerate(specs)
    ]
    candidates = rank(items, now=NOW, settings=s)
    assert sorted(urls(selected(candidates))) == ["s1", "w1", "w3", "w4"]
    reasons = {urls([c.story])[0]: c.reason for c in candidates if not c.kept}
    assert reasons == {
        "s2": "section Sport is full: 1 (ranking.section_quotas)",
        "w2": "already 2 from A (ranking.max_per_source)",
        "w5": "over the limit of 4 stories (ranking.max_stories)",
    }


def test_section_order_groups_the_rest_after_the_lead() -> None:
    s = settings(section_order=["culture", "World"])
    items = [
        story("w1", 1, section="World"),
        story("t1", 2, section="Tech"),
        story("c1", 3, section="Culture"),
        story("w2", 4, section="World"),
    ]
    assert urls(selected(rank(items, now=NOW, settings=s))) == ["w1", "c1", "w2", "t1"]
    # Without an order, sections follow their best story and stay together.
    assert urls(selected(rank(items, now=NOW, settings=settings()))) == ["w1", "t1", "c1", "w2"]


def test_near_identical_headlines_keep_only_the_best() -> None:
    s = settings()
    items = [
        story("a", 1, title="Leaders agree on a climate fund at the summit"),
        story("b", 2, title="Leaders agree on climate fund at summit", source="Wire"),
        story("c", 3, title="Leaders disagree about everything else"),
    ]
    candidates = rank(items, now=NOW, settings=s)
    assert urls(selected(candidates)) == ["a", "c"]
    dropped = next(c for c in candidates if not c.kept)
    assert dropped.reason == (
        "near-identical headline to https://news.example.org/a (ranking.diversity)"
    )
    # Without the headline rule the two are still one event (ranking.events); with
    # neither, all three stay.
    assert urls(selected(rank(items, now=NOW, settings=settings(diversity=0)))) == ["a", "c"]
    assert len(selected(rank(items, now=NOW, settings=settings(diversity=0, events=0)))) == 3


def test_equal_scores_prefer_breadth_across_sources() -> None:
    s = settings(max_stories=3)
    same = NOW - timedelta(hours=1)
    items = [
        story("a1", published=same, source="A"),
        story("a2", published=same, source="A"),
        story("a3", published=same, source="A"),
        story("b1", published=same, source="B"),
        story("c1", published=same, source="C"),
    ]
    got = selected(rank(items, now=NOW, settings=s))
    assert sorted(s.source for s in got) == ["A", "B", "C"]


def test_thin_day_flag_follows_min_stories() -> None:
    items = [story("a"), story("b")]
    assert choose(items, now=NOW, settings=settings(min_stories=3)).thin_day
    assert not choose(items, now=NOW, settings=settings(min_stories=2)).thin_day
    assert choose([], now=NOW, settings=settings()).thin_day
    assert not choose([], now=NOW, settings=settings(min_stories=0)).thin_day


def test_positions_number_the_kept_stories_from_the_lead() -> None:
    candidates = rank(
        [story(x, i) for i, x in enumerate("abcde")], now=NOW, settings=settings(max_stories=3)
    )
    assert [c.position for c in candidates] == [1, 2, 3, 0, 0]
    assert candidates[0].reason == "kept: score; lead"
