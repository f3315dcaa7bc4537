"""Benchmark: send a 15-story edition to N synthetic subscribers through the real engine.

Usage:
    python benchmarks/send.py --subscribers 100000              # smtp to Postfix smtp-sink
    python benchmarks/send.py --subscribers 200000 --backend discard
    python benchmarks/send.py --workers 2 --postgres            # a throwaway PostgreSQL
    python benchmarks/send.py --workers 2 --state-url postgresql+psycopg://u@host/db

With smtp it starts Postfix's `smtp-sink` on a free loopback port, sends end to end (the
freeze of the ledger, claims, personalisation, the SMTP pool, ledger commits; the readers
are synced into the state database first, timed apart as sync_s), then runs
Postfix's `smtp-source` with the same message size and session count as the ceiling. Prints
one JSON line: messages, seconds, msgs_per_s, ceiling_msgs_per_s, ratio, peak_rss_mb (the
largest of this process and its worker processes), and machine_cpu_us_per_msg: the CPU time
the whole machine spent per message sent (digest, its database and the sink together),
and digest_cpu_us_per_msg: the CPU time of digest's own processes per message (steadier
than the other figures on a machine shared with other work).
"""

from __future__ import annotations

import argparse
import json
import os
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
from digest.approval import move
from digest.models import EditionState, Subscriber
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.store import Revision
from render import PUBLICATION, PhotoServer, stories

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)


def busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (every process: digest, the database,
    the sink), from /proc/stat: per message, it moves less with other load than wall time."""
    fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]
    # user nice system idle iowait irq softirq: all but idle and iowait are busy.
    busy = sum(int(x) for i, x in enumerate(fields[:7]) if i not in (3, 4))
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes: on a shared machine it
    compares two versions of the sender better than wall time or the machine's CPU."""
    return sum(
        resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_project(root: Path, n: int, backend: str, port: int, connections: int, url: str) -> Path:
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
        + (f"state_url: {url}\n" if url else "")
        + "sources:\n  - name: unused\n    url: https://news.example.org/feed.xml\n"
        f"backend:\n  name: {backend}\n  options: {options}\n"
        f"send:\n  connections: {connections}\n",
        encoding="utf-8",
    )
    return config


def approved_edition(app: App) -> int:
    photos = PhotoServer()  # the stories' image URLs point at it (hotlinked: never fetched)
    try:
        items = stories(15, photos)
    finally:
        photos.httpd.shutdown()
    rendered = render_edition(
        make_environment(),
        stories=items,
        publication=PUBLICATION,
        edition_date=date(2026, 11, 24),
    )
    store = app.store
    with store.transaction() as tx:
        edition_id = tx.insert_edition(
            slot="bench", revision=Revision(items, rendered, []), now=NOW, warnings=[]
        )
    edition = store.get_edition(edition_id)
    for state in (EditionState.PENDING_APPROVAL, EditionState.APPROVED):
        edition = move(store, edition, state, actor="bench", via="bench", now=NOW)
    return edition_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--backend", choices=["smtp", "discard"], default="smtp")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--state-url", default="", help="Database URL (default: a SQLite file)")
    parser.add_argument(
        "--postgres", action="store_true", help="Use a throwaway PostgreSQL cluster (fsync on)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    port = free_port()
    sink = cluster = None
    os.environ.setdefault("DIGEST_SECRET", "benchmark-secret-0123456789")
    os.environ["DIGEST_NOW"] = NOW.isoformat()
    try:
        url = args.state_url
        if args.postgres:
            from digest.testing.postgres import PostgresCluster

            cluster = PostgresCluster(durable=True)
            cluster.start()
            url = cluster.create_database()
        if args.backend == "smtp":
            if not shutil.which("smtp-sink"):
                sys.exit("smtp-sink not found: apt-get install postfix")
            sink = subprocess.Popen(["smtp-sink", "-u", "root", f"127.0.0.1:{port}", "1000"])
            time.sleep(0.3)
        config = write_project(root, args.subscribers, args.backend, port, args.connections, url)
        app = App(config, state_url=url or None)
        edition_id = approved_edition(app)
        # The readers are in the state database already, as on any day but the first: the
        # one-time import of the file is timed on its own (sync_s), not as part of the send.
        start = time.perf_counter()
        app.readers.sync()
        sync_s = time.perf_counter() - start
        start, busy, cpu = time.perf_counter(), busy_seconds(), own_cpu_seconds()
        if args.workers > 1:
            from digest.cli.delivery import send_with_workers

            report = send_with_workers(app, edition_id, args.workers)
        else:
            report = app.sending.send(edition_id)
        seconds = time.perf_counter() - start
        busy = busy_seconds() - busy
        cpu = own_cpu_seconds() - cpu
        rss = max(
            resource.getrusage(who).ru_maxrss
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        result: dict[str, object] = {
            "backend": args.backend,
            "database": "postgresql" if url.startswith("postgresql") else "sqlite",
            "workers": args.workers,
            "messages": report.sent,
            "state": str(report.state),
            "seconds": round(seconds, 2),
            "sync_s": round(sync_s, 2),
            "msgs_per_s": round(report.sent / seconds),
            "machine_cpu_us_per_msg": round(1e6 * busy / max(1, report.sent), 1),
            "digest_cpu_us_per_msg": round(1e6 * cpu / max(1, report.sent), 1),
            "peak_rss_mb": round(rss / 1024, 1),
            "nproc": os.cpu_count(),
            "load": [round(x, 2) for x in os.getloadavg()],
        }
        if sink is not None:
            edition = app.store.get_edition(edition_id)
            made = app.readers.composer()(edition, app.store.variants(edition))(
                Subscriber("reader0000000@example.org", "Reader 0", "Europe/Berlin"), NOW
            )
            assert made is not None
            size = len(made[0].data)
            count = min(args.subscribers, 50_000)
            sessions = args.connections * args.workers
            start = time.perf_counter()
            subprocess.run(
                [
                    "smtp-source",
                    "-s",
                    str(sessions),
                    "-m",
                    str(count),
                    "-l",
                    str(size),
                    "-f",
                    "brief@news.example.org",
                    "-t",
                    "reader@example.org",
                    f"127.0.0.1:{port}",
                ],
                check=True,
            )
            ceiling = count / (time.perf_counter() - start)
            result["message_bytes"] = size
            result["ceiling_msgs_per_s"] = round(ceiling)
            result["ratio"] = round(report.sent / seconds / ceiling, 2)
        app.close()
        print(json.dumps(result))
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
