"""Benchmark: count who an edition goes to (the review page's "Goes to N recipients" line).

Usage: python benchmarks/audience.py [--subscribers N]
Streams a CSV of N subscribers (3 in 4 with topics, 1 in 50 unsubscribed) through
App.audience. Prints one JSON line: subscribers, recipients, variants, seconds (first
count), subscribers_per_s, again_ms (the next page view, kept count) and the peak
traced Python memory in MB (flat: the list is streamed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from digest.app import App
from digest.approval import apply
from digest.models import EditionState
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.store import Revision
from render import PUBLICATION, stories

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)
TOPICS = ("", "World", "Technology", "World;Business")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    try:
        with (root / "subscribers.csv").open("w", encoding="utf-8") as out:
            out.write("email,name,timezone,topics\n")
            for i in range(args.subscribers):
                out.write(f"reader{i:07d}@example.org,Reader {i},,{TOPICS[i % 4]}\n")
        config = root / "digest.yaml"
        config.write_text(
            "publication:\n  name: The Morning Brief\n"
            '  sender: "The Morning Brief <brief@news.example.org>"\n'
            "  base_url: https://news.example.org\n  postal_address: 1 Example Street\n"
            "subscribers: subscribers.csv\n"
            "sources:\n  - name: unused\n    url: https://news.example.org/feed.xml\n",
            encoding="utf-8",
        )
        app = App(config, clock=lambda: NOW)
        items = stories(15)
        env = make_environment()
        rendered = render_edition(
            env, stories=items, publication=PUBLICATION, edition_date=date(2026, 11, 24)
        )
        variants = app.context.renderer.variants(
            items, [t.split(";") for t in TOPICS if t], now=NOW
        )
        with app.store.transaction() as tx:
            edition_id = tx.insert_edition(
                slot="2026-11-24T07:00",
                revision=Revision(items, rendered, variants),
                now=NOW,
                warnings=[],
            )
            apply(
                tx,
                tx.get_edition(edition_id),
                EditionState.PENDING_APPROVAL,
                actor="bench",
                via="bench",
                now=NOW,
            )
        for i in range(0, args.subscribers, 50):
            app.store.suppress(f"reader{i:07d}@example.org", reason="unsubscribed", now=NOW)
        edition = app.store.get_edition(edition_id)
        start = time.perf_counter()
        counted = app.editions.audience(edition)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        app.editions.audience(edition)  # the next page view: the count is kept
        again = time.perf_counter() - start
        # The same count again under tracemalloc, for the memory figure only (it is slow).
        tracemalloc.start()
        app._audience = None
        app.editions.audience(edition)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        app.close()
        print(
            json.dumps(
                {
                    "subscribers": args.subscribers,
                    "recipients": counted.recipients,
                    "variants": len(counted.by_variant),
                    "seconds": round(seconds, 2),
                    "subscribers_per_s": round(args.subscribers / seconds),
                    "again_ms": round(again * 1000, 1),
                    "peak_traced_mb": round(peak / 2**20, 1),
                }
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
