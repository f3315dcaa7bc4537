"""The bounce corpus (shared/corpora/bounces: 557 real bounces, complaints and auto-replies
from 66 mail systems) through `digest bounces import --dry-run --json`, against its truth.

Bars: the right address and kind for >= 95% of hard, >= 90% of soft and >= 95% of
complaint recipients, and no auto-reply or delivery notice called a hard bounce or a
complaint. `python benchmarks/bounce_corpus.py` prints the figures per kind and mail system.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, Project

# Beside the checkout (CI, the main checkout); a worktree under wt/ finds it one level up.
CORPUS = next(
    (
        p / "shared" / "corpora" / "bounces"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "corpora" / "bounces" / "truth.jsonl").exists()
    ),
    ROOT.parent / "shared" / "corpora" / "bounces",
)
BARS = {"hard": 0.95, "soft": 0.90, "complaint": 0.95}

# CI always has the corpus: there a missing corpus fails instead of skipping.
pytestmark = pytest.mark.skipif(
    not (CORPUS / "truth.jsonl").exists() and not os.environ.get("CI"),
    reason="the shared bounce corpus is not beside the checkout",
)


def _truth() -> dict[str, dict[str, Any]]:
    lines = (CORPUS / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    return {Path(t["file"]).name: t for t in map(json.loads, lines)}


def _found(expected: dict[str, Any], got: list[dict[str, Any]]) -> bool:
    """The expected recipient is reported with its kind (address or original address)."""
    wanted = {(expected["address"] or "").lower(), (expected.get("original_address") or "").lower()}
    wanted.discard("")
    for r in got:
        names = {(r["address"] or "").lower(), (r.get("original_address") or "").lower()}
        same = bool(wanted & names) if wanted else r["address"] is None
        if same and r["kind"] == expected["kind"]:
            return True
    return False


def test_the_corpus_meets_the_bars(project: Project) -> None:
    result = project.cli("bounces", "import", str(CORPUS / "mail"), "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    truth = _truth()
    assert [Path(r["file"]).name for r in rows] == sorted(truth)  # input order, every file
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    false_alarms = []
    for row in rows:
        expected = truth[Path(row["file"]).name]
        if expected["kind"] == "not_a_bounce":
            false_alarms += [r for r in row["recipients"] if r["kind"] in ("hard", "complaint")]
            assert row["action"] == "ignored"
        for e in expected["recipients"]:
            total[e["kind"]] += 1
            found[e["kind"]] += _found(e, row["recipients"])
    rates = {kind: found[kind] / total[kind] for kind in BARS}
    assert all(rates[k] >= bar for k, bar in BARS.items()), rates
    assert false_alarms == []
    # Nothing was changed: a dry run.
    shown = json.loads(project.cli("subscribers", "show", "kijitora@example.jp").stdout)
    assert shown["suppressed"] is None
    assert shown["bounces"] == []
