"""Benchmark: collect 200 feeds from local servers (10% answer after 2 s), cold then warm;
then 1,000 sources warm (all 304s) from configuration to ranked stories.

Run: python benchmarks/collect.py   (prints one JSON line; not part of the test suite)

Twenty servers on 127.0.0.1-20 stand for twenty sites of ten feeds each, so the per-host
limit applies as it would on the real web. Every feed has an ETag; the warm run sends
If-None-Match and gets 304s. Bytes are counted on the servers' side (headers and bodies).

The 1,000-source figure ("thousand_warm") is what a warm `digest build` pays before
rendering: building each source from its kind's plug-in (entry point), a conditional GET
of every source (fifty per site, none slow), the cache and health bookkeeping, and
ranking's deduplication of the 20,000 stories (URL, then near-identical headlines). Its
servers run in a child process, as remote sites would, so ``cpu_s`` is digest's own CPU
time (the machine's load moves ``wall_s``, hardly ``cpu_s``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from digest.collect import collect
from digest.config.yamlsrc import Located
from digest.http import Fetcher, FetchSettings
from digest.rank import RankingSettings, choose
from digest.rank.settings import check_ranking
from digest.sources.base import Source, load_source
from digest.sources.feed import FeedSource
from digest.store import Store
from digest.store.sources import SourceState

HOSTS = 20
FEEDS_PER_HOST = 10
ITEMS = 20
SLOW_DELAY = 2.0
MANY_PER_HOST = 50  # 20 x 50 = 1,000 sources for the warm figure
MANY_FIRST = 100  # their feed numbers start here: none is slow
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
# A newsroom-sized vocabulary: 4,096 made-up words from syllables (real headlines vary).
SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ter",
    "bur",
    "sen",
    "dra",
    "vol",
    "pin",
    "gus",
    "ne",
    "tro",
    "fa",
    "del",
    "mur",
    "shi",
)
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


def many_sources(ports: list[int]) -> list[Source]:
    """1,000 sources made the way the pipeline makes them: through the plug-in registry."""
    return [
        load_source(
            "feed",
            name=f"many{h}-{f}",
            url=f"http://127.0.0.{h}:{port}/{f}.rss",
            allow_private=True,
            max_items=ITEMS,
        )
        for h, port in enumerate(ports, start=1)
        for f in range(MANY_FIRST, MANY_FIRST + MANY_PER_HOST)
    ]


def ranking() -> RankingSettings:
    return check_ranking({}, Located("bench.yaml", {"ranking": {}}, {}).error)


def serve_in_child() -> tuple[multiprocessing.Process, list[int]]:
    """Twenty servers in a child process; their ports, in host order."""
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_child_servers, args=(child,), daemon=True)
    proc.start()
    ports: list[int] = parent.recv()
    return proc, ports


def _child_servers(conn: Any) -> None:
    servers = start_servers()
    conn.send([srv.server_address[1] for srv in servers])
    conn.recv()  # until the parent says stop (or goes away)


def start_servers() -> list[Server]:
    servers = [Server((f"127.0.0.{h}", 0), Handler) for h in range(1, HOSTS + 1)]
    for srv in servers:
        threading.Thread(
            target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
    return servers


def run_many(ports: list[int], state: SourceState) -> dict[str, Any]:
    """Sources built, collected and deduplicated by ranking, all inside the clock."""
    settings = FetchSettings()
    start = time.perf_counter()
    cpu = time.process_time()
    sources = many_sources(ports)
    with Fetcher(settings=settings) as fetcher:
        result = collect(sources, fetcher, now=NOW, state=state, max_workers=settings.concurrency)
    collected = time.perf_counter()
    ranked = choose(result.stories, now=NOW, settings=ranking())
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
        "collect_s": round(collected - start, 3),
        "rank_s": round(wall - (collected - start), 3),
        "sources": len(sources),
        "stories": len(result.stories),
        "not_modified": len(result.not_modified),
        "failed": len(result.failed),
        "kept": len(ranked.stories),
    }


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
    servers = start_servers()
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
        for srv in servers:
            srv.shutdown()
        child, ports = serve_in_child()
        run_many(ports, SourceState(store))  # cold: fills the cache, not reported
        thousand = run_many(ports, SourceState(store))
        child.terminate()
        store.close()
    print(
        json.dumps(
            {
                "feeds": len(sources),
                "slow_feeds": HOSTS,
                "slow_delay_s": SLOW_DELAY,
                "concurrency": FetchSettings().concurrency,
                "per_host": FetchSettings().per_host,
                "cold": cold,
                "warm": warm,
                "thousand_warm": thousand,
                "warm_bytes_pct_of_cold": round(100 * warm["bytes"] / max(1, cold["bytes"]), 2),
                "targets": {"cold_wall_s": 5.0, "warm_bytes_pct": 5.0, "thousand_warm_wall_s": 2.0},
            }
        )
    )


if __name__ == "__main__":
    main()
