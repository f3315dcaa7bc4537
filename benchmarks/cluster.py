"""Benchmark: event grouping of 20,000 stories (what 1,000 sources of 20 items bring).

Run: python benchmarks/cluster.py   (prints one JSON line; not part of the test suite)

The stories are made up but shaped like a day of news: 2,000 events covered by 1 to 30
sources each (most by one or two), every headline a few of its event's own words (a name,
a place, a figure) among common newsroom words from a 30,000-word vocabulary, published
over 36 hours.

- ``build_adds_cpu_seconds``: what grouping adds to an edition's build (``group`` with
  ``now``, events among the ``ranking.event_pool`` best), with and without events, the
  import of numpy included (nothing else in a build imports it; a pool that small is
  grouped without scipy).
- ``seconds`` / ``cpu_seconds``: the worst case, grouping all 20,000 stories
  (``group_events``, as `digest collect` or ``ranking.event_pool: 0`` do): vectors,
  candidate pairs and average-link; the CPU figure (the process's own time: on a shared
  machine the wall clock mostly measures the other tenants) includes the import, which
  ``import_cpu_seconds`` tells apart.
- ``dedupe_seconds`` / ``dedupe_cpu_seconds``: the whole of `digest collect`'s
  deduplication of the 20,000 (URLs, near-identical headlines, then events), imports done.
- ``b3_f1``: the B-cubed F1 of the 20,000's groups against the events the stories were
  made from (an event's own words are few among common ones, so it stays below the
  labelled set's figure: a check that speed is not bought with recall).
- ``peak_rss_mb``: the process's peak resident memory (interpreter and libraries included).
"""

from __future__ import annotations

import dataclasses
import json
import random
import resource
import sys
import time
from collections import Counter
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


def stories(seed: int = 7) -> tuple[list[Story], list[int]]:
    """The stories, and the event of each."""
    rng = random.Random(seed)
    common = _vocabulary(rng, VOCABULARY)
    # A Zipf-like draw: a few words ("says", "after") are everywhere, most are rare.
    weights = [1 / (rank + 1) for rank in range(len(common))]
    out: list[Story] = []
    events: list[int] = []
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
            events.append(event)
            if len(out) == STORIES:
                break
        event += 1
    return out, events


def b_cubed_f1(groups: list[list[int]], events: list[int]) -> float:
    """B-cubed F1 of ``groups`` (story indices) against the true ``events``."""
    size = Counter(events)
    precision = recall = 0.0
    for members in groups:
        mine = Counter(events[i] for i in members)
        for i in members:
            precision += mine[events[i]] / len(members)
            recall += mine[events[i]] / size[events[i]]
    precision, recall = precision / len(events), recall / len(events)
    return 2 * precision * recall / (precision + recall)


def main() -> None:
    batch, events = stories()
    settings = RankingSettings()
    window = timedelta(hours=settings.event_window_hours)
    # The libraries grouping imports on first use (nothing else in a build imports them),
    # counted in every figure below that says it includes imports: numpy for any batch,
    # scipy.sparse only for batches of more than `rank.dense.DENSE_MAX` stories.
    cpu = time.process_time()
    import numpy  # noqa: F401

    numpy_cpu = time.process_time() - cpu
    # What grouping adds to an edition's build: its ranking with and without events.
    cpu = time.process_time()
    group(batch, settings=dataclasses.replace(settings, events=0.0), now=NOW)
    without = time.process_time() - cpu
    cpu = time.process_time()
    group(batch, settings=settings, now=NOW)
    build_adds = time.process_time() - cpu - without + numpy_cpu
    cpu = time.process_time()
    import scipy.sparse  # noqa: F401

    import_cpu = numpy_cpu + time.process_time() - cpu
    # The worst case: every one of the 20,000 stories grouped (`digest collect`,
    # ``ranking.event_pool: 0``).
    started, cpu = time.perf_counter(), time.process_time()
    groups = group_events(batch, threshold=settings.events, window=window)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu + import_cpu
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
                "b3_f1": round(b_cubed_f1(groups, events), 3),
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu_seconds, 3),
                "import_cpu_seconds": round(import_cpu, 3),
                "build_adds_cpu_seconds": round(build_adds, 3),
                "dedupe_seconds": round(dedupe_seconds, 3),
                "dedupe_cpu_seconds": round(dedupe_cpu, 3),
                "kept": len(kept.stories),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
