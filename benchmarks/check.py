"""Benchmark: `digest check` on the example config, its two sources served on loopback.

Usage: python benchmarks/check.py [--runs N]
Prints one JSON line: seconds for each run of the whole command (a fresh process: import,
config, templates through MJML and preflight, the outbox backend, both sources fetched)
and the slowest. Issue 17 asks for under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from digest.demo import serve_folder

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp, serve_folder(ROOT / "examples" / "sources") as base:
        for name in ("digest.example.yaml", "subscribers.example.yaml"):
            shutil.copy(ROOT / name, Path(tmp) / name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        env.update(
            DIGEST_SECRET="benchmark-secret-0123456789",
            DIGEST_DEMO_URL=base,
            DIGEST_NOW="2026-11-24T06:30:00+00:00",
        )
        command = [
            sys.executable,
            "-m",
            "digest",
            "--config",
            f"{tmp}/digest.example.yaml",
            "check",
        ]
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            times.append(round(time.perf_counter() - started, 3))
    print(json.dumps({"benchmark": "check", "runs_s": times, "max_s": max(times)}))


if __name__ == "__main__":
    main()
