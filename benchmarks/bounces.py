"""Benchmark: `digest bounces import` of N returned mails from a Maildir, into the store.

Usage: python benchmarks/bounces.py [-n 10000] [--corpus ../shared/corpora/bounces]

Replicates the bounce corpus's mails into a temporary Maildir (each copy with its recipient
addresses varied, so that every copy is a new reader), then runs the real import (not a dry
run: every hard bounce and complaint suppressed, soft ones counted) in a child process and
prints one JSON line: messages, seconds, messages per second and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
"""


def corpus_dir(given: str | None) -> Path:
    for candidate in ([Path(given)] if given else []) + [
        ROOT.parent / "shared" / "corpora" / "bounces",
        ROOT.parent.parent / "shared" / "corpora" / "bounces",
    ]:
        if (candidate / "truth.jsonl").exists():
            return candidate
    raise SystemExit("bounce corpus not found: pass --corpus DIR (with truth.jsonl)")


def replicate(corpus: Path, maildir: Path, n: int) -> None:
    """``n`` mails in maildir/cur: corpus files in turn, addresses prefixed per copy."""
    samples = []
    for line in (corpus / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        truth = json.loads(line)
        addresses = sorted(
            {r["address"] for r in truth["recipients"] if r["address"]}, key=len, reverse=True
        )
        samples.append(((corpus / truth["file"]).read_bytes(), addresses))
    (maildir / "cur").mkdir(parents=True)
    (maildir / "new").mkdir()
    (maildir / "tmp").mkdir()
    for i in range(n):
        data, addresses = samples[i % len(samples)]
        for address in addresses:
            data = data.replace(address.encode(), f"c{i}.{address}".encode())
        (maildir / "cur" / f"{i:06d}.bench:2,S").write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--corpus", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "digest.yaml").write_text(CONFIG + "state_path: state.db\n", encoding="utf-8")
        (root / "none.csv").write_text("email\n", encoding="utf-8")
        replicate(corpus_dir(args.corpus), root / "Maildir", args.n)
        env = {"DIGEST_CONFIG": str(root / "digest.yaml"), "DIGEST_SECRET": "b" * 32}
        command = [sys.executable, "-m", "digest", "bounces", "import", str(root / "Maildir")]
        start = time.perf_counter()
        done = subprocess.run(
            [*command, "--json"], env=env, capture_output=True, check=False, cwd=root
        )
        seconds = time.perf_counter() - start
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kb = usage.ru_maxrss
        actions: dict[str, int] = {}
        for row in rows:
            actions[row["action"]] = actions.get(row["action"], 0) + 1
        print(
            json.dumps(
                {
                    "messages": len(rows),
                    "exit_code": done.returncode,
                    "seconds": round(seconds, 2),
                    "messages_per_second": round(len(rows) / seconds, 1),
                    # CPU time of the import: the figure a busy, shared machine distorts least.
                    "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                    "peak_rss_mb": round(peak_kb / 1024, 1),
                    "actions": actions,
                    **({"stderr": done.stderr.decode()[-500:]} if done.returncode else {}),
                }
            )
        )


if __name__ == "__main__":
    main()
