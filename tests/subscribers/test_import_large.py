"""`digest subscribers import` of a million CSV rows: streamed in chunks, in one transaction,
under 200 MB of memory, with exact counts (and the opted-out address left alone)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import NOW, SECRET, Project

ROWS = 1_000_000
LIMIT_MB = 200


@pytest.mark.slow
def test_a_million_rows_import_in_under_200_mb_with_counts(project: Project) -> None:
    project.write_config(extra="subscribers_sync: add\n")
    assert project.cli("subscribers", "add", "reader0000007@example.org").exit_code == 0
    assert project.cli("subscribers", "remove", "reader0000007@example.org").exit_code == 0
    assert project.cli("subscribers", "add", "reader0000008@example.org").exit_code == 0
    path = project.root / "million.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,timezone,topics\n")
        for i in range(ROWS):
            out.write(f"reader{i:07d}@example.org,Reader {i},Europe/Berlin,World;Technology\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_NOW=NOW, DIGEST_CONFIG=str(project.config))
    log = project.root / "import.out"
    with log.open("w") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-m", "digest", "subscribers", "import", str(path), "--json"],
            env=env, stdout=stdout, stderr=subprocess.STDOUT,
        )  # fmt: skip
        # wait4 gives this child's own peak, not the largest of every child of the suite.
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text()
    assert child.returncode == 0, output
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    assert peak_mb < LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    counts = json.loads(output.splitlines()[0])
    assert (counts["read"], counts["added"], counts["updated"], counts["blocked"]) == (
        ROWS, ROWS - 2, 1, 1,
    )  # fmt: skip
    with sqlite3.connect(project.state) as db:
        by_state = dict(db.execute("SELECT state, count(*) FROM subscribers GROUP BY state"))
        consents = db.execute("SELECT count(*) FROM consents").fetchone()[0]
    assert by_state == {"active": ROWS - 1, "unsubscribed": 1}
    assert consents == ROWS - 2 + 3  # one per imported reader, three from the editor's commands
