"""Benchmark: send a 15-story edition to N synthetic subscribers through the real engine.

Usage:
    python benchmarks/send.py --subscribers 100000              # smtp to Postfix smtp-sink
    python benchmarks/send.py --subscribers 1000000 --backend discard

With smtp it starts Postfix's `smtp-sink` on a free loopback port, sends end to end (ledger
population, personalisation, the SMTP pool, ledger commits), then runs Postfix's
`smtp-source` with the same message size and session count as the ceiling. Prints one JSON
line: messages, seconds, msgs_per_s, ceiling_msgs_per_s, ratio, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from digest.app import App
from digest.models import EditionState
from digest.pipeline import apply
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from render import PUBLICATION, stories

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_project(root: Path, n: int, backend: str, port: int, connections: int) -> Path:
    with (root / "subscribers.csv").open("w", encoding="utf-8") as out:
        out.write("email,name,timezone,topics\n")
        for i in range(n):
            out.write(f"reader{i:07d}@example.org,Reader {i},Europe/Berlin,\n")
    options = (
        f"{{host: 127.0.0.1, port: {port}, max_messages_per_connection: 1000000}}"
        if backend == "smtp"
        else "{}"
    )
    config = root / "digest.yaml"
    config.write_text(
        "publication:\n"
        "  name: The Morning Brief\n"
        '  sender: "The Morning Brief <brief@news.example.org>"\n'
        "  base_url: https://news.example.org\n"
        "  postal_address: 1 Example Street, Berlin\n"
        "subscribers: subscribers.csv\n"
        "sources:\n  - name: unused\n    url: https://news.example.org/feed.xml\n"
        f"backend:\n  name: {backend}\n  options: {options}\n"
        f"send:\n  connections: {connections}\n",
        encoding="utf-8",
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--backend", choices=["smtp", "discard"], default="smtp")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    port = free_port()
    sink = None
    if args.backend == "smtp":
        if not shutil.which("smtp-sink"):
            sys.exit("smtp-sink not found: apt-get install postfix")
        sink = subprocess.Popen(["smtp-sink", "-u", "root", f"127.0.0.1:{port}", "1000"])
        time.sleep(0.3)
    try:
        config = write_project(root, args.subscribers, args.backend, port, args.connections)
        app = App(config, clock=lambda: NOW)
        rendered = render_edition(
            make_environment(), stories=stories(15), publication=PUBLICATION,
            edition_date=date(2026, 11, 24),
        )  # fmt: skip
        store = app.store
        edition = store.create_edition(
            slot="bench", stories=stories(15), rendered=rendered, now=NOW
        )
        for state in (EditionState.PENDING_APPROVAL, EditionState.APPROVED):
            edition = apply(store, edition, state, actor="bench", via="bench", now=NOW)
        import os

        os.environ.setdefault("DIGEST_SECRET", "benchmark-secret-0123456789")
        start = time.perf_counter()
        report = app.send(edition.id)
        seconds = time.perf_counter() - start
        result: dict[str, object] = {
            "backend": args.backend,
            "messages": report.sent,
            "seconds": round(seconds, 2),
            "msgs_per_s": round(report.sent / seconds),
            "html_kb": round(len(rendered.html.encode()) / 1024, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        if sink is not None:
            size = len(app.envelopes(edition)(next(iter(app.subscribers)), NOW).data)  # type: ignore[union-attr]
            count = min(args.subscribers, 50_000)
            start = time.perf_counter()
            subprocess.run(
                ["smtp-source", "-s", str(args.connections), "-m", str(count), "-l", str(size),
                 "-f", "brief@news.example.org", "-t", "reader@example.org", f"127.0.0.1:{port}"],
                check=True,
            )  # fmt: skip
            ceiling = count / (time.perf_counter() - start)
            result["message_bytes"] = size
            result["ceiling_msgs_per_s"] = round(ceiling)
            result["ratio"] = round(report.sent / seconds / ceiling, 2)
        print(json.dumps(result))
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
