"""Figures: the bounce corpus through `digest bounces import --dry-run --json`, per kind and
per mail system (the truth's ``mta`` field).

Usage: python benchmarks/bounce_corpus.py [--corpus ../shared/corpora/bounces] [--misses]

A recipient counts as found when the import reports its address (or its original address)
with the expected kind. Prints a table per kind, one per mail system, the not-a-bounce
mails called hard or complaint (should be none), and with --misses every miss.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bounces import CONFIG, corpus_dir


def found(expected: dict[str, Any], got: list[dict[str, Any]]) -> bool:
    wanted = {(expected["address"] or "").lower(), (expected.get("original_address") or "").lower()}
    wanted.discard("")
    for r in got:
        names = {(r["address"] or "").lower(), (r.get("original_address") or "").lower()}
        if (wanted & names if wanted else r["address"] is None) and r["kind"] == expected["kind"]:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args()
    corpus = corpus_dir(args.corpus)
    truth = {
        Path(t["file"]).name: t
        for t in map(json.loads, (corpus / "truth.jsonl").read_text("utf-8").splitlines())
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "digest.yaml").write_text(CONFIG + "state_path: state.db\n", encoding="utf-8")
        (root / "none.csv").write_text("email\n", encoding="utf-8")
        env = {"DIGEST_CONFIG": str(root / "digest.yaml"), "DIGEST_SECRET": "b" * 32}
        command = [sys.executable, "-m", "digest", "bounces", "import", str(corpus / "mail")]
        done = subprocess.run(
            [*command, "--dry-run", "--json"], env=env, capture_output=True, check=True, cwd=root
        )
    total: Counter[str] = Counter()
    ok: Counter[str] = Counter()
    by_mta: dict[str, Counter[str]] = {}
    alarms, misses = [], []
    for row in map(json.loads, done.stdout.splitlines()):
        expected = truth[Path(row["file"]).name]
        counts = by_mta.setdefault(expected["mta"], Counter())
        if expected["kind"] == "not_a_bounce":
            alarms += [
                (row["file"], r) for r in row["recipients"] if r["kind"] in ("hard", "complaint")
            ]
        for e in expected["recipients"]:
            hit = found(e, row["recipients"])
            total[e["kind"]] += 1
            ok[e["kind"]] += hit
            counts["total"] += 1
            counts["found"] += hit
            if not hit:
                misses.append((Path(row["file"]).name, e["kind"], e["reason"], row["recipients"]))
    print(f"{'kind':<14}{'found':>7}{'total':>7}{'rate':>8}")
    for kind in ("hard", "soft", "complaint", "not_a_bounce"):
        print(f"{kind:<14}{ok[kind]:>7}{total[kind]:>7}{ok[kind] / max(total[kind], 1):>8.1%}")
    print(f"\nnot-a-bounce mails called hard or complaint: {len(alarms)}")
    print(f"\n{'mail system':<18}{'found':>7}{'total':>7}{'rate':>8}")
    for mta, c in sorted(
        by_mta.items(), key=lambda kv: (kv[1]["found"] / max(kv[1]["total"], 1), kv[0])
    ):
        rate = f"{c['found'] / c['total']:>8.1%}" if c["total"] else "       -"
        print(f"{mta:<18}{c['found']:>7}{c['total']:>7}{rate}")
    if args.misses:
        print()
        for miss in misses:
            print(*miss)


if __name__ == "__main__":
    main()
