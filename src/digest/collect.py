"""Run every source concurrently and gather their stories; a failing source only warns."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from digest.exceptions import SourceError
from digest.http import Fetcher, FetchSettings
from digest.models import Story
from digest.normalize import headline_words
from digest.sources.base import Fetched, Source
from digest.sources.detect import AutoSource
from digest.store.sources import CacheEntry, Health, Outcome, SourceState

# Headlines of at least this many words sharing this share of them are one story.
NEAR_DUPLICATE_MIN_WORDS = 4
NEAR_DUPLICATE_JACCARD = 0.7
# Told (from a worker thread) as each source finishes: its name and "N stories" or the error.
Progress = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class CollectResult:
    """Stories in source order then item order, deduplicated by URL and by near headline."""

    stories: list[Story]
    warnings: list[str]  # one line each: "source <name>: <reason>"
    failed: list[str]  # names of the sources that produced nothing because they failed
    not_modified: list[str] = field(default_factory=list)  # answered 304 from the cache
    parsed: list[str] = field(default_factory=list)  # sources whose body was parsed this run
    alerts: list[str] = field(default_factory=list)  # sources failing too often (also warned)
    health: dict[str, Health] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Run:
    stories: list[Story]
    error: str = ""
    parsed: bool = False
    not_modified: bool = False
    cache: CacheEntry | None = None


def collect(
    sources: Sequence[Source],
    fetcher: Fetcher,
    *,
    now: datetime,
    max_workers: int = 8,
    state: SourceState | None = None,
    failure_alert: int = 0,
    progress: Progress | None = None,
) -> CollectResult:
    """Fetch and parse every source; an unreachable or broken source becomes a warning.

    With ``state``, requests are conditional on the validators of the last full response,
    a 304 reuses that response's stories without parsing, and each source's health is
    recorded; a source failing ``failure_alert`` (> 0) runs in a row adds an alert warning.
    """
    if not sources:
        return CollectResult(stories=[], warnings=[], failed=[])
    prints = {s.name: fingerprint(s) for s in sources}
    cached = {
        name: entry
        for name, entry in (state.cache(prints) if state else {}).items()
        if entry.fingerprint == prints[name]
    }
    workers = max(1, min(max_workers, len(sources)))

    def one(source: Source) -> _Run:
        run = _run(source, fetcher, now, cached.get(source.name), prints[source.name])
        if progress is not None:
            progress(source.name, run.error or f"{len(run.stories)} stories")
        return run

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digest-collect") as pool:
        # map() keeps the sources' order, whatever order they finish in.
        runs = list(pool.map(one, sources))
    pairs = list(zip(sources, runs, strict=True))
    warnings = [f"source {s.name}: {r.error}" for s, r in pairs if r.error]
    health: dict[str, Health] = {}
    alerts: list[str] = []
    if state is not None:
        health = state.record(
            (
                Outcome(
                    s.name, s.url, not r.error, r.error, len(r.stories), r.cache, r.not_modified
                )
                for s, r in pairs
            ),
            now=now,
        )
        for s in sources:
            h = health[s.name]
            if failure_alert > 0 and h.consecutive_failures >= failure_alert:
                since = f"{h.last_success:%Y-%m-%d %H:%M} UTC" if h.last_success else "never"
                alerts.append(
                    f"source {s.name}: ALERT: failed {h.consecutive_failures} runs in a row"
                    f" (last success: {since}); fix its URL or remove it"
                )
    return CollectResult(
        stories=merge_near_duplicates(dedupe([r.stories for r in runs])),
        warnings=warnings + alerts,
        failed=[s.name for s, r in pairs if r.error],
        not_modified=[s.name for s, r in pairs if r.not_modified],
        parsed=[s.name for s, r in pairs if r.parsed],
        alerts=alerts,
        health=health,
    )


def collect_urls(
    urls: Sequence[str],
    *,
    now: datetime,
    allow_private: bool = False,
    fetcher: Fetcher | None = None,
) -> CollectResult:
    """Collect from bare URLs with no config: each URL's kind is detected from its response.

    Sources are named after the URL without its scheme; nothing is cached or recorded.
    """
    names: list[str] = []
    for url in urls:
        name = url.split("://", 1)[-1].rstrip("/") or url
        while name in names:
            name += "'"
        names.append(name)
    sources = [
        AutoSource(name=n, url=u, allow_private=allow_private)
        for n, u in zip(names, urls, strict=True)
    ]
    if fetcher is not None:
        return collect(sources, fetcher, now=now)
    settings = FetchSettings()
    with Fetcher(settings=settings) as own:
        return collect(sources, own, now=now, max_workers=settings.concurrency)


def fingerprint(source: Source) -> str:
    """What a source's stories depend on besides the body; a change invalidates its cache."""
    return json.dumps(
        {
            "kind": f"{type(source).__module__}.{type(source).__qualname__}",
            "url": source.url,
            "weight": source.weight,
            "section": source.section,
            "max_items": source.max_items,
            "teaser_length": source.teaser_length,
            "include": [p.pattern for p in source.include],
            "exclude": [p.pattern for p in source.exclude],
            "options": source.extra,
        },
        sort_keys=True,
        default=str,
    )


def _run(
    source: Source, fetcher: Fetcher, now: datetime, cached: CacheEntry | None, print_: str
) -> _Run:
    try:
        response = fetcher.fetch(
            source.url,
            allow_private=source.allow_private,
            etag=cached.etag if cached else None,
            last_modified=cached.last_modified if cached else None,
        )
        if response.status == 304:
            if cached is None:
                raise SourceError(f"{source.url}: HTTP 304 to a request that was not conditional")
            return _Run(stories=list(cached.stories), not_modified=True)
        fetched = Fetched(
            url=response.url,
            body=response.body,
            headers=response.headers,
            fetched_at=now,
            status=response.status,
        )
        stories = source.parse(fetched)
        etag = response.headers.get("etag", "")
        modified = response.headers.get("last-modified", "")
        entry = CacheEntry(print_, etag, modified, tuple(stories)) if etag or modified else None
        return _Run(stories=stories, parsed=True, cache=entry)
    except SourceError as exc:  # FetchError included
        return _Run(stories=[], error=_reason(source, exc))
    except Exception as exc:  # a third-party source kind's bug must not stop the edition
        return _Run(stories=[], error=f"unexpected {type(exc).__name__}: {_reason(source, exc)}")


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
    return [_with_also(best[url], others[url]) for url in order]


def merge_near_duplicates(stories: Sequence[Story]) -> list[Story]:
    """Collapse stories from different sources whose headlines share most of their words.

    The first one's position is kept; the highest weight (then first) wins, and ``also_in``
    gathers every other source. Candidates are found by prefix filtering (two word sets
    with Jaccard >= t share one of their rarest ``n - ceil(t * n) + 1`` words), so this
    stays fast for thousands of stories.
    """
    sets = [headline_words(s.title) for s in stories]
    freq = Counter(w for ws in sets for w in ws)
    groups: list[list[Story]] = []
    words: list[frozenset[str]] = []
    index: dict[str, list[int]] = {}
    for story, mine in zip(stories, sets, strict=True):
        target = None
        prefix: list[str] = []
        if len(mine) >= NEAR_DUPLICATE_MIN_WORDS:
            rare = sorted(mine, key=lambda w: (freq[w], w))
            prefix = rare[: len(mine) - math.ceil(NEAR_DUPLICATE_JACCARD * len(mine) - 1e-9) + 1]
            for i in sorted({i for w in prefix for i in index.get(w, ())}):
                theirs = words[i]
                if any(s.source == story.source for s in groups[i]):
                    continue  # one source's own similar headlines are separate stories
                if len(mine & theirs) / len(mine | theirs) >= NEAR_DUPLICATE_JACCARD:
                    target = i
                    break
        if target is None:
            groups.append([story])
            words.append(mine)
            for w in prefix:
                index.setdefault(w, []).append(len(groups) - 1)
        else:
            groups[target].append(story)
    result = []
    for group in groups:
        best = max(group, key=lambda s: s.weight)  # max() keeps the first of equal weights
        result.append(_with_also(best, [n for s in group for n in (s.source, *s.also_in)]))
    return result


def _with_also(story: Story, sources: Sequence[str]) -> Story:
    extra: list[str] = []
    for name in sources:
        if name != story.source and name not in story.also_in and name not in extra:
            extra.append(name)
    return dataclasses.replace(story, also_in=story.also_in + tuple(extra)) if extra else story
