"""Benchmark: event grouping of 20,000 stories (what 1,000 sources of 20 items bring).

Run: python benchmarks/cluster.py   (prints one JSON line; not part of the test suite)

The stories are made up but shaped like a day of news: 2,000 events covered by 1 to 30
sources each (most by one or two), every headline a few of its event's own words (a name,
a place, a figure) among common newsroom words from a 4,096-word vocabulary, published
over 36 hours. ``seconds`` is the grouping alone (``group_events`` with the default
settings): vectors, candidate pairs and average-link; ``dedupe_seconds`` the whole of
ranking's deduplication (URLs, near-identical headlines, then events). ``cpu_seconds`` is
the process's own CPU time for the same work: on a shared machine the wall clock mostly
measures the other tenants; it includes importing numpy and scipy.sparse, which
``import_cpu_seconds`` tells apart (a build that imported them already saves that).
``peak_rss_mb`` is
the process's peak resident memory after both (the interpreter and libraries included).
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta

from digest.models import Story
from digest.rank import group
from digest.rank.cluster import group_events
from digest.rank.settings import RankingSettings

STORIES = 20_000
EVENTS = 2_000
VOCABULARY = 30_000  # words of a newsroom: 20,000 headlines use about as many
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
SYLLABLES = ("ka", "lo", "mi", "ter", "bur", "sen", "dra", "vol", "pin", "gus")
SYLLABLES += ("ne", "ra", "to", "shi", "an", "el", "or", "um", "ix", "pa")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def stories(seed: int = 7) -> list[Story]:
    rng = random.Random(seed)
    common = _vocabulary(rng, VOCABULARY)
    # A Zipf-like draw: a few words ("says", "after") are everywhere, most are rare.
    weights = [1 / (rank + 1) for rank in range(len(common))]
    out: list[Story] = []
    sizes = [1 + int(rng.paretovariate(1.2)) for _ in range(EVENTS)]
    event = 0
    while len(out) < STORIES:
        size = min(sizes[event % EVENTS], 30)
        own = [w.capitalize() for w in rng.sample(common, 3)] + [str(rng.randint(2, 9999))]
        start = NOW - timedelta(minutes=rng.randint(0, 36 * 60))
        for _ in range(size):
            words = rng.choices(common, weights, k=rng.randint(5, 9))
            words[1:1] = rng.sample(own, rng.randint(1, 3))
            n = len(out)
            out.append(
                Story(
                    url=f"https://site{n % 1000}.example/{n}",
                    title=" ".join(words).capitalize(),
                    teaser="",
                    source=f"Source {n % 1000}",
                    published=start + timedelta(minutes=rng.randint(0, 600)),
                )
            )
            if len(out) == STORIES:
                break
        event += 1
    return out


def main() -> None:
    batch = stories()
    settings = RankingSettings()
    window = timedelta(hours=settings.event_window_hours)
    started, cpu = time.perf_counter(), time.process_time()
    # The libraries grouping imports on first use; in a build other parts may have already.
    import numpy  # noqa: F401
    import scipy.sparse  # noqa: F401

    import_cpu = time.process_time() - cpu
    groups = group_events(batch, threshold=settings.events, window=window)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    kept = group(batch, settings=settings)
    dedupe_seconds, dedupe_cpu = time.perf_counter() - started, time.process_time() - cpu
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB here
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    print(
        json.dumps(
            {
                "benchmark": "cluster",
                "stories": len(batch),
                "groups": len(groups),
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu_seconds, 3),
                "import_cpu_seconds": round(import_cpu, 3),
                "dedupe_seconds": round(dedupe_seconds, 3),
                "dedupe_cpu_seconds": round(dedupe_cpu, 3),
                "kept": len(kept.stories),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
