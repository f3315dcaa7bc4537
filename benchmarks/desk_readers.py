"""Benchmark: the desk's Readers page figures at N readers (default 1,000,000).

Usage: python benchmarks/desk_readers.py [--subscribers 1000000] [--suppressions 100000] [-n 5]

Fills a fresh SQLite state file (readers confirmed evenly over five years, as a list
grows, a tenth of them suppressed), then times what the page computes: the counts by state
and the 12 weeks of growth (store.reader_figures), and one address found by its key.
Prints one JSON line with p50 and max in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.store import Store
from digest.store.reader_figures import growth, state_counts
from digest.store.subscribers import SubscriberStore
from digest.store.tables import stamp

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)


def fill(state: Path, subscribers: int, suppressions: int) -> None:
    """Rows as the store writes them, inserted in bulk (setup, not measured)."""
    states = ("active", "active", "active", "paused", "pending")

    def at(i: int) -> str:
        return stamp(NOW - timedelta(minutes=(i * 7919) % (5 * 365 * 24 * 60)))

    with sqlite3.connect(state) as db:
        db.executemany(
            "INSERT INTO subscribers (key, email, name, timezone, topics, state, paused_until,"
            " source, since, file_gen, file_entry, created_at, updated_at)"
            " VALUES (?, ?, '', '', '[]', ?, '', 'web', ?, 0, '', ?, ?)",
            (
                (
                    f"reader{i:07d}@example.org",
                    f"reader{i:07d}@example.org",
                    states[i % 5],
                    "" if states[i % 5] == "pending" else at(i),
                    at(i),
                    at(i),
                )
                for i in range(subscribers)
            ),
        )
        kinds = ("unsubscribed", "unsubscribed", "bounced", "complained")
        db.executemany(
            "INSERT INTO suppressions (email, reason, kind, at) VALUES (?, 'bench', ?, ?)",
            (
                (f"reader{i * 7:07d}@example.org", kinds[i % 4], at(i * 3))
                for i in range(suppressions)
            ),
        )


def timed(n: int, call: Callable[[], object]) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--suppressions", type=int, default=100_000)
    parser.add_argument("-n", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digest.db"
        Store(path).close()  # migrated, empty
        fill(path, args.subscribers, args.suppressions)
        store = Store(path)
        try:
            subs = SubscriberStore(store)
            result = {
                "subscribers": args.subscribers,
                "suppressions": args.suppressions,
                "state_counts": timed(args.n, lambda: state_counts(store)),
                "growth_12_weeks": timed(args.n, lambda: growth(store, now=NOW)),
                "find_address": timed(args.n, lambda: subs.get("READER0500000@example.org")),
            }
        finally:
            store.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
