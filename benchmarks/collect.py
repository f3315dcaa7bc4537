"""Benchmark: collect 200 feeds from local servers (10% answer after 2 s), cold then warm.

Run: python benchmarks/collect.py   (prints one JSON line; not part of the test suite)

Twenty servers on 127.0.0.1-20 stand for twenty sites of ten feeds each, so the per-host
limit applies as it would on the real web. Every feed has an ETag; the warm run sends
If-None-Match and gets 304s. Bytes are counted on the servers' side (headers and bodies).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from digest.collect import collect
from digest.http import Fetcher, FetchSettings
from digest.sources.feed import FeedSource
from digest.store import Store
from digest.store.sources import SourceState

HOSTS = 20
FEEDS_PER_HOST = 10
ITEMS = 20
SLOW_DELAY = 2.0
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
# A newsroom-sized vocabulary: 4,096 made-up words from syllables (real headlines vary).
SYLLABLES = ("ka", "lo", "mi", "ter", "bur", "sen", "dra", "vol", "pin", "gus", "ne", "tro",
             "fa", "del", "mur", "shi")  # fmt: skip
WORDS = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES[:16]]


def headline(host: int, feed: int, item: int) -> str:
    seed = int(hashlib.sha256(f"{host}/{feed}/{item}".encode()).hexdigest(), 16)
    return " ".join(WORDS[(seed >> (12 * k)) % len(WORDS)] for k in range(7)).capitalize()


def feed_body(host: int, feed: int) -> bytes:
    items = "".join(
        f"<item><title>{headline(host, feed, i)}"
        f" ({host}/{feed}/{i})</title><link>https://site{host}.example/{feed}/{i}</link>"
        f"<description>{'Paragraph of teaser text. ' * 12}</description>"
        f"<pubDate>Tue, 24 Nov 2026 0{i % 6}:00:00 GMT</pubDate></item>"
        for i in range(ITEMS)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>'
        f"<link>https://site{host}.example/</link>{items}</channel></rss>"
    ).encode()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    sent = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        host = int(self.server.server_address[0].rsplit(".", 1)[1])
        feed = int(self.path.strip("/").removesuffix(".rss"))
        body = feed_body(host, feed)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if feed == 0:  # one feed in ten answers slowly
            time.sleep(SLOW_DELAY)
        if self.headers.get("If-None-Match") == etag:
            status, payload = "304 Not Modified", b""
        else:
            status, payload = "200 OK", body
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: application/rss+xml\r\nETag: {etag}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self.wfile.write(head + payload)
        with Server.lock:
            Server.sent += len(head) + len(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def run(sources: list[FeedSource], state: SourceState) -> dict[str, Any]:
    Server.sent = 0
    settings = FetchSettings()
    start = time.perf_counter()
    with Fetcher(settings=settings) as fetcher:
        result = collect(sources, fetcher, now=NOW, state=state, max_workers=settings.concurrency)
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 3),
        "bytes": Server.sent,
        "stories": len(result.stories),
        "parsed": len(result.parsed),
        "not_modified": len(result.not_modified),
        "failed": len(result.failed),
    }


def main() -> None:
    servers = [Server((f"127.0.0.{h}", 0), Handler) for h in range(1, HOSTS + 1)]
    for srv in servers:
        threading.Thread(
            target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
    sources = [
        FeedSource(
            name=f"site{h}-{f}",
            url=f"http://127.0.0.{h}:{srv.server_address[1]}/{f}.rss",
            allow_private=True,
            max_items=ITEMS,
        )
        for h, srv in enumerate(servers, start=1)
        for f in range(FEEDS_PER_HOST)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        cold = run(sources, SourceState(store))
        warm = run(sources, SourceState(store))
        store.close()
    for srv in servers:
        srv.shutdown()
    print(json.dumps({
        "feeds": len(sources), "slow_feeds": HOSTS, "slow_delay_s": SLOW_DELAY,
        "concurrency": FetchSettings().concurrency, "per_host": FetchSettings().per_host,
        "cold": cold, "warm": warm,
        "warm_bytes_pct_of_cold": round(100 * warm["bytes"] / max(1, cold["bytes"]), 2),
        "targets": {"cold_wall_s": 5.0, "warm_bytes_pct": 5.0},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
