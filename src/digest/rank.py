"""Pure ranking: dedupe, score, select and explain. ``now`` is always a parameter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.config import RankingSettings
from digest.models import Story


@dataclass(frozen=True, slots=True)
class Candidate:
    """A story with its score, the factors behind it, and why it was kept or dropped."""

    story: Story
    score: float
    factors: dict[str, float] = field(default_factory=dict)
    kept: bool = False
    reason: str = ""


def score(story: Story, *, now: datetime, half_life_hours: float) -> tuple[float, dict[str, float]]:
    """Recency halves every ``half_life_hours``; the source weight multiplies it."""
    age_hours = max(0.0, (now - story.published).total_seconds() / 3600)
    recency = 0.5 ** (age_hours / half_life_hours) if half_life_hours > 0 else 1.0
    factors = {"recency": round(recency, 6), "weight": story.weight}
    return recency * story.weight, factors


def rank(
    stories: Iterable[Story],
    *,
    now: datetime,
    settings: RankingSettings,
    seen: set[str] | frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Every candidate, best first, with kept/dropped and the reason; deterministic."""
    scored: list[Candidate] = []
    dropped: list[Candidate] = []
    urls: set[str] = set()
    for story in stories:
        value, factors = score(story, now=now, half_life_hours=settings.half_life_hours)
        age_hours = (now - story.published).total_seconds() / 3600
        reason = ""
        if story.url in urls:
            reason = "duplicate URL"
        elif story.url in seen:
            reason = "already mailed in an earlier edition"
        elif age_hours > settings.max_age_hours:
            reason = f"older than {settings.max_age_hours:g} h"
        urls.add(story.url)
        candidate = Candidate(story, value, factors, kept=False, reason=reason)
        (dropped if reason else scored).append(candidate)
    # Ties break on recency then URL so the same input always gives the same edition.
    scored.sort(key=lambda c: (-c.score, -c.story.published.timestamp(), c.story.url))
    out: list[Candidate] = []
    for i, c in enumerate(scored):
        keep = i < settings.max_stories
        reason = f"rank {i + 1}" if keep else f"over the limit of {settings.max_stories}"
        out.append(Candidate(c.story, c.score, c.factors, kept=keep, reason=reason))
    return out + dropped


def selected(candidates: Sequence[Candidate]) -> list[Story]:
    return [c.story for c in candidates if c.kept]
