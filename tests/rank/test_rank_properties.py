"""Properties of ranking over generated days: limits, pins, blocks, determinism, stable order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.config.yamlsrc import Located
from digest.models import Story
from digest.rank import RankingSettings, rank, selected
from digest.rank.settings import check_ranking

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
SOURCES = ("Desk", "Wire", "Post", "Blog")
SECTIONS = ("World", "Tech", "Sport", "")
WORDS = ("summit", "climate", "fund", "vote", "cup", "final", "chip", "power", "storm", "rate")


@dataclass(frozen=True)
class Day:
    stories: list[Story]
    settings: RankingSettings
    pins: frozenset[str]
    blocked_urls: frozenset[str]
    blocked_sources: frozenset[str]


def ranking(**raw_overrides: Any) -> RankingSettings:
    raw: dict[str, object] = {} | raw_overrides
    return check_ranking(raw, Located("t.yaml", {"ranking": raw}, {}).error)


@st.composite
def days(draw: st.DrawFn) -> Day:
    n = draw(st.integers(0, 18))
    stories = [
        Story(
            url=f"https://n.example/{i}",
            title=" ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=5))),
            teaser="",
            source=draw(st.sampled_from(SOURCES)),
            section=draw(st.sampled_from(SECTIONS)),
            # Whole hours make equal scores (and so the tie-breaks) common.
            published=NOW - timedelta(hours=draw(st.integers(-2, 100))),
            weight=draw(st.sampled_from((0.5, 1.0, 1.5))),
            also_in=tuple(draw(st.lists(st.sampled_from(SOURCES), max_size=2, unique=True))),
        )
        for i in range(n)
    ]
    limit = draw(st.integers(1, 8))
    urls = [s.url for s in stories]
    pins = draw(st.lists(st.sampled_from(urls), unique=True, max_size=min(limit, 3))) if n else []
    free = [u for u in urls if u not in pins]
    blocked = draw(st.lists(st.sampled_from(free), unique=True, max_size=3)) if free else []
    positions = draw(st.lists(st.integers(0, limit), min_size=len(pins), max_size=len(pins)))
    used: set[int] = set()
    pin_specs = []
    for url, pos in zip(pins, positions, strict=True):
        pos = 0 if pos in used else pos  # two pins cannot share a position
        used.add(pos)
        pin_specs.append({"url": url, "position": pos})
    blocked_sources = draw(st.lists(st.sampled_from(SOURCES), unique=True, max_size=1))
    quotas = draw(st.dictionaries(st.sampled_from(SECTIONS[:3]), st.integers(0, 3), max_size=2))
    config = ranking(
        max_stories=limit,
        max_age_hours=draw(st.sampled_from((24, 72))),
        max_per_source=draw(st.integers(0, 3)),
        section_quotas=quotas,
        diversity=draw(st.sampled_from((0, 0.5, 0.7))),
        pins=pin_specs,
        block_urls=blocked,
        block_sources=blocked_sources,
        block_patterns=draw(st.lists(st.sampled_from(WORDS), unique=True, max_size=1)),
    )
    return Day(stories, config, frozenset(pins), frozenset(blocked), frozenset(blocked_sources))


COMMON = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(days())
def test_limits_are_never_exceeded(day: Day) -> None:
    kept = selected(rank(day.stories, now=NOW, settings=day.settings))
    s = day.settings
    assert len(kept) <= s.max_stories
    pinned = Counter(x.section.casefold() for x in kept if x.url in day.pins)
    for section, n in Counter(x.section.casefold() for x in kept).items():
        quota = s.section_quotas.get(section)
        if quota is not None:
            # Pins are always in, so only they may fill a section past its quota.
            assert n <= max(quota, pinned[section])
    if s.max_per_source:
        pinned = Counter(x.source for x in kept if x.url in day.pins)
        for source, n in Counter(x.source for x in kept).items():
            assert n <= max(s.max_per_source, pinned[source])


@COMMON
@given(days())
def test_pins_are_always_present_and_blocked_never(day: Day) -> None:
    kept = {x.url for x in selected(rank(day.stories, now=NOW, settings=day.settings))}
    assert day.pins <= kept
    for story in day.stories:
        if story.url in day.pins:
            continue
        assert story.url not in day.blocked_urls or story.url not in kept
        if story.source.casefold() in day.blocked_sources:
            assert story.url not in kept
    leads = [p for p in day.settings.pins if p.position == 1]
    if leads:
        assert selected(rank(day.stories, now=NOW, settings=day.settings))[0].url == leads[0].url


@COMMON
@given(days(), st.data())
def test_same_input_same_output_whatever_the_input_order(day: Day, data: st.DataObject) -> None:
    first = rank(day.stories, now=NOW, settings=day.settings)
    assert rank(day.stories, now=NOW, settings=day.settings) == first
    shuffled = data.draw(st.permutations(day.stories))
    again = rank(shuffled, now=NOW, settings=day.settings)
    assert [(c.story.url, c.kept, c.position) for c in again if c.kept] == [
        (c.story.url, c.kept, c.position) for c in first if c.kept
    ]
    assert sorted((c.story.url, c.reason) for c in again) == sorted(
        (c.story.url, c.reason) for c in first
    )


@COMMON
@given(days())
def test_order_is_stable_and_grouped_by_section(day: Day) -> None:
    candidates = rank(day.stories, now=NOW, settings=day.settings)
    kept = [c for c in candidates if c.kept]
    assert [c.position for c in kept] == list(range(1, len(kept) + 1))
    assert all(c.position == 0 for c in candidates[len(kept) :])
    # After the lead, each section's stories are together, as the email shows them.
    sections = [c.story.section for c in kept[1:]]
    runs = [s for i, s in enumerate(sections) if i == 0 or sections[i - 1] != s]
    assert len(runs) == len(set(runs))
    # Every input story is accounted for exactly once.
    assert sorted(c.story.url for c in candidates) == sorted(s.url for s in day.stories)
