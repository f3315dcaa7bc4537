"""Benchmark: `digest subscribers import` of one big CSV, into SQLite and into PostgreSQL.

Usage: python benchmarks/import.py [--readers 1000000] [--engine sqlite|postgresql|both]

Writes a CSV of N readers (1 in 4 with topics), then for each engine runs the import in a
fresh child process (so the peak RSS is the import's own): a new SQLite state file, or a new
database in a PostgreSQL cluster this benchmark starts (digest.testing.postgres, durable
commits). Prints one JSON line per engine: engine, readers, seconds, readers_per_s and the
child's peak RSS in MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from digest.store import Store
from digest.subscribers.sync import import_file
from digest.testing.postgres import PostgresCluster

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)
TOPICS = ("", "World", "Technology", "World;Business")


def write_csv(path: Path, readers: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,timezone,topics\n")
        for i in range(readers):
            out.write(f"reader{i:07d}@example.org,Reader {i},,{TOPICS[i % 4]}\n")


def child(file: Path, state: str) -> None:
    """The measured part: open the store, import the file, one JSON line on stdout."""
    store = Store(url=state) if "://" in state else Store(Path(state))
    start = time.perf_counter()
    report = import_file(store, file, now=NOW)
    seconds = time.perf_counter() - start
    store.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"added": report.added, "seconds": seconds, "peak_rss_mb": peak_kb / 1024}))


def measure(engine: str, file: Path, state: str, readers: int) -> None:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(file), state],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["added"] != readers:
        raise SystemExit(f"{engine}: {result['added']} readers added, expected {readers}")
    print(
        json.dumps(
            {
                "engine": engine,
                "readers": readers,
                "seconds": round(result["seconds"], 1),
                "readers_per_s": round(readers / result["seconds"]),
                "peak_rss_mb": round(result["peak_rss_mb"], 1),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return
    root = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    try:
        file = root / "readers.csv"
        write_csv(file, args.readers)
        if args.engine in ("sqlite", "both"):
            measure("sqlite", file, str(root / "state.db"), args.readers)
        if args.engine in ("postgresql", "both"):
            with PostgresCluster(durable=True) as cluster:
                measure("postgresql", file, cluster.create_database(), args.readers)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
