"""Benchmark: can the sign-up answer's timing tell who is subscribed?

Usage: python benchmarks/signup_timing.py [--posts 200] [--src DIR]

Starts `digest serve` (a real process, the SMTP backend) against a local SMTP sink (aiosmtpd
on loopback), with 100 active readers in the state file. Posts the form --posts times over
one keep-alive connection, alternating a known address and a new one (each address once,
each from its own IPv4 address, so no limit is hit), after 20 warm-up posts. Then trains the
simplest classifier, a threshold on the response time ("slower than t: a new address", or
the reverse), on half of the posts and scores it on the other half; a coin scores 50%.

Prints one JSON line: posts, accuracy (held-out half; the bar is <= 0.60), train_accuracy,
p50 and p95 of each class in ms, and the confirmations the sink received within 10 s.

--src DIR serves another checkout's code (PYTHONPATH=DIR), e.g. the code before the queue:
  git worktree add /tmp/before <commit> && python benchmarks/signup_timing.py --src /tmp/before/src
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from digest.testing.smtp import SMTPSink, free_port

SECRET = "benchmark-secret-0123456789abcdef"
KNOWN = 100
WARM_UP = 20


def config(sink: SMTPSink) -> str:
    return f"""\
publication:
  name: The Morning Brief
  sender: "The Morning Brief <brief@news.example.org>"
  base_url: https://news.example.org
  postal_address: 1 Example Street, Berlin
subscribers: subscribers.csv
state_path: state.db
sources:
  - name: unused
    url: https://news.example.org/feed.xml
backend:
  name: smtp
  options:
    host: {sink.host}
    port: {sink.port}
signup:
  enabled: true
"""


def best_threshold(samples: list[tuple[float, bool]]) -> tuple[float, bool, float]:
    """(threshold, slower_means_new, accuracy) that classifies ``samples`` best."""
    times = sorted(t for t, _ in samples)
    cuts = [(a + b) / 2 for a, b in itertools.pairwise(times)] or times
    best = (0.0, True, 0.0)
    for cut in cuts:
        for slower_new in (True, False):
            right = sum((t > cut) == (new if slower_new else not new) for t, new in samples)
            if right / len(samples) > best[2]:
                best = (cut, slower_new, right / len(samples))
    return best


def score(samples: list[tuple[float, bool]], cut: float, slower_new: bool) -> float:
    right = sum((t > cut) == (new if slower_new else not new) for t, new in samples)
    return right / len(samples)


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(values[max(0, int(len(values) * 0.95) - 1)], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--src", type=Path, default=None, help="serve this checkout's src")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="digest-signup-timing-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_CONFIG=str(root / "digest.yaml"))
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve())
    digest = [sys.executable, "-m", "digest"]
    server: subprocess.Popen[bytes] | None = None
    try:
        with SMTPSink() as sink:
            (root / "digest.yaml").write_text(config(sink), encoding="utf-8")
            with (root / "subscribers.csv").open("w", encoding="utf-8") as out:
                out.write("email,name\n")
                out.writelines(f"known{i}@example.org,Reader {i}\n" for i in range(KNOWN))
            subprocess.run([*digest, "subscribers", "sync"], env=env, check=True, cwd=root)
            port = free_port()
            log = (root / "serve.log").open("wb")
            server = subprocess.Popen(
                [*digest, "serve", "--port", str(port)], env=env, cwd=root, stdout=log, stderr=log
            )
            deadline = time.monotonic() + 60
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((root / "serve.log").read_text())
                time.sleep(0.05)
            samples: list[tuple[float, bool]] = []
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for i in range(WARM_UP + args.posts):
                    new = i % 2 == 1
                    email = f"new{i}@example.com" if new else f"known{i // 2 % KNOWN}@example.org"
                    data = {"email": email, "name": "", "website": ""}
                    client = f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}"
                    start = time.perf_counter()
                    answer = http.post("/subscribe", data=data, headers={"x-forwarded-for": client})
                    took = (time.perf_counter() - start) * 1000
                    if answer.status_code != 200:
                        raise SystemExit(f"POST {email}: {answer.status_code} {answer.text[:200]}")
                    if i >= WARM_UP:
                        samples.append((took, new))
            wanted = sum(1 for _, new in samples) // 2 + WARM_UP // 2
            deadline = time.monotonic() + 10
            while len(sink.messages) < wanted and time.monotonic() < deadline:
                time.sleep(0.05)
            mailed = len(sink.messages)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    shuffled = samples[:]
    random.Random(args.seed).shuffle(shuffled)
    train, test = shuffled[: len(shuffled) // 2], shuffled[len(shuffled) // 2 :]
    cut, slower_new, train_accuracy = best_threshold(train)
    print(
        json.dumps(
            {
                "posts": len(samples),
                "code": str(args.src) if args.src else "this checkout",
                "accuracy": round(score(test, cut, slower_new), 3),
                "train_accuracy": round(train_accuracy, 3),
                "threshold_ms": round(cut, 2),
                "known": percentiles([t for t, new in samples if not new]),
                "new": percentiles([t for t, new in samples if new]),
                "confirmations_mailed": mailed,
            }
        )
    )


if __name__ == "__main__":
    main()
