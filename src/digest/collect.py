"""Run every source concurrently under one deadline and gather their stories, un-merged.

A failing or late source only warns; deduplication happens once, in ranking
(digest.dedupe).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from digest.exceptions import DeadlineExceeded, SourceError
from digest.gcpause import fresh_only
from digest.http import Fetcher, FetchSettings
from digest.models import Story
from digest.normalize import untrusted_story
from digest.sources.base import Fetched, Source
from digest.sources.detect import AutoSource
from digest.store.sources import CacheEntry, Health, Outcome, SourceState

# How long past the deadline collect() waits for a source that is still parsing (fetches
# themselves end by the deadline) before it gives up on it.
MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class CollectProgress:
    """Where a collect run is: sent once at the start, after each source, and at the end."""

    total: int
    done: int
    pending: tuple[str, ...]  # sources still running or queued, in source order
    finished: str = ""  # the source that just finished ("" at the start and at the end)
    late: tuple[str, ...] = ()  # at the end: sources given up on at the deadline
    outcome: str = ""  # for ``finished``: "12 stories", "not modified" or the error


ProgressCallback = Callable[[CollectProgress], None]


@dataclass(frozen=True, slots=True)
class CollectResult:
    """Stories in source order then item order, as the sources gave them (not deduplicated:
    ranking does that once)."""

    stories: list[Story]
    warnings: list[str]  # one line each: "source <name>: <reason>"
    failed: list[str]  # names of the sources that produced nothing because they failed
    not_modified: list[str] = field(default_factory=list)  # answered 304 from the cache
    parsed: list[str] = field(default_factory=list)  # sources whose body was parsed this run
    alerts: list[str] = field(default_factory=list)  # sources failing too often (also warned)
    health: dict[str, Health] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)  # no answer within the deadline (failed too)


@dataclass(frozen=True, slots=True)
class _Run:
    stories: list[Story]
    error: str = ""
    parsed: bool = False
    not_modified: bool = False
    cache: CacheEntry | None = None
    late: bool = False
    fallbacks: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def collect(
    sources: Sequence[Source],
    fetcher: Fetcher,
    *,
    now: datetime,
    max_workers: int = 8,
    state: SourceState | None = None,
    failure_alert: int = 0,
    deadline: float | None = None,
    progress: ProgressCallback | None = None,
) -> CollectResult:
    """Fetch and parse every source; an unreachable, broken or late source becomes a warning.

    Every source must be done within ``deadline`` seconds (default: the fetcher's
    ``settings.deadline``) of the start, queueing included, so the run ends by then (plus
    MARGIN for a source still parsing) whatever the servers do. With ``state``, requests
    are conditional on the validators of the last full response, a 304 reuses that
    response's stories without parsing, and each source's health is recorded; a source
    failing ``failure_alert`` (> 0) runs in a row adds an alert warning. ``progress`` is
    called from this thread as sources finish.
    """
    if not sources:
        return CollectResult(stories=[], warnings=[], failed=[])
    limit = fetcher.settings.deadline if deadline is None else deadline
    ends = time.monotonic() + limit
    prints = {s.name: fingerprint(s) for s in sources}
    cached = {
        name: entry
        for name, entry in (state.cache(prints) if state else {}).items()
        if entry.fingerprint == prints[name]
    }
    # Full collections would walk the cache just read, and whatever the caller holds,
    # on every pass while a thousand requests make their small garbage.
    with fresh_only():
        runs = _run_all(sources, fetcher, now, cached, prints, ends, limit, max_workers, progress)
    pairs = list(zip(sources, runs, strict=True))
    warnings = [f"source {s.name}: {r.error}" for s, r in pairs if r.error]
    warnings += [f"source {s.name}: {w}" for s, r in pairs for w in r.warnings]
    health: dict[str, Health] = {}
    alerts: list[str] = []
    if state is not None:
        health = state.record(
            (
                Outcome(
                    s.name,
                    s.url,
                    not r.error,
                    r.error,
                    len(r.stories),
                    r.cache,
                    r.not_modified,
                    r.fallbacks,
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
        # Every source kind's stories, cached ones too, pass the same last guard.
        stories=[untrusted_story(story) for r in runs for story in r.stories],
        warnings=warnings + alerts,
        failed=[s.name for s, r in pairs if r.error],
        not_modified=[s.name for s, r in pairs if r.not_modified],
        parsed=[s.name for s, r in pairs if r.parsed],
        alerts=alerts,
        health=health,
        late=[s.name for s, r in pairs if r.late],
    )


def _run_all(
    sources: Sequence[Source],
    fetcher: Fetcher,
    now: datetime,
    cached: dict[str, CacheEntry],
    prints: dict[str, str],
    ends: float,
    limit: float,
    max_workers: int,
    progress: ProgressCallback | None,
) -> list[_Run]:
    """Each source's run, in source order; those not done by the deadline count as late."""
    total = len(sources)
    late_run = _Run(stories=[], error=f"no answer within {limit:g} s", late=True)
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(max_workers, total)), thread_name_prefix="digest-collect"
    )
    futures: dict[Future[_Run], int] = {}
    for i in _by_host(sources):
        s = sources[i]
        job = pool.submit(_run, s, fetcher, now, cached.get(s.name), prints[s.name], ends, limit)
        futures[job] = i
    runs: list[_Run | None] = [None] * total
    waiting = set(futures)

    def report(finished: str = "", late: tuple[str, ...] = (), outcome: str = "") -> None:
        if progress is not None:
            pending = tuple(
                sources[futures[f]].name for f in sorted(waiting, key=futures.__getitem__)
            )
            done = total - len(waiting)
            progress(CollectProgress(total, done, pending, finished, late, outcome))

    report()
    try:
        # as_completed waits on every future once (wait() in a loop would re-register
        # on all of them per call: quadratic for a thousand sources).
        for f in as_completed(futures, timeout=max(0.0, ends + MARGIN - time.monotonic())):
            waiting.discard(f)
            run = runs[futures[f]] = f.result()
            outcome = run.error or f"{len(run.stories)} stories"
            report(sources[futures[f]].name, outcome=outcome)
    except FuturesTimeout:
        pass  # the stragglers count as late below
    finally:
        # Never wait for a straggler: its fetch ends at the deadline on its own.
        pool.shutdown(wait=False, cancel_futures=True)
    late = tuple(sources[i].name for i, r in enumerate(runs) if r is None or r.late)
    if waiting or late:
        report(late=late)
    return [late_run if r is None else r for r in runs]


def _by_host(sources: Sequence[Source]) -> list[int]:
    """Source positions in the order to start them: one per host in turn (round robin).

    The fetcher lets only ``per_host`` requests at a time reach one host, so ten feeds of
    one site queued together would hold ten workers while six of them wait for a slot
    (and for that site's slow feed), and every other site's first request would start
    late. Taking the hosts in turn starts each site's first feed at once.
    """
    queues: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        queues.setdefault(_host(s.url), []).append(i)
    lanes = list(queues.values())
    return [lane[k] for k in range(max(map(len, lanes))) for lane in lanes if k < len(lane)]


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""  # a bad URL fails in the fetcher, with the reason


def collect_urls(
    urls: Sequence[str],
    *,
    now: datetime,
    allow_private: bool = False,
    fetcher: Fetcher | None = None,
    progress: ProgressCallback | None = None,
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
        return collect(sources, fetcher, now=now, progress=progress)
    settings = FetchSettings()
    with Fetcher(settings=settings) as own:
        return collect(sources, own, now=now, max_workers=settings.concurrency, progress=progress)


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
    source: Source,
    fetcher: Fetcher,
    now: datetime,
    cached: CacheEntry | None,
    print_: str,
    ends: float,
    limit: float,
) -> _Run:
    late = _Run(stories=[], error=f"no answer within {limit:g} s", late=True)
    if time.monotonic() >= ends:
        return late  # queued behind other sources until the deadline passed
    try:
        response = fetcher.fetch(
            source.url,
            allow_private=source.allow_private,
            etag=cached.etag if cached else None,
            last_modified=cached.last_modified if cached else None,
            deadline=ends,
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
        fallbacks = list(fetched.fallbacks)
        undated = sum(s.undated for s in stories)
        if undated:
            fallbacks.append(f"date missing on {undated} of {len(stories)} stories")
        return _Run(
            stories=stories,
            parsed=True,
            cache=entry,
            fallbacks=tuple(fallbacks),
            warnings=tuple(fetched.warnings),
        )
    except DeadlineExceeded:
        return late
    except SourceError as exc:  # FetchError included
        return _Run(stories=[], error=_reason(source, exc))
    except Exception as exc:  # a third-party source kind's bug must not stop the edition
        return _Run(stories=[], error=f"unexpected {type(exc).__name__}: {_reason(source, exc)}")


def _reason(source: Source, exc: Exception) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"{source.name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
