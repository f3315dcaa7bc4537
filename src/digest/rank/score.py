"""Pure ranking: score, filter, select, order and explain. ``now`` is always a parameter."""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.exceptions import RankError
from digest.gcpause import pausing
from digest.models import Candidate, Story
from digest.normalize import canonical_url
from digest.rank.dedupe import Deduped, dedupe
from digest.rank.settings import Pin, RankingSettings

FACTORS = ("recency", "source", "coverage", "section", "keywords")
"""The score is the product of these factors, in this order (see ``score``)."""


@dataclass(frozen=True, slots=True)
class Ranking:
    """Every candidate (kept ones first, in edition order) plus what the editor should know."""

    candidates: list[Candidate]
    warnings: list[str]
    thin_day: bool = False

    @property
    def stories(self) -> list[Story]:
        return selected(self.candidates)


def score(
    story: Story, *, now: datetime, settings: RankingSettings
) -> tuple[float, dict[str, float]]:
    """The product of FACTORS: recency halves every half-life, the rest are multipliers."""
    age_hours = max(0.0, (now - story.published).total_seconds() / 3600)
    half_life = settings.half_life_hours
    keywords = 1.0
    for rule in (*settings.boost, *settings.bury):
        if rule.matches(story):
            keywords *= rule.factor
    factors = {
        "recency": 0.5 ** (age_hours / half_life) if half_life > 0 else 1.0,
        "source": story.weight,
        # also_in lists the other sources that carried the same story (see digest.dedupe).
        "coverage": 1.0 + settings.coverage_weight * len(set(story.also_in) - {story.source}),
        "section": settings.section_weights.get(story.section.casefold(), 1.0),
        "keywords": keywords,
    }
    return math.prod(factors[f] for f in FACTORS), factors


def group(
    stories: Iterable[Story],
    *,
    settings: RankingSettings,
    keep: Collection[str] = (),
    apart: Collection[frozenset[str]] = (),
    joined: Collection[tuple[str, str]] = (),
    now: datetime | None = None,
) -> Deduped:
    """One story per URL, near-identical headline and event, as ``settings`` say (what
    ranking starts from and `digest collect` shows); see ``dedupe``. With ``now`` (ranking
    for an edition), events are grouped among the ``ranking.event_pool`` stories that score
    best before coverage; without it (`digest collect`), among every story."""
    priority = None
    if now is not None:

        def priority(story: Story) -> float:
            age_hours = (now - story.published).total_seconds() / 3600
            if age_hours > settings.max_age_hours or _blocked(story, settings):
                return -1.0  # never in the edition: no event to lead
            return score(story, now=now, settings=settings)[0]

    return dedupe(
        stories,
        threshold=settings.diversity,
        keep=keep,
        events=settings.events,
        window=timedelta(hours=settings.event_window_hours),
        apart=apart,
        joined=joined,
        pool=settings.event_pool if now is not None else 0,
        priority=priority,
    )


def _blocked(story: Story, settings: RankingSettings) -> str:
    if story.url in settings.block_urls:
        return "blocked: URL is in ranking.block_urls"
    if story.source.casefold() in settings.block_sources:
        return f"blocked: source {story.source!r} is in ranking.block_sources"
    for rule in settings.block_patterns:
        if rule.matches(story):
            return f"blocked: matches {rule.pattern!r} in ranking.block_patterns"
    return ""


def rank(
    stories: Iterable[Story],
    *,
    now: datetime,
    settings: RankingSettings,
    seen: set[str] | frozenset[str] = frozenset(),
    order: Sequence[str] = (),
) -> list[Candidate]:
    """Every candidate, kept ones first in edition order, with the reason; deterministic."""
    return choose(stories, now=now, settings=settings, seen=seen, order=order).candidates


@pausing
def choose(
    stories: Iterable[Story],
    *,
    now: datetime,
    settings: RankingSettings,
    seen: set[str] | frozenset[str] = frozenset(),
    order: Sequence[str] = (),
) -> Ranking:
    """Score, filter, select and order ``stories``; see the README's ranking section.

    ``order`` is the editor's manual order for this edition (canonical URLs): those stories
    are in, first, in that order, whatever their score. Config pins are in whatever their
    score, age or block; blocks beat everything else.
    """
    order = list(dict.fromkeys(canonical_url(u) for u in order))
    forced = {url: i for i, url in enumerate(order)}
    pins = {p.url: p for p in settings.pins if p.url not in forced}
    pool: list[Candidate] = []
    dropped: list[Candidate] = []
    urls: set[str] = set()
    # Deduplication happens here, once: by URL, then near-identical headlines merged into
    # one story whose also_in lists the other sources (the coverage factor counts them).
    unique = group(stories, settings=settings, keep={*forced, *pins}, now=now)
    for story, why in unique.dropped:
        value, factors = score(story, now=now, settings=settings)
        dropped.append(Candidate(story, value, factors, reason=why))
    for story in unique.stories:
        value, factors = score(story, now=now, settings=settings)
        urls.add(story.url)
        if story.url in forced or story.url in pins:
            pool.append(Candidate(story, value, factors))
            continue
        age_hours = (now - story.published).total_seconds() / 3600
        reason = _blocked(story, settings)
        if not reason and story.url in seen:
            reason = "already mailed in an earlier edition"
        if not reason and age_hours > settings.max_age_hours:
            reason = f"older than {settings.max_age_hours:g} h (ranking.max_age_hours)"
        # Built with its reason (dataclasses.replace costs more than the rest of the loop).
        (dropped if reason else pool).append(Candidate(story, value, factors, reason=reason))
    missing = [u for u in order if u not in urls]
    if missing:
        raise RankError(
            f"--order: {missing[0]} is not among today's stories; "
            "`digest preview --explain` lists them"
        )
    present = [u for u in pins if u in urls]
    if len(order) + len(present) > settings.max_stories:
        raise RankError(
            f"--order lists {len(order)} stories and ranking.pins {len(present)} more, "
            f"but ranking.max_stories is {settings.max_stories}"
        )
    warnings = [
        f"ranking.pins: {url} is not among today's stories, so it is not in the edition"
        for url in pins
        if url not in urls
    ]
    kept, rejected = _select(pool, forced, pins, settings)
    ordered = _arrange(kept, forced, pins, settings)
    position = {c.story.url: i for i, c in enumerate(ordered, start=1)}
    final = [replace(c, kept=True, position=position[c.story.url]) for c in ordered]
    thin = len(final) < settings.min_stories
    return Ranking(final + rejected + dropped, warnings, thin_day=thin)


def thin_day_message(count: int, settings: RankingSettings) -> str:
    """One line for the warnings: how thin, and what the policy does about it."""
    policy = settings.thin_day_policy
    does = "no edition is built" if policy == "skip" else "the edition goes out with a note"
    return (
        f"thin day: {count} stories, fewer than ranking.min_stories ({settings.min_stories}); "
        f"{does} (ranking.thin_day_policy: {policy})"
    )


def _by_score(c: Candidate) -> tuple[float, float, str]:
    # Ties break on recency then URL so the same input always gives the same edition.
    return (-c.score, -c.story.published.timestamp(), c.story.url)


def _select(
    pool: list[Candidate],
    forced: dict[str, int],
    pins: dict[str, Pin],
    settings: RankingSettings,
) -> tuple[list[tuple[Candidate, str]], list[Candidate]]:
    """Greedy by score: (kept, why) and dropped. Forced and pinned stories come in first."""
    kept: list[tuple[Candidate, str]] = []
    rejected: list[Candidate] = []
    per_source: Counter[str] = Counter()
    per_section: Counter[str] = Counter()

    def take(c: Candidate, why: str) -> None:
        kept.append((c, why))
        per_source[c.story.source.casefold()] += 1
        per_section[c.story.section.casefold()] += 1

    first = sorted(
        (c for c in pool if c.story.url in forced or c.story.url in pins),
        key=lambda c: (forced.get(c.story.url, len(forced)), _by_score(c)),
    )
    for c in first:
        if c.story.url in forced:
            take(c, f"kept: editor's order, place {forced[c.story.url] + 1}")
        else:
            take(c, _pin_reason(pins[c.story.url], c, settings))
    rest = sorted(
        (c for c in pool if c.story.url not in forced and c.story.url not in pins), key=_by_score
    )
    for c in _breadth_first(rest, per_source):
        reason = _why_not(c, len(kept), per_source, per_section, settings)
        if reason:
            rejected.append(Candidate(c.story, c.score, c.factors, reason=reason))
        else:
            take(c, "kept: score")
    return kept, rejected


def _pin_reason(pin: Pin, c: Candidate, settings: RankingSettings) -> str:
    where = f" at position {pin.position}" if pin.position else ""
    overrides = _blocked(c.story, settings)
    note = f" (overrides {overrides.removeprefix('blocked: ')})" if overrides else ""
    return f"kept: pinned{where} in ranking.pins{note}"


def _breadth_first(ranked: list[Candidate], per_source: Counter[str]) -> Iterable[Candidate]:
    """Score order; among equal scores, the source with the fewest stories so far goes first.

    ``per_source`` is live (the caller updates it as it keeps stories), so breadth reflects
    what was actually kept. A heap keyed by (stories so far, position) replaces a scan of
    the whole group per pick: counts only grow, so a stale key is a lower bound, and an
    entry is re-pushed with its current count when it surfaces (the same order as a scan).
    """
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j].score == ranked[i].score:
            j += 1
        group = ranked[i:j]
        heap = [(per_source[c.story.source.casefold()], k) for k, c in enumerate(group)]
        heapq.heapify(heap)
        while heap:
            count, k = heapq.heappop(heap)
            now = per_source[group[k].story.source.casefold()]
            if now != count:
                heapq.heappush(heap, (now, k))
                continue
            yield group[k]
        i = j


def _why_not(
    c: Candidate,
    total: int,
    per_source: Counter[str],
    per_section: Counter[str],
    settings: RankingSettings,
) -> str:
    source = c.story.source.casefold()
    if settings.max_per_source and per_source[source] >= settings.max_per_source:
        return f"already {settings.max_per_source} from {c.story.source} (ranking.max_per_source)"
    section = c.story.section.casefold()
    quota = settings.section_quotas.get(section)
    if quota is not None and per_section[section] >= quota:
        label = c.story.section or "(no section)"
        return f"section {label} is full: {quota} (ranking.section_quotas)"
    if total >= settings.max_stories:
        return f"over the limit of {settings.max_stories} stories (ranking.max_stories)"
    return ""


def _arrange(
    kept: list[tuple[Candidate, str]],
    forced: dict[str, int],
    pins: dict[str, Pin],
    settings: RankingSettings,
) -> list[Candidate]:
    """The edition's running order, grouped by section as the email shows it.

    The lead is the best score; then sections in ``section_order``, then the others by
    their best story, each by score. Pins with a position are put there, the editor's
    order goes first, and the rest is regrouped by section (first appearance wins).
    """
    why = {c.story.url: reason for c, reason in kept}
    flexible = sorted(
        (c for c, _ in kept if c.story.url not in forced and not _placed(c, pins)), key=_by_score
    )
    running: list[Candidate] = []
    if flexible:
        lead, rest = flexible[0], flexible[1:]
        rank_of = {s.casefold(): i for i, s in enumerate(settings.section_order)}
        first_seen: dict[str, int] = {}
        for i, c in enumerate(rest):
            first_seen.setdefault(c.story.section.casefold(), i)

        def section_key(c: Candidate) -> tuple[int, int]:
            sec = c.story.section.casefold()
            return (rank_of.get(sec, len(rank_of)), first_seen[sec])

        running = [lead, *sorted(rest, key=section_key)]  # sorted() is stable: score order
    placed = sorted(
        (c for c, _ in kept if _placed(c, pins) and c.story.url not in forced),
        key=lambda c: pins[c.story.url].position,
    )
    for c in placed:
        running.insert(min(pins[c.story.url].position - 1, len(running)), c)
    editor = sorted(
        (c for c, _ in kept if c.story.url in forced), key=lambda c: forced[c.story.url]
    )
    running = editor + running
    if len(running) > 1:
        first, rest = running[0], running[1:]
        groups: dict[str, list[Candidate]] = {}
        for c in rest:
            groups.setdefault(c.story.section, []).append(c)
        running = [first, *(c for group in groups.values() for c in group)]
    lead_url = running[0].story.url if running else ""
    return [
        replace(c, reason=why[c.story.url] + ("; lead" if c.story.url == lead_url else ""))
        for c in running
    ]


def _placed(c: Candidate, pins: dict[str, Pin]) -> bool:
    pin = pins.get(c.story.url)
    return pin is not None and pin.position > 0


def selected(candidates: Sequence[Candidate]) -> list[Story]:
    """The kept stories in edition order (the lead first)."""
    return [c.story for c in sorted((c for c in candidates if c.kept), key=lambda c: c.position)]
