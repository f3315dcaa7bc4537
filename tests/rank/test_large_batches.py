"""Event grouping in a batch large enough for the shortlist (``SHORTLIST_FROM`` stories and
more, what `digest collect` over a thousand sources brings): planted events are still found
whole among thousands of unrelated headlines, eighty stories sharing one word (and nothing
else) stay apart, and the same headlines days apart (a batch spanning more than the window)
are two events."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from digest.models import Story
from digest.rank.cluster import group_events
from digest.rank.neighbours import SHORTLIST_FROM
from digest.rank.settings import RankingSettings

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
EVENTS = [
    ["Kestrelvania floods force 40,000 from homes", "Floods in Kestrelvania: 40,000 evacuated"],
    ["Orbisfield chipmaker Lumatrix cuts 2,300 jobs", "Lumatrix to cut 2,300 jobs at Orbisfield"],
    ["Zandoria election: Mirela Quost wins presidency", "Mirela Quost elected Zandoria president"],
    ["Halvorsen Prize goes to Ayodele Brantwick", "Ayodele Brantwick wins the Halvorsen Prize"],
]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghiklmnoprstuvwy") for _ in range(rng.randint(4, 9)))


def _batch(late_copy: bool) -> tuple[list[Story], list[list[int]]]:
    rng = random.Random(5)
    # Every background word used once: unrelated headlines share nothing by chance.
    vocabulary = sorted({_word(rng) for _ in range(40_000)})
    rng.shuffle(vocabulary)
    fresh = iter(vocabulary)
    stories: list[Story] = []

    def add(title: str, hours: float) -> int:
        n = len(stories)
        when = NOW - timedelta(hours=hours)
        url = f"https://site{n % 300}.example/{n}"
        stories.append(Story(url=url, title=title, teaser="", source=f"S{n % 300}", published=when))
        return n

    planted: list[list[int]] = []
    for event in EVENTS:
        ids = []
        for k in range(4):  # each event told four times, in its two wordings
            ids.append(add(event[k % 2], rng.uniform(0, 20)))
        planted.append(ids)
    # A crowd: eighty stories that share one common word and nothing else.
    for _ in range(80):
        add(f"Budget {' '.join(itertools.islice(fresh, 6))}", rng.uniform(0, 30))
    while len(stories) < SHORTLIST_FROM + 500:
        title = " ".join(itertools.islice(fresh, rng.randint(5, 9))).capitalize()
        add(title, rng.uniform(0, 30))
    if late_copy:  # the first event's headlines again, four days later
        planted.append([add(EVENTS[0][k % 2], -96 + k) for k in range(2)])
    return stories, planted


def _groups(stories: list[Story]) -> list[list[int]]:
    settings = RankingSettings()
    window = timedelta(hours=settings.event_window_hours)
    return group_events(stories, threshold=settings.events, window=window)


def test_planted_events_are_found_whole_among_thousands() -> None:
    stories, planted = _batch(late_copy=False)
    assert len(stories) >= SHORTLIST_FROM
    groups = _groups(stories)
    of = {i: g for g, members in enumerate(groups) for i in members}
    for ids in planted:
        assert len({of[i] for i in ids}) == 1, [stories[i].title for i in ids]
        assert len(groups[of[ids[0]]]) == len(ids)  # nothing else joined it
    assert len(groups) == len(stories) - sum(len(ids) - 1 for ids in planted)


def test_the_same_event_days_later_is_another_in_a_large_batch() -> None:
    stories, planted = _batch(late_copy=True)
    groups = _groups(stories)
    of = {i: g for g, members in enumerate(groups) for i in members}
    first, late = planted[0], planted[-1]
    assert len({of[i] for i in first}) == 1
    assert len({of[i] for i in late}) == 1
    assert of[first[0]] != of[late[0]]
