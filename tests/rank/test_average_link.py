"""The vectorised rounds of average-link agglomeration merge exactly what the one-at-a-time
heap merges: on generated similarity graphs, with pinned items and editors' splits, and on
the shapes where a wrong shortcut would show (a chain, a group that outgrows a pair)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.models import Story
from digest.rank.cluster import average_link, group_events


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, dict[tuple[int, int], float], list[bool], list[int]]:
    n = draw(st.integers(2, 30))
    pair = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1])
    # Similarities from a few values: ties between pairs are common, as in real batches.
    values = st.sampled_from([0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.9, 1.0])
    pairs = draw(st.dictionaries(pair, values, max_size=80))
    pinned = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    sides = draw(st.lists(st.sampled_from([-1, -1, -1, 0, 1]), min_size=n, max_size=n))
    return n, pairs, pinned, sides


@settings(max_examples=300, deadline=None)
@given(graphs(), st.sampled_from([0.15, 0.3, 0.5]))
def test_rounds_merge_what_the_heap_merges(
    graph: tuple[int, dict[tuple[int, int], float], list[bool], list[int]], threshold: float
) -> None:
    n, pairs, pinned, sides = graph
    # round_merges=1: rounds while any pair is mutually best; n + 1: the heap alone.
    rounds = average_link(n, pairs, threshold, pinned=pinned, sides=sides, round_merges=1)
    heap = average_link(n, pairs, threshold, pinned=pinned, sides=sides, round_merges=n + 1)
    assert rounds == heap
    assert sorted(i for group in rounds for i in group) == list(range(n))


def test_a_chain_of_likenesses_does_not_become_one_group() -> None:
    # 0-1 and 2-3 are mutual best pairs; 1-2 is the only link between them.
    pairs = {(0, 1): 0.9, (1, 2): 0.5, (2, 3): 0.9}
    got = average_link(4, pairs, 0.3, pinned=[False] * 4, sides=[-1] * 4, round_merges=1)
    assert got == [[0, 1], [2, 3]]


def test_a_third_story_joins_a_pair_when_it_resembles_both() -> None:
    pairs = {(0, 2): 0.9, (1, 2): 0.6, (0, 1): 0.5, (3, 4): 0.2}
    got = average_link(5, pairs, 0.4, pinned=[False] * 5, sides=[-1] * 5, round_merges=1)
    assert got == [[0, 1, 2], [3], [4]]


def test_pinned_stories_and_split_sides_never_merge_in_a_round() -> None:
    pairs = {(0, 1): 0.9, (2, 3): 0.9, (4, 5): 0.9}
    got = average_link(
        6, pairs, 0.3, pinned=[True, True, False, False, False, False], sides=[-1, -1, 0, 1, 0, 0]
    )
    assert got == [[0], [1], [2], [3], [4, 5]]


def test_a_title_holding_the_joining_character_still_groups() -> None:
    # Titles are tokenised joined by NUL; one that holds a NUL itself must not shift them.
    when = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    titles = [
        "Volcano erupts near Reykjavik\x00 airport closed",
        "Reykjavik airport closed as volcano erupts",
        "Central bank raises interest rates again",
    ]
    stories = [
        Story(url=f"https://news.example/{k}", title=t, teaser="", source=f"S{k}", published=when)
        for k, t in enumerate(titles)
    ]
    assert group_events(stories, threshold=0.14, window=timedelta(hours=48)) == [[0, 1], [2]]
