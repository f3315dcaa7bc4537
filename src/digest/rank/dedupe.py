"""Pure deduplication for ranking: one story per URL, then near-identical headlines merged.

The one near-duplicate rule: two headlines are near-identical when their word sets (see
``normalize.headline_words``) have a Jaccard similarity of at least ``threshold``
(``ranking.diversity``). Stories are taken in one canonical order (pinned first, then by
weight, recency, URL and source), so the result does not depend on the input's order: the
first story of a group is the one kept, its ``also_in`` gathers every other source of the
group (what the coverage factor counts), and the kept stories are never near-identical to
each other.

Candidates come from an index, so thousands of stories cost little: with a global order
of words from rarest to commonest, two sets sharing at least ``o`` words share at least
``k`` words among their first ``n - o + k`` (prefix filtering, generalised to ``k``), and
a set of ``n`` words can only match sets sharing ``ceil(threshold * n)`` of its words.
Asking for two shared prefix words instead of one leaves almost no false candidates.

Last, stories about the same real-world event are grouped (``ranking.events``, see
``digest.rank.cluster``): the group's first story in the canonical order leads it, and its
``coverage`` lists the others (title, URL, source, time), for the email and `collect --json`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import chain

from digest.models import Coverage, Story
from digest.normalize import headline_words
from digest.rank.cluster import group_events

SHARED = 2  # prefix words two candidate sets must share (when both are long enough)


@dataclass(frozen=True, slots=True)
class Deduped:
    """The stories kept (first positions, ``also_in`` filled) and each dropped one's reason."""

    stories: list[Story]
    dropped: list[tuple[Story, str]]


def dedupe(
    stories: Iterable[Story],
    *,
    threshold: float,
    keep: Collection[str] = (),
    events: float = 0.0,
    window: timedelta = timedelta(hours=48),
    apart: Collection[frozenset[str]] = (),
    joined: Collection[tuple[str, str]] = (),
    pool: int = 0,
    priority: Callable[[Story], float] | None = None,
) -> Deduped:
    """One story per URL, then one per group of near-identical headlines (``threshold`` 0:
    no headline merging), then one per event (``events`` 0: no grouping; stories more than
    ``window`` apart never group). Stories whose URL is in ``keep`` (pins, the editor's
    order) are never merged away, and two of them are never merged together. Each set of
    URLs in ``apart`` (an editor's split) is never grouped with the stories outside it; the
    events of the two URLs of a pair in ``joined`` (an editor's merge) are one.

    ``pool`` (0: all) bounds the event grouping to that many stories, the highest by
    ``priority`` (else the canonical order), plus every kept, split or merged one: a day of
    a thousand sources has twenty thousand stories, and only the best placed can lead an
    edition or be worth listing as coverage."""
    ordered = sorted(stories, key=lambda s: _rank(s, keep))
    unique, dropped = _groups(ordered, lambda s: s.url, "duplicate URL", keep)
    if threshold > 0:
        index = _HeadlineIndex(unique, threshold, keep)
        unique, near = _groups(unique, index.group, "", keep)
        dropped += near
    if (events > 0 or joined) and len(unique) > 1:
        members, rest = _pool(unique, pool, priority, keep, apart, joined)
        found = group_events(
            members, threshold=events, window=window, keep=keep, apart=apart, joined=joined
        )
        label = {i: g for g, members_of in enumerate(found) for i in members_of}
        position = {id(s): i for i, s in enumerate(members)}
        grouped, same = _groups(
            members, lambda s: label[position[id(s)]], "same event as {} (ranking.events)", keep
        )
        unique = sorted([*grouped, *rest], key=lambda s: _rank(s, keep)) if rest else grouped
        dropped += same
    return Deduped(unique, dropped)


def _pool(
    unique: list[Story],
    size: int,
    priority: Callable[[Story], float] | None,
    keep: Collection[str],
    apart: Collection[frozenset[str]],
    joined: Collection[tuple[str, str]],
) -> tuple[list[Story], list[Story]]:
    """The stories event grouping looks at (at most ``size`` by ``priority``, plus every
    story an editor named), and the rest, left as they are."""
    if not size or len(unique) <= size:
        return unique, []
    named = set(keep) | {u for urls in apart for u in urls} | {u for pair in joined for u in pair}
    order = sorted(range(len(unique)), key=lambda i: -priority(unique[i])) if priority else None
    chosen = set(order[:size] if order is not None else range(size))
    members = [s for i, s in enumerate(unique) if i in chosen or s.url in named]
    rest = [s for i, s in enumerate(unique) if not (i in chosen or s.url in named)]
    return members, rest


def _rank(story: Story, keep: Collection[str]) -> tuple[bool, float, float, str, str, str]:
    return (
        story.url not in keep,
        -story.weight,
        -story.published.timestamp(),
        story.url,
        story.source,
        story.title,
    )


def _groups(
    ordered: Sequence[Story],
    key: Callable[[Story], Hashable],
    why: str,
    keep: Collection[str],
) -> tuple[list[Story], list[tuple[Story, str]]]:
    """Group ``ordered`` by ``key`` (the group's first story keeps it); the first of each
    group kept with the others' sources in ``also_in``, the others dropped with ``why``."""
    groups: dict[Hashable, list[Story]] = {}
    for story in ordered:
        groups.setdefault(key(story), []).append(story)
    kept: list[Story] = []
    dropped: list[tuple[Story, str]] = []
    for group in groups.values():
        best = group[0]
        if len(group) == 1:
            kept.append(best)
            continue
        kept.append(_with_also(best, group))
        reason = (
            why.format(best.url) or f"near-identical headline to {best.url} (ranking.diversity)"
        )
        dropped.extend((s, reason) for s in group[1:])
    return kept, dropped


class _HeadlineIndex:
    """Assigns each story, in order, to the first earlier group whose founder's headline
    is near-identical to its own, else to a new group of its own."""

    def __init__(self, stories: Sequence[Story], threshold: float, keep: Collection[str]):
        self._threshold = threshold
        self._keep = keep
        self._sets = {id(s): headline_words(s.title) for s in stories}
        freq = Counter(chain.from_iterable(self._sets.values()))
        # The global order, rarest first: every set's prefix is taken in this order.
        self._rank = {w: i for i, w in enumerate(sorted(freq, key=lambda w: (freq[w], w)))}
        self._founders: list[tuple[frozenset[str], bool]] = []  # words, pinned
        self._index: dict[str, list[int]] = {}

    def group(self, story: Story) -> int:
        mine = self._sets[id(story)]
        pinned = story.url in self._keep
        need = max(1, math.ceil(self._threshold * len(mine) - 1e-9))
        shared = SHARED if need >= SHARED else 1
        prefix = sorted(mine, key=self._rank.__getitem__)[: len(mine) - need + shared]
        target = self._match(mine, prefix, shared, pinned) if mine else None
        if target is None:
            target = len(self._founders)
            self._founders.append((mine, pinned))
            for w in prefix:
                self._index.setdefault(w, []).append(target)
        return target

    def _match(
        self, mine: frozenset[str], prefix: list[str], shared: int, pinned: bool
    ) -> int | None:
        lists = [self._index[w] for w in prefix if w in self._index]
        if len(lists) < shared:
            return None
        # A founder is in each of its prefix words' lists once: counting its appearances
        # (in C) finds those sharing ``shared`` prefix words with this headline.
        counts = Counter(chain.from_iterable(lists))
        candidates = [i for i, n in counts.items() if n >= shared]
        for i in sorted(candidates):
            theirs, founder_pinned = self._founders[i]
            if pinned and founder_pinned:
                continue  # two pinned stories both stay, however alike
            if len(mine & theirs) >= self._threshold * len(mine | theirs):
                return i
        return None


def _with_also(story: Story, group: Sequence[Story]) -> Story:
    """``story`` with the others' sources in ``also_in`` and their stories in ``coverage``
    (a story with the lead's own URL is the same page, not more coverage)."""
    extra: list[str] = []
    for name in (n for s in group for n in (s.source, *s.also_in)):
        if name != story.source and name not in story.also_in and name not in extra:
            extra.append(name)
    seen = {story.url, *(c.url for c in story.coverage)}
    more: list[Coverage] = []
    for other in group[1:]:
        for c in (Coverage(other.source, other.url, other.title, other.published), *other.coverage):
            if c.url not in seen:
                seen.add(c.url)
                more.append(c)
    if not extra and not more:
        return story
    return dataclasses.replace(
        story, also_in=story.also_in + tuple(extra), coverage=story.coverage + tuple(more)
    )
