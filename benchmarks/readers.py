"""Benchmark: every reader page at N subscribers and M suppressions, over real HTTP.

Usage: python benchmarks/readers.py [--subscribers 1000000] [--suppressions 100000] [-n 200]

Fills a fresh state file (subscribers, suppressions and one sent edition), serves the web app
with uvicorn on loopback, and times each reader page (GET and POST) from an httpx client:
the sign-up form and its POST (a confirmation through the discard backend), the
confirmation page and its POST, the preference page and its POST, the unsubscribe page and
its one-click POST, the archive index, an edition's page and the Atom feed. Prints one JSON
line: per page, p50/p95/max in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from digest.app import App
from digest.approval import apply
from digest.models import EditionState, Story
from digest.store import Revision
from digest.store.subscribers import SubscriberStore
from digest.subscribers.links import confirm_url, preferences_url
from digest.tokens import UNSUBSCRIBE_SALT, Signer, unsubscribe_url
from digest.web.app import create_app
from digest.web.server import BackgroundServer

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)
SECRET = "benchmark-secret-0123456789abcdef"
BASE = "https://news.example.org"
CONFIG = """\
publication:
  name: The Morning Brief
  sender: "The Morning Brief <brief@news.example.org>"
  base_url: https://news.example.org
  postal_address: 1 Example Street, Berlin
subscribers: none.csv
sources:
  - name: unused
    url: https://news.example.org/feed.xml
backend:
  name: discard
signup:
  enabled: true
  topics: [World, Technology, Culture]
  per_form: 1000000  # -n above the default 300 sign-ups per window
"""


def fill(state: Path, subscribers: int, suppressions: int) -> None:
    """Rows as the store writes them, inserted in bulk (this is setup, not measured)."""
    at = "2026-11-01T06:00:00.000000+00:00"
    with sqlite3.connect(state) as db:
        db.executemany(
            "INSERT INTO subscribers (key, email, name, timezone, topics, state, paused_until,"
            " source, since, file_gen, file_entry, created_at, updated_at)"
            " VALUES (?, ?, ?, '', ?, ?, '', 'import', ?, 0, '', ?, ?)",
            (
                (
                    f"reader{i:07d}@example.org",
                    f"reader{i:07d}@example.org",
                    f"Reader {i}",
                    '["World"]' if i % 3 else "[]",
                    "unsubscribed" if i < suppressions else "active",
                    at,
                    at,
                    at,
                )
                for i in range(subscribers)
            ),
        )
        db.executemany(
            "INSERT INTO suppressions (email, reason, at) VALUES (?, 'unsubscribed', ?)",
            ((f"reader{i:07d}@example.org", at) for i in range(suppressions)),
        )


def sent_edition(app: App) -> int:
    stories = [
        Story(
            url=f"https://news.example.org/s/{i}",
            title=f"Story {i} with a headline",
            teaser="A teaser of ordinary length for the archive page.",
            source="Desk",
            published=NOW,
            section=("World", "Technology")[i % 2],
        )
        for i in range(15)
    ]
    rendered = app.context.renderer.render(stories, now=NOW)
    with app.store.transaction() as tx:
        edition_id = tx.insert_edition(
            slot="bench", revision=Revision(stories, rendered, []), now=NOW, warnings=[]
        )
        for state in ("pending_approval", "approved", "sending", "sent"):
            edition = tx.get_edition(edition_id)
            apply(tx, edition, EditionState(state), actor="bench", via="bench", now=NOW)
    return edition_id


def timed(n: int, call: Callable[[int], httpx.Response]) -> dict[str, float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        response = call(i)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code < 400, (response.status_code, response.text[:300])
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
        "max_ms": round(samples[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--suppressions", type=int, default=100_000)
    parser.add_argument("-n", type=int, default=200, help="requests per page")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="digest-readers-"))
    (root / "digest.yaml").write_text(CONFIG, encoding="utf-8")
    app = App(root / "digest.yaml", clock=lambda: NOW)
    state = app.store.path  # the schema is created here; the rows go in beside it
    start = time.perf_counter()
    fill(state, args.subscribers, args.suppressions)
    setup_s = time.perf_counter() - start
    edition = sent_edition(app)
    environ = {"DIGEST_SECRET": SECRET}
    readers = app.readers.pages(environ)
    subs = SubscriberStore(app.store)
    signer = Signer([SECRET], salt=UNSUBSCRIBE_SALT, clock=lambda: NOW)
    pick = random.Random(7)

    def someone() -> tuple[int, str]:
        i = pick.randrange(args.suppressions, args.subscribers)  # an active reader
        email = f"reader{i:07d}@example.org"
        record = subs.get(email)
        assert record is not None
        return record.id, email

    nonces = []
    for i in range(args.n):
        nonce = secrets.token_urlsafe(24)
        subs.request(
            f"new{i}@example.com",
            nonce=nonce,
            name="",
            topics=["World"],
            ip="",
            text="bench",
            now=NOW,
        )
        nonces.append(confirm_url("", readers.confirms, nonce))
    prefs = [
        preferences_url("", readers.preferences, subscriber_id=s, email=e)
        for s, e in (someone() for _ in range(args.n))
    ]
    addresses = [f"reader{pick.randrange(args.subscribers):07d}@example.org" for _ in range(args.n)]
    unsub = [unsubscribe_url("", signer, a) for a in addresses]
    results: dict[str, dict[str, float]] = {}
    with (
        BackgroundServer(create_app(app, environ=environ)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        n = args.n
        results["GET /subscribe"] = timed(n, lambda i: http.get("/subscribe"))
        results["POST /subscribe"] = timed(
            n,
            lambda i: http.post(
                "/subscribe",
                data={"email": f"join{i}@example.com", "topics": ["World"]},
                headers={"x-forwarded-for": f"10.0.{i // 250}.{i % 250}"},
            ),
        )
        results["GET /confirm"] = timed(n, lambda i: http.get(nonces[i]))
        results["POST /confirm"] = timed(n, lambda i: http.post(nonces[i]))
        results["GET /p"] = timed(n, lambda i: http.get(prefs[i]))
        results["POST /p"] = timed(
            n,
            lambda i: http.post(
                prefs[i], data={"topics": ["Technology"], "pause": "0"}, follow_redirects=False
            ),
        )
        results["GET /u"] = timed(n, lambda i: http.get(unsub[i]))
        results["POST /u"] = timed(n, lambda i: http.post(unsub[i]))
        results["GET /archive/"] = timed(n, lambda i: http.get("/archive/"))
        results["GET /archive/N"] = timed(n, lambda i: http.get(f"/archive/{edition}"))
        results["GET /archive/feed.xml"] = timed(n, lambda i: http.get("/archive/feed.xml"))
    app.close()
    worst = max(r["p95_ms"] for r in results.values())
    print(
        json.dumps(
            {
                "subscribers": args.subscribers,
                "suppressions": args.suppressions,
                "requests_per_page": args.n,
                "setup_s": round(setup_s, 1),
                "worst_p95_ms": worst,
                "pages": results,
            }
        )
    )


if __name__ == "__main__":
    main()
