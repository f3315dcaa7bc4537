"""Run every source concurrently and gather their stories; a failing source only warns."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from digest.exceptions import SourceError
from digest.http import Fetcher
from digest.models import Story
from digest.sources.base import Fetched, Source


@dataclass(frozen=True, slots=True)
class CollectResult:
    """Stories in source order then item order, deduplicated by canonical URL."""

    stories: list[Story]
    warnings: list[str]  # one line each: "source <name>: <reason>"
    failed: list[str]  # names of the sources that produced nothing because they failed


@dataclass(frozen=True, slots=True)
class _Outcome:
    stories: list[Story]
    error: str = ""


def collect(
    sources: Sequence[Source],
    fetcher: Fetcher,
    *,
    now: datetime,
    max_workers: int = 8,
) -> CollectResult:
    """Fetch and parse every source; an unreachable or broken source becomes a warning."""
    if not sources:
        return CollectResult(stories=[], warnings=[], failed=[])
    workers = max(1, min(max_workers, len(sources)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digest-collect") as pool:
        # map() keeps the sources' order, whatever order they finish in.
        outcomes = list(pool.map(lambda s: _run(s, fetcher, now), sources))
    warnings: list[str] = []
    failed: list[str] = []
    batches: list[list[Story]] = []
    for source, outcome in zip(sources, outcomes, strict=True):
        if outcome.error:
            warnings.append(f"source {source.name}: {outcome.error}")
            failed.append(source.name)
        batches.append(outcome.stories)
    return CollectResult(stories=dedupe(batches), warnings=warnings, failed=failed)


def _run(source: Source, fetcher: Fetcher, now: datetime) -> _Outcome:
    # A fetch cache (conditional GET, 304 -> cached stories) slots in here later.
    try:
        response = fetcher.fetch(source.url, allow_private=source.allow_private)
        fetched = Fetched(
            url=response.url,
            body=response.body,
            headers=response.headers,
            fetched_at=now,
            status=response.status,
        )
        return _Outcome(stories=source.parse(fetched))
    except SourceError as exc:  # FetchError included
        return _Outcome(stories=[], error=_reason(source, exc))
    except Exception as exc:  # a third-party source kind's bug must not stop the edition
        return _Outcome(
            stories=[], error=f"unexpected {type(exc).__name__}: {_reason(source, exc)}"
        )


def _reason(source: Source, exc: Exception) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"{source.name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def dedupe(batches: Sequence[Sequence[Story]]) -> list[Story]:
    """One story per URL, at the first one's position; the highest weight (then first) wins.

    The winner's ``also_in`` lists the other sources that carried the same URL.
    """
    order: list[str] = []
    best: dict[str, Story] = {}
    others: dict[str, list[str]] = {}
    for batch in batches:
        for story in batch:
            current = best.get(story.url)
            if current is None:
                order.append(story.url)
                best[story.url] = story
                others[story.url] = []
                continue
            loser = story
            if story.weight > current.weight:
                best[story.url], loser = story, current
            if loser.source not in others[story.url]:
                others[story.url].append(loser.source)
    result = []
    for url in order:
        story = best[url]
        extra = tuple(s for s in others[url] if s != story.source and s not in story.also_in)
        result.append(dataclasses.replace(story, also_in=story.also_in + extra) if extra else story)
    return result
